"""functions/teams/handler.py as Lambda runs it: settings from the environment, the bot secret from
Secrets Manager (moto) through Powertools, references and seen activities on the moto tables, the
connector and its keys at the fake's URLs, and follow-up work as an asynchronous self-invocation."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters

from local.fake_teams import Conversation, FakeTeams, TeamsUser, bearer_headers, installation_update, invoke_action
from signoff import composition
from signoff.adapters.lambda_invoke import SelfInvoke
from signoff.domain.models import Checkpoint, Status
from signoff.testing.memory import FixedClock, InMemoryCheckpointRepository, InMemoryWorkflow
from signoff.usecases.decisions import DecisionService
from signoff.usecases.workflow_steps import Steps
from tests.helpers import FakeLambdaContext, Tables, api_event, derived_policy, load_handler
from tests.slackfakes import TASK_TOKEN, make_checkpoint
from tests.teamsfakes import CHANNELS, TEAM, teams_routing

pytestmark = pytest.mark.integration

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:signoff-teams"
BOB = TeamsUser("22222222-2222-4222-8222-222222222222", "Bob Chen", "bob@example.com")
CAROL = TeamsUser("33333333-3333-4333-8333-333333333333", "Carol Diaz", "carol@example.com")


@dataclass
class RecordingLambda:
    """Stands in for the Lambda client the follow-ups are sent with."""

    invocations: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.invocations.append({"FunctionName": FunctionName, "InvocationType": InvocationType, "Payload": Payload})
        return {"StatusCode": 202}


@dataclass
class Deployed:
    fake: FakeTeams
    repo: InMemoryCheckpointRepository
    workflow: InMemoryWorkflow
    lam: RecordingLambda
    steps: Steps


@pytest.fixture
def deployed(tables: Tables, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Deployed]:
    """The function's environment and secret, wiring on in-memory checkpoints, the self-invocations
    recorded instead of sent, and every logger at DEBUG (nothing below may leak even then)."""
    with FakeTeams() as fake:
        secret = boto3.client("secretsmanager").create_secret(
            Name="signoff/teams",
            SecretString=json.dumps(
                {"app_id": fake.app_id, "app_password": fake.app_password, "tenant_id": fake.tenant}
            ),
        )
        for name, value in {
            "TEAMS_SECRET_ARN": secret["ARN"],
            "TEAMS_JWKS_URL": fake.jwks_url,
            "TEAMS_LOGIN_URL": fake.login_url,
            "TEAMS_SERVICE_URL": fake.service_url,
            "TEAMS_TRUSTED_HOSTS": fake.host,
        }.items():
            monkeypatch.setenv(name, value)
        caplog.set_level(logging.DEBUG)
        caplog.set_level(logging.DEBUG, logger="signoff")
        routing = teams_routing()
        for person in routing.routing.people:
            if person.teams:
                fake.add_user(person.teams.aad, name=person.name, email=person.id)
        repo, clock, workflow = InMemoryCheckpointRepository(), FixedClock(), InMemoryWorkflow()
        decisions = DecisionService(repo, clock, workflow)
        composition.reset()
        # chats() would be Slack alone here: the function adds its own Teams surface.
        lam = RecordingLambda()
        composition.override(
            repository=repo, routing=routing, clock=clock, workflow=workflow, decisions=decisions, chats=[],
            self_invoke=SelfInvoke(FUNCTION_ARN, client=lam),
        )  # fmt: skip
        steps = Steps(repo=repo, clock=clock, workflow=workflow, routing=routing, chats=[composition.teams_chat()],
                      callbacks=None, decisions=decisions)  # fmt: skip
        yield Deployed(fake, repo, workflow, lam, steps)
        parameters.clear_caches()
        composition.reset()


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    context = FakeLambdaContext(function_name="signoff-teams", invoked_function_arn=FUNCTION_ARN)
    return load_handler("teams").handler(event, context)  # type: ignore[no-any-return]


def _event(d: Deployed, activity: dict[str, Any], **mint: Any) -> dict[str, Any]:
    token = d.fake.mint(activity, **mint)
    return api_event("POST", "/teams/messages", body=json.dumps(activity), headers=bearer_headers(token))


def _click(
    d: Deployed, user: TeamsUser, cp: Checkpoint, verb: str, inputs: dict[str, Any] | None = None
) -> dict[str, Any]:
    ref = next(m for m in d.repo.get(cp.id).messages if m.kind == "card")
    release = Conversation(ref.channel, team_id=TEAM, tenant=d.fake.tenant)
    data = {"checkpoint_id": cp.id, **(inputs or {})}
    return invoke_action(user, release, verb, data, service_url=d.fake.service_url, reply_to=ref.ts)


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    records = caplog.get_records("setup") + caplog.get_records("call")
    return "\n".join(json.dumps(r.__dict__, default=str) for r in records)


def _open(d: Deployed) -> Checkpoint:
    policy = derived_policy({"gates.two-person.comment_required": False})
    cp = make_checkpoint("hard", {"risk.data_sensitivity": "internal"}, policy=policy, repo=d.repo,
                         routing=composition.routing(), clock=composition.clock())  # type: ignore[arg-type]  # fmt: skip
    d.steps.notify(cp.id, "initial", TASK_TOKEN)
    return d.repo.get(cp.id)


def test_a_click_is_answered_then_finished_by_the_self_invocation(
    deployed: Deployed, caplog: pytest.LogCaptureFixture
) -> None:
    d = deployed
    grace = TeamsUser("77777777-7777-4777-8777-777777777777", "Grace Hopper")
    install = installation_update(grace, Conversation(CHANNELS["release"], team_id=TEAM, tenant=d.fake.tenant),
                                  service_url=d.fake.service_url)  # fmt: skip
    assert invoke(_event(d, install))["statusCode"] == 200
    cp = _open(d)
    click = _click(d, BOB, cp, "approve")

    # When Bob approves: the invoke is answered with his card at once
    answer = invoke(_event(d, click))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.card.adaptive"
    assert body["value"]["body"][0]["text"] == "Approval recorded (1 of 2)."
    (card,) = d.fake.activities(CHANNELS["release"])
    assert card.updates == 0  # the shared card is the follow-up's job

    # Then the follow-up went to Lambda asynchronously, naming the checkpoint (no payload, no token)
    (call,) = d.lam.invocations
    assert (call["FunctionName"], call["InvocationType"]) == (FUNCTION_ARN, "Event")
    followup = json.loads(call["Payload"])
    assert followup == {"signoff_teams_followup": {"checkpoint_id": cp.id, "act": "approve", "seq": cp.audit_seq + 1}}

    # When that invocation runs, the shared card shows the vote
    assert invoke(followup) == {"statusCode": 200}
    assert d.fake.activity(CHANNELS["release"], card.id).updates == 1
    assert "1 of 2 approvals: Bob Chen" in d.fake.activity(CHANNELS["release"], card.id).text()

    # And the retried delivery of the same click changes nothing
    invoke(_event(d, click))
    assert len(d.repo.get(cp.id).votes) == 1 and len(d.lam.invocations) == 1

    # And the logs hold ids and outcomes, never a token, the password or the payload
    text = _logged(caplog)
    clicks = [r for r in caplog.records if r.getMessage() == "teams click"]
    assert [(r.checkpoint_id, r.action, r.user_aad, r.outcome) for r in clicks] == [
        (cp.id, "approve", BOB.aad, "recorded")
    ]
    tokens = [c.token for c in d.fake.calls() if c.token]
    for secret in (d.fake.app_password, TASK_TOKEN, *tokens, cp.request.summary):
        assert secret not in text
    assert "eyJ" not in text  # no JWT, not even a piece of one


def test_a_forged_request_is_rejected_by_the_handler(deployed: Deployed, caplog: pytest.LogCaptureFixture) -> None:
    d = deployed
    cp = _open(d)
    event = _event(d, _click(d, CAROL, cp, "approve"), audience="someone-elses-bot")

    assert invoke(event)["statusCode"] == 401
    assert d.repo.get(cp.id).votes == [] and d.lam.invocations == []
    (rejected,) = [r for r in caplog.records if r.getMessage() == "teams request rejected"]
    assert (rejected.reason, rejected.status) == ("wrong_audience", 401)
    assert d.repo.get(cp.id).status is Status.PENDING


def test_a_follow_up_event_is_only_ever_the_functions_own(deployed: Deployed) -> None:
    d = deployed
    cp = _open(d)
    # An API Gateway event that carries the follow-up key is still a request: it needs the JWT.
    event = api_event("POST", "/teams/messages", body="{}", headers={})
    event["signoff_teams_followup"] = {"checkpoint_id": cp.id, "act": "approve", "seq": 1}

    assert invoke(event)["statusCode"] == 401

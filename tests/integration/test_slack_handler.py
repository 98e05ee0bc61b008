"""functions/slack/handler.py as Lambda runs it: settings from the environment, the Slack secret
from Secrets Manager (moto) through Powertools, the Web API at SLACK_API_URL (the fake), and bolt's
lazy work as an asynchronous self-invocation carrying the original signed request."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws
from slack_bolt.adapter.aws_lambda.lazy_listener_runner import LambdaLazyListenerRunner

from local.fake_slack import interactivity_body, signed_request, view_submission_payload
from signoff import composition
from signoff.audit.events import EventType
from signoff.domain.cards import build_card
from signoff.domain.models import Status
from signoff.surfaces.slack.blocks import Form
from signoff.surfaces.slack.chat import SlackChat
from tests.helpers import FakeLambdaContext, api_event, load_handler
from tests.slackfakes import SIGNING_SECRET, TASK_TOKEN, SlackWorld, slack_world

pytestmark = pytest.mark.integration

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:signoff-slack"


@dataclass
class RecordingLambda:
    """Stands in for the Lambda client bolt's runner uses to re-invoke the function."""

    invocations: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.invocations.append({"FunctionName": FunctionName, "InvocationType": InvocationType, "Payload": Payload})
        return {"StatusCode": 202}


@pytest.fixture
def deployed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[tuple[SlackWorld, RecordingLambda]]:
    """The function's environment and secret, wiring pointed at in-memory Signoff pieces, the
    lazy re-invocations recorded instead of sent, and every logger at DEBUG (nothing below may
    leak even then)."""
    with slack_world() as world, mock_aws():
        secret = boto3.client("secretsmanager").create_secret(
            Name="signoff/slack",
            SecretString=json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": world.fake.token}),
        )
        monkeypatch.setenv("SLACK_SECRET_ARN", secret["ARN"])
        monkeypatch.setenv("SLACK_API_URL", world.fake.url)
        caplog.set_level(logging.DEBUG)  # from here on: the test's own secret is not the point
        caplog.set_level(logging.DEBUG, logger="signoff")
        composition.reset()
        composition.override(repository=world.repo, routing=world.routing, clock=world.clock, decisions=world.decisions)
        lam = RecordingLambda()
        handler = composition.slack_handler()
        handler.app.listener_runner.lazy_listener_runner = LambdaLazyListenerRunner(logging.getLogger("test"), lam)
        yield world, lam
        parameters.clear_caches()
        composition.reset()


def _event(body: str) -> dict[str, Any]:
    return api_event("POST", "/slack/events", body=body, headers=signed_request(body, SIGNING_SECRET))


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    context = FakeLambdaContext(function_name="signoff-slack", invoked_function_arn=FUNCTION_ARN)
    return load_handler("slack").handler(event, context)  # type: ignore[no-any-return]


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of every logger since the fixture began (the secret is fetched there), with
    all its attributes (extras included)."""
    records = caplog.get_records("setup") + caplog.get_records("call")
    return "\n".join(json.dumps(r.__dict__, default=str) for r in records)


def test_a_click_is_acked_then_finished_by_the_lazy_self_invocation(
    deployed: tuple[SlackWorld, RecordingLambda], caplog: pytest.LogCaptureFixture
) -> None:
    world, lam = deployed
    cp = world.open("soft")

    # When Dave vetoes: the ack path records the veto and answers at once
    ack = invoke(_event(world.click_body("dave", cp, "veto")))
    assert ack["statusCode"] == 200 and world.get(cp.id).status is Status.DENIED
    assert world.workflow.answers == {TASK_TOKEN: {"status": "DENIED", "decided_by": "Dave Okafor"}}
    assert world.fake.calls("chat.update") == [] and world.ephemerals("dave") == []

    # Then bolt asked Lambda to run the lazy half asynchronously, with the signed request
    (call,) = lam.invocations
    assert call["InvocationType"] == "Event" and call["FunctionName"] == FUNCTION_ARN
    lazy_event = json.loads(call["Payload"])
    assert lazy_event["headers"]["x-slack-bolt-lazy-only"] == "1"

    # When that invocation runs, the card is updated and Dave is told
    assert invoke(lazy_event)["statusCode"] == 200
    assert "Denied by Dave Okafor at 12:00 UTC: vetoed" in world.card(cp).block_text()
    assert world.ephemerals("dave") == ["Your veto (12:00 UTC) is recorded. The checkpoint is denied."]
    assert lam.invocations == [call]  # the lazy run starts nothing further

    # And the logs hold ids and outcomes, never the payload, the token or a secret
    text = _logged(caplog)
    clicks = [r for r in caplog.records if r.getMessage() == "slack click"]
    assert [(r.checkpoint_id, r.action, r.user_id, r.outcome) for r in clicks] == [(cp.id, "veto", "U0DAVE", "decided")]
    for secret in (SIGNING_SECRET, world.fake.token, TASK_TOKEN, "trigger", "response_url", cp.request.summary):
        assert secret not in text


def test_a_form_submission_through_the_handler_keeps_what_people_typed_out_of_the_logs(
    deployed: tuple[SlackWorld, RecordingLambda], caplog: pytest.LogCaptureFixture
) -> None:
    world, lam = deployed
    cp = world.open("hard", {"risk.data_sensitivity": "internal"})
    payload = view_submission_payload(
        "T0SIGNOFF", "U0BOB", Form.DENY, cp.id, {"reason": "PRIVATE REASON 42"}, world.trigger_id()
    )
    response = invoke(_event(interactivity_body(payload)))
    for call in lam.invocations:
        invoke(json.loads(call["Payload"]))

    assert response["statusCode"] == 200 and world.get(cp.id).status is Status.DENIED
    assert [e.type for e in world.events(cp.id)][-2:] == [EventType.VOTED, EventType.DECIDED]
    assert "Denied by Bob Chen" in world.card(cp).block_text()
    assert "slack form" in caplog.text and "PRIVATE REASON 42" not in _logged(caplog)


def test_a_request_with_a_bad_signature_is_rejected_by_the_handler(
    deployed: tuple[SlackWorld, RecordingLambda],
) -> None:
    world, lam = deployed
    cp = world.open("soft")
    event = _event(world.click_body("dave", cp, "veto"))
    event["headers"]["X-Slack-Signature"] = "v0=" + "0" * 64

    assert invoke(event)["statusCode"] == 401
    assert world.get(cp.id).status is Status.PENDING and lam.invocations == []


def test_the_slack_chat_for_the_steps_comes_from_settings_and_the_secret(
    deployed: tuple[SlackWorld, RecordingLambda],
) -> None:
    world, _ = deployed

    chat = composition.chats()[0]
    ref = chat.post_card("C0SIGNOFF", None, build_card(world.open("soft")))

    assert isinstance(chat, SlackChat) and composition.slack_chat() is chat
    assert ref is not None and world.fake.calls("chat.postMessage")[-1].token == world.fake.token

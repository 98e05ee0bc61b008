"""Helpdesk approvals on in-memory fakes: the form's validation, the checkpoint each step becomes
(same engine, policy, routing; the asker never approves), the thread's updates, multi-step chains
that a denial stops, the executor's signed webhook sent once per approval, and the trail."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from signoff.adapters.webhook import WebhookSender, delivery_id, verify
from signoff.audit.events import EventType, verify_chain
from signoff.domain.acts import Act, Actor, Refusal
from signoff.domain.errors import PolicyError
from signoff.domain.helpdesk.approvals import (
    HELPDESK_CALLER,
    ApprovalState,
    checkpoint_request,
    data_sensitivity,
    step_of,
)
from signoff.domain.helpdesk.config import FormInput, parse_helpdesk_config
from signoff.domain.helpdesk.router import load_helpdesk
from signoff.domain.models import Status
from signoff.domain.policy import DataSensitivity, GateKind, load_policy, parse_policy
from signoff.domain.routing import load_routing
from signoff.ports import HelpdeskAction
from signoff.surfaces.slack.helpdesk_approvals import HelpdeskApprovalListeners, approval_view, read_values
from signoff.testing.memory import (
    FixedClock,
    InMemoryChat,
    InMemoryCheckpointRepository,
    InMemoryConversationRepository,
    InMemoryHelpdeskChat,
    InMemoryTicketing,
    InMemoryWorkflow,
)
from signoff.usecases.decisions import DecisionService
from signoff.usecases.helpdesk import HelpdeskService, Question
from signoff.usecases.helpdesk_approvals import FormRefused, HelpdeskApprovals, executor_body, flow_problems
from signoff.usecases.intake import CheckpointService
from signoff.usecases.workflow_steps import Steps

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
ROUTING = load_routing(ROOT / "routing.yaml")
POLICY = load_policy(ROOT / "signoff.yaml")
KEY = b"executor-test-key"
TEAM = "T0SIGNOFF"
ALICE, GRACE, BOB, ERIN = "U0ALICE", "U0GRACE", "U0BOB", "U0ERIN"
ACCESS = {
    "system": "service-api",
    "role": "viewer",
    "duration": "30 days",
    "justification": "quarterly reporting for the payments team",
    "manager": GRACE,
}


class Response:
    def __init__(self, status: int) -> None:
        self.status = status

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *_: object) -> None:
        return None


class Automation:
    """Stands in for the organisation's automation: records each signed request it receives."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[str, dict[str, str], bytes]] = []

    def open(self, fullurl: Any, data: None = None, timeout: float = 0) -> Response:
        self.received.append((fullurl.full_url, dict(fullurl.header_items()), fullurl.data))
        if self.status >= 400:
            from urllib.error import HTTPError

            raise HTTPError(fullurl.full_url, self.status, "failed", {}, None)  # type: ignore[arg-type]
        return Response(self.status)


class World:
    def __init__(self, policy: Any = POLICY, automation_status: int = 200) -> None:
        self.clock = FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
        self.conversations = InMemoryConversationRepository()
        self.chat = InMemoryHelpdeskChat()
        self.ticketing = InMemoryTicketing()
        self.helpdesk = HelpdeskService(HELPDESK, self.conversations, self.chat, self.clock, ticketing=self.ticketing)
        self.checkpoints_repo = InMemoryCheckpointRepository()
        self.workflow = InMemoryWorkflow()
        self.checkpoints = CheckpointService(self.checkpoints_repo, policy, self.clock, ROUTING, self.workflow)
        self.automation = Automation(automation_status)
        sender = WebhookSender(KEY, opener=self.automation, sleep=lambda _s: None, clock=lambda: 1_763_283_600.0)
        self.approvals = HelpdeskApprovals(self.helpdesk, self.checkpoints, ROUTING, executor=sender)
        self.decisions = DecisionService(self.checkpoints_repo, self.clock, self.workflow)
        self.steps = Steps(
            repo=self.checkpoints_repo,
            clock=self.clock,
            workflow=self.workflow,
            routing=ROUTING,
            chats=[InMemoryChat()],
            callbacks=None,
            decisions=self.decisions,
            listeners=[self.approvals],
        )

    def ask(self, text: str = "I need access to Salesforce", user: str = ALICE) -> str:
        question = Question(
            text=text, user=user, channel="C01ITHELP", thread_ts="1700000000.000100", source="message", team=TEAM
        )
        return self.helpdesk.ask(question).id

    def click(self, slack_user: str, checkpoint_id: str, act: Act = Act.APPROVE) -> Any:
        person = ROUTING.routing.by_slack(TEAM, slack_user)
        assert person is not None
        actor = Actor(surface="slack", handle=f"slack:{TEAM}/{slack_user}", person=person.id, name=person.name)
        return self.decisions.act(checkpoint_id, actor, act, comment="fine by me")

    def decide_and_finalize(self, slack_user: str, checkpoint_id: str, act: Act = Act.APPROVE) -> None:
        result = self.click(slack_user, checkpoint_id, act)
        assert result.ok and result.decided, result.message
        self.steps.finalize(checkpoint_id, None)

    def step_ids(self, conversation_id: str) -> list[str]:
        record = self.conversations.get(conversation_id).approval
        return [s.checkpoint_id for s in record.steps] if record else []

    def types(self, conversation_id: str) -> list[EventType]:
        return [e.type for e in self.conversations.events(conversation_id)]


@pytest.fixture
def world() -> World:
    return World()


# -- the form ------------------------------------------------------------------------------------


def test_the_approval_reply_offers_the_form_and_states_the_boundary(world: World) -> None:
    conv_id = world.ask()

    reply = world.chat.posts[0][4]
    assert reply.actions == [HelpdeskAction.REQUEST, HelpdeskAction.HUMAN]
    form = world.approvals.form_for(conv_id, ALICE)
    assert [f.name for f in form.fields] == ["system", "role", "duration", "justification", "manager"]
    assert "I can draft this request; your manager and the system owner must approve it" in form.boundary
    assert ("service-api", "service-api (owned by payments)") in form.systems

    view = approval_view(form)
    elements = {b["block_id"]: b["element"]["type"] for b in view["blocks"] if b["type"] == "input"}
    assert elements["manager"] == "users_select" and elements["system"] == "static_select"
    assert elements["justification"] == "plain_text_input"
    assert view["private_metadata"] == conv_id and view["callback_id"] == "helpdesk:approval"


def test_only_the_asker_may_open_the_form_and_someone_else_trying_is_audited(world: World) -> None:
    conv_id = world.ask()

    with pytest.raises(FormRefused, match="Only the person who asked"):
        world.approvals.form_for(conv_id, GRACE)
    with pytest.raises(FormRefused):
        world.approvals.submit(conv_id, GRACE, dict(ACCESS))

    assert world.types(conv_id).count(EventType.HELPDESK_REFUSED) == 2
    assert world.workflow.started == {}
    assert world.conversations.get(conv_id).approval is None


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"manager": ALICE}, "manager", "cannot approve your own request"),
        ({"manager": "U0NOBODY"}, "manager", "not in Signoff's directory"),
        ({"manager": BOB}, "manager", "as the directory names them"),  # Alice's manager is Grace
        ({"system": "the-mainframe"}, "system", "Choose one of the listed systems"),
        ({"justification": "  "}, "justification", "Please give why you need it"),
        ({"justification": "password: Hunter2-Zebra-Quartz-991"}, "justification", "looks like a password"),
        ({"role": "x" * 501}, "role", "At most 500 characters"),
        ({"duration": "two\x00weeks"}, "duration", "plain text"),
    ],
)
def test_a_wrong_answer_is_named_beside_its_field_and_nothing_is_written(
    world: World, change: dict[str, str], field: str, says: str
) -> None:
    conv_id = world.ask()

    errors = world.approvals.submit(conv_id, ALICE, {**ACCESS, **change})

    assert list(errors) == [field] and says in errors[field]
    assert world.conversations.get(conv_id).approval is None
    assert world.workflow.started == {}
    assert EventType.HELPDESK_APPROVAL_REQUESTED not in world.types(conv_id)


def test_the_modal_ack_shows_errors_as_slack_response_action_errors(world: World) -> None:
    conv_id = world.ask()
    listeners = HelpdeskApprovalListeners(world.approvals)
    acks: list[dict[str, Any]] = []
    values = {k: {k: {"type": "plain_text_input", "value": v}} for k, v in ACCESS.items()}
    values["manager"] = {"manager": {"type": "users_select", "selected_user": ALICE}}
    values["system"] = {"system": {"type": "static_select", "selected_option": {"value": "service-api"}}}
    view = {"private_metadata": conv_id, "state": {"values": values}}

    listeners.check(lambda **kw: acks.append(kw), {"user": {"id": ALICE}}, view)  # type: ignore[arg-type]

    assert read_values(view)["system"] == "service-api" and read_values(view)["manager"] == ALICE
    assert acks == [{"response_action": "errors", "errors": {"manager": acks[0]["errors"]["manager"]}}]
    assert "cannot approve your own request" in acks[0]["errors"]["manager"]

    values["manager"] = {"manager": {"type": "users_select", "selected_user": GRACE}}
    listeners.check(lambda **kw: acks.append(kw), {"user": {"id": ALICE}}, view)  # type: ignore[arg-type]
    assert acks[1] == {}  # valid: the modal closes, the lazy half creates the checkpoint
    assert world.conversations.get(conv_id).approval is None


# -- the mapping ---------------------------------------------------------------------------------


def test_the_form_becomes_a_checkpoint_of_the_asker_routed_to_the_named_manager(world: World) -> None:
    conv_id = world.ask()

    assert world.approvals.submit(conv_id, ALICE, dict(ACCESS)) == {}

    [cp_id] = world.step_ids(conv_id)
    cp = world.checkpoints_repo.get(cp_id)
    assert cp.caller == HELPDESK_CALLER and step_of(cp) == (conv_id, 0)
    assert cp.request.requester.id == "alice@example.com" and cp.request.requester.kind == "person"
    assert cp.request.action == "grant-access" and cp.request.environment == "production"
    assert cp.request.service == "service-api" and cp.request.request_id == f"{conv_id}.0"
    assert cp.request.risk.production_data is True  # a privileged class
    assert cp.request.risk.data_sensitivity is DataSensitivity.CONFIDENTIAL  # access_request: risk 1.2
    assert cp.request.signals.model_confidence == round(world.conversations.get(conv_id).triage.confidence / 100, 4)
    assert all(check.passed for check in cp.request.signals.validation)
    assert "justification" not in cp.request.summary and "quarterly reporting" in cp.request.summary
    # The policy decided the gate; the routing decided who approves: the manager the form names
    # (and the gate's escalation route), never the asker.
    assert cp.assessment.gate.kind is GateKind.HARD and cp.assessment.gate.sensitive
    assert "grace@example.com" in cp.approvers and "alice@example.com" not in cp.approvers
    assert world.workflow.started[cp_id]["gate"] == "hard"  # the approval state machine, as for any checkpoint


def test_risk_facts_follow_the_class_risk() -> None:
    classes = HELPDESK.loaded.config.classes
    assert data_sensitivity(classes["software_request"]) is DataSensitivity.INTERNAL
    assert data_sensitivity(classes["access_request"]) is DataSensitivity.CONFIDENTIAL
    riskier = classes["policy_exception"].model_copy(update={"risk": 1.6})
    assert data_sensitivity(riskier) is DataSensitivity.RESTRICTED


def test_a_checkpoint_is_the_helpdesks_only_when_the_helpdesk_created_it(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    cp = world.checkpoints_repo.get(world.step_ids(conv_id)[0])

    forged = cp.model_copy(update={"caller": "arn:aws:iam::123456789012:role/ci"})

    assert step_of(forged) is None
    world.approvals.decided(forged.model_copy(update={"status": Status.APPROVED}))
    assert len(world.step_ids(conv_id)) == 1 and world.automation.received == []


def test_the_same_step_always_maps_to_the_same_request(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    conv = world.conversations.get(conv_id)
    cls = HELPDESK.loaded.config.classes["access_request"]
    assert cls.approval is not None
    args = {
        "conversation_id": conv_id,
        "record": conv.approval,
        "cls": cls,
        "form": HELPDESK.loaded.config.forms["access"],
        "flow": cls.approval,
        "confidence": conv.triage.confidence,
        "requester_name": "Alice Martin",
    }
    assert checkpoint_request(index=1, **args) == checkpoint_request(index=1, **args)  # type: ignore[arg-type]
    assert checkpoint_request(index=1, **args).request_id == f"{conv_id}.1"  # type: ignore[arg-type]


# -- the steps, the thread, the executor ---------------------------------------------------------


def test_manager_then_owner_then_the_executor_runs_once_and_the_thread_shows_each_step(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    [first] = world.step_ids(conv_id)

    refused = world.click(ALICE, first)  # the requester may never approve
    assert not refused.ok and refused.refusal in (Refusal.REQUESTER, Refusal.UNAUTHORIZED)
    world.decide_and_finalize(GRACE, first)

    # Step 2 exists only now, routed to the system's owners (the payments team), never the asker.
    first_cp, [_, second] = world.checkpoints_repo.get(first), world.step_ids(conv_id)
    owners = world.checkpoints_repo.get(second).approvers
    assert first_cp.status is Status.APPROVED
    assert {"alice@example.com"}.isdisjoint(owners) and {"bob@example.com", "dave@example.com"} <= set(owners)
    assert world.automation.received == []

    world.decide_and_finalize(BOB, second)

    [(url, headers, body)] = world.automation.received
    assert url == "https://automation.lumen-freight.example/hooks/access-grant"
    timestamp = int(headers["X-signoff-timestamp"])
    assert verify(KEY, timestamp, body, headers["X-signoff-signature"], now=timestamp)
    sent = json.loads(body)
    assert sent["requester"] == "alice@example.com" and sent["fields"]["manager"] == "grace@example.com"
    assert [s["checkpoint_id"] for s in sent["steps"]] == [first, second]
    conv = world.conversations.get(conv_id)
    assert conv.approval is not None and conv.approval.state is ApprovalState.EXECUTED
    assert headers["X-signoff-delivery"] == delivery_id(
        json.dumps(executor_body(conv, conv.approval), sort_keys=True, separators=(",", ":")).encode()
    )

    thread = [(p[1], p[2], p[4].text) for p in world.chat.posts[1:]]
    dm, bot_ts = world.conversations.get(conv_id).reply_channel, world.conversations.get(conv_id).reply_ts
    assert all((channel, ts) == (dm, bot_ts) for channel, ts, _ in thread)  # under the bot's DM
    texts = [t for *_, t in thread]
    assert texts[0].startswith("Step 1 of 2: Grace Hopper decides") and first in texts[0]
    assert texts[1].startswith("Step 1 of 2 approved by Grace Hopper")
    assert texts[2].startswith("Step 2 of 2: the owners of service-api decide") and second in texts[2]
    assert texts[3].startswith("Step 2 of 2 approved by Bob Chen")
    assert texts[4].startswith("Done: the automation accepted the request (HTTP 200")

    # Finalize runs again (a Step Functions retry): nothing is sent or posted twice.
    posts = len(world.chat.posts)
    world.steps.finalize(second, None)
    world.steps.finalize(first, None)
    assert len(world.automation.received) == 1 and len(world.chat.posts) == posts
    assert len(world.step_ids(conv_id)) == 2


EXCEPTION = {
    "policy": "USB storage block",
    "justification": "to transfer benchmark data to the lab's offline rig",
    "duration": "14 days",
    "manager": GRACE,
}


def test_a_policy_exception_needs_the_manager_then_the_security_officer_role(world: World) -> None:
    conv_id = world.ask("I need an exception to the usb block for two weeks")
    assert world.conversations.get(conv_id).triage.class_name == "policy_exception"
    assert world.approvals.submit(conv_id, ALICE, dict(EXCEPTION)) == {}
    [first] = world.step_ids(conv_id)
    assert world.checkpoints_repo.get(first).approvers[:1] == ["grace@example.com"]
    world.decide_and_finalize(GRACE, first)

    # Step 2 goes to routing.yaml's security-officer role (Erin); the manager cannot decide it for them.
    [_, second] = world.step_ids(conv_id)
    cp = world.checkpoints_repo.get(second)
    assert "erin@example.com" in cp.approvers and "alice@example.com" not in cp.approvers
    assert "step 2 of 2: the security-officer" in cp.request.summary
    refused = world.click(GRACE, second)
    assert not refused.ok
    assert world.automation.received == []
    world.decide_and_finalize(ERIN, second)

    [(url, _headers, body)] = world.automation.received
    assert url == "https://automation.lumen-freight.example/hooks/policy-exception"
    assert [s["step"] for s in json.loads(body)["steps"]] == ["manager", "role"]
    texts = [p[4].text for p in world.chat.posts[1:]]
    assert texts[2].startswith("Step 2 of 2: security-officer (Erin") and second in texts[2]
    assert world.conversations.get(conv_id).approval.state is ApprovalState.EXECUTED  # type: ignore[union-attr]


def test_a_role_step_needs_a_role_that_routing_knows() -> None:
    data = yaml.safe_load((ROOT / "helpdesk.yaml").read_text())
    del data["classes"]["policy_exception"]["approval"]["role"]
    with pytest.raises(PolicyError, match="a role step needs the routing.yaml role"):
        parse_helpdesk_config(data)
    data = yaml.safe_load((ROOT / "helpdesk.yaml").read_text())
    data["classes"]["policy_exception"]["approval"]["role"] = "wizard"
    config = parse_helpdesk_config(data).config
    problems = flow_problems(config.classes, POLICY.policy.environments, ROUTING)
    assert problems == ["classes.policy_exception.approval.role: 'wizard' is not a routing.yaml role with members"]


def test_the_trail_records_checkpoints_states_and_the_executor_result_and_no_secret(world: World) -> None:
    conv_id = world.ask()
    answers = {**ACCESS, "justification": "reporting, mail me at alice.martin@lumen-freight.example"}
    world.approvals.submit(conv_id, ALICE, answers)
    world.decide_and_finalize(GRACE, world.step_ids(conv_id)[0])
    world.decide_and_finalize(BOB, world.step_ids(conv_id)[1])

    events = world.conversations.events(conv_id)
    assert verify_chain(events) == []
    types = [e.type for e in events]
    assert types.count(EventType.HELPDESK_APPROVAL_REQUESTED) == 2
    assert types.count(EventType.HELPDESK_APPROVAL_DECIDED) == 2 and types.count(EventType.HELPDESK_EXECUTED) == 1
    requested = [e.data for e in events if e.type is EventType.HELPDESK_APPROVAL_REQUESTED]
    assert [r["checkpoint_id"] for r in requested] == world.step_ids(conv_id)
    decided = [e.data for e in events if e.type is EventType.HELPDESK_APPROVAL_DECIDED]
    assert [d["state"] for d in decided] == ["pending", "approved"]
    executed = next(e.data for e in events if e.type is EventType.HELPDESK_EXECUTED)
    assert executed["delivered"] is True and executed["host"] == "automation.lumen-freight.example"
    trail = json.dumps([e.data for e in events])
    assert "alice.martin@lumen-freight.example" not in trail and "hooks/access-grant" not in trail
    stored = world.conversations.get(conv_id).approval
    assert stored is not None and "alice.martin@" not in stored.fields["justification"]  # redacted
    assert "alice.martin@" not in world.automation.received[0][2].decode()


def test_a_denial_stops_the_chain(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))

    world.decide_and_finalize(GRACE, world.step_ids(conv_id)[0], Act.DENY)

    conv = world.conversations.get(conv_id)
    assert conv.approval is not None and conv.approval.state is ApprovalState.STOPPED
    assert len(world.step_ids(conv_id)) == 1 and world.automation.received == []
    assert "denied by Grace Hopper" in world.chat.texts()[-1] and "Nothing was granted" in world.chat.texts()[-1]


def test_an_expired_step_stops_the_chain_too(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    first = world.step_ids(conv_id)[0]

    world.clock.advance(7 * 24 * 3600)
    world.steps.finalize(first, {"timed_out": True})  # nobody decided: the fail-closed rule applies

    assert world.checkpoints_repo.get(first).status is Status.EXPIRED
    assert len(world.step_ids(conv_id)) == 1 and world.automation.received == []
    assert "expired" in world.chat.texts()[-1]


def test_an_executor_that_fails_is_said_in_the_thread_and_not_called_again() -> None:
    world = World(automation_status=500)
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    world.decide_and_finalize(GRACE, world.step_ids(conv_id)[0])
    world.decide_and_finalize(BOB, world.step_ids(conv_id)[1])

    conv = world.conversations.get(conv_id)
    assert conv.approval is not None and conv.approval.state is ApprovalState.EXECUTION_FAILED
    attempts = len(world.automation.received)
    assert attempts == 4 and "did not take the request (gave up after 4 attempts: HTTP 500)" in world.chat.texts()[-1]
    world.steps.finalize(world.step_ids(conv_id)[1], None)
    assert len(world.automation.received) == attempts


def test_an_auto_gate_approves_at_once_and_the_executor_runs_without_a_workflow() -> None:
    data = yaml.safe_load((ROOT / "signoff.yaml").read_text())
    lenient = copy.deepcopy(data)
    for risk in ("low", "medium"):  # software in production is a medium-risk change
        lenient["matrix"][risk] = {"high": "auto", "medium": "auto", "low": "auto"}
    world = World(policy=parse_policy(lenient))
    conv_id = world.ask("can I get photoshop for the town hall videos")
    assert world.conversations.get(conv_id).triage.class_name == "software_request"

    errors = world.approvals.submit(
        conv_id, ALICE, {"software": "Photoshop", "reason": "town hall videos", "manager": GRACE}
    )

    assert errors == {}
    cp = world.checkpoints_repo.get(world.step_ids(conv_id)[0])
    assert cp.assessment.gate.kind is GateKind.AUTO and cp.status is Status.APPROVED
    assert len(world.automation.received) == 1
    assert world.automation.received[0][0] == "https://automation.lumen-freight.example/hooks/software-request"
    assert "approved it at once" in world.chat.texts()[1]


def _lenient_world() -> World:
    data = yaml.safe_load((ROOT / "signoff.yaml").read_text())
    for risk in ("low", "medium"):
        data["matrix"][risk] = {"high": "auto", "medium": "auto", "low": "auto"}
    return World(policy=parse_policy(data))


SOFTWARE = {"software": "Photoshop", "reason": "town hall videos", "manager": GRACE}


def test_approval_then_the_change_ticket_then_the_change() -> None:
    world = _lenient_world()
    conv_id = world.ask("can I get photoshop for the town hall videos")
    assert world.approvals.submit(conv_id, ALICE, dict(SOFTWARE)) == {}

    # The approved request became a ticket in the class's queue's project before the automation ran
    [ticket] = world.ticketing.tickets
    assert ticket.project == "IT" and ticket.reference == f"{conv_id}.change" and "change" in ticket.labels
    assert "the software and edition: Photoshop" in ticket.description
    [(_url, _headers, body)] = world.automation.received
    assert json.loads(body)["ticket"] == {"key": "IT-1", "url": "https://tickets.example.com/browse/IT-1"}
    texts = world.chat.texts()
    opened = next(i for i, t in enumerate(texts) if t.startswith("Change ticket IT-1 opened"))
    done = next(i for i, t in enumerate(texts) if t.startswith("Done: the automation accepted"))
    assert opened < done
    assert world.types(conv_id).count(EventType.HELPDESK_CHANGE_TICKET) == 1

    # Finalize again (a retry): no second ticket, no second change
    world.steps.finalize(world.step_ids(conv_id)[0], None)
    assert len(world.ticketing.tickets) == 1 and len(world.automation.received) == 1


def test_no_change_ticket_no_change() -> None:
    world = _lenient_world()
    world.ticketing.fail_next = True
    conv_id = world.ask("can I get photoshop for the town hall videos")
    world.approvals.submit(conv_id, ALICE, dict(SOFTWARE))

    assert world.automation.received == []
    conv = world.conversations.get(conv_id)
    assert conv.approval is not None and conv.approval.state is ApprovalState.EXECUTION_FAILED
    assert conv.approval.executor_result == "no change ticket: ticketing unavailable"
    assert "The change ticket could not be opened (ticketing unavailable)" in world.chat.texts()[-1]
    [event] = [e for e in world.conversations.events(conv_id) if e.type is EventType.HELPDESK_CHANGE_TICKET]
    assert event.data == {"ticket_system": "jira", "ticket_key": None, "error": "ticketing unavailable"}
    world.steps.finalize(world.step_ids(conv_id)[0], None)  # a retry changes nothing: never executed late
    assert world.automation.received == [] and world.ticketing.tickets == []


def test_a_second_submission_of_the_same_form_creates_nothing_more(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))

    assert len(world.step_ids(conv_id)) == 1
    with pytest.raises(FormRefused, match="already sent"):
        world.approvals.form_for(conv_id, ALICE)


def test_finalize_tells_the_listener_after_the_decision_left_and_retries_when_it_fails(world: World) -> None:
    conv_id = world.ask()
    world.approvals.submit(conv_id, ALICE, dict(ACCESS))
    first = world.step_ids(conv_id)[0]
    world.click(GRACE, first)

    class Broken:
        def decided(self, checkpoint: Any) -> None:
            raise RuntimeError("down")

    world.steps.listeners = [Broken(), world.approvals]
    with pytest.raises(RuntimeError):
        world.steps.finalize(first, None)
    assert len(world.step_ids(conv_id)) == 2  # the other listener was told all the same


# -- configuration -------------------------------------------------------------------------------


def _config_with(executor: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "helpdesk.yaml").read_text())
    data["classes"]["access_request"]["approval"]["executor"] = executor
    return data


@pytest.mark.parametrize(
    ("executor", "says"),
    [
        ("http://automation.lumen-freight.example/hook", "https"),
        ("https://10.0.0.7/hook", "address"),
        ("https://169.254.169.254/latest", "link-local"),
        ("https://automation.internal/hook", "private"),
    ],
)
def test_an_executor_url_is_checked_like_a_callback(executor: str, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNOFF_ALLOW_LOOPBACK_CALLBACKS", raising=False)
    with pytest.raises(PolicyError) as raised:
        parse_helpdesk_config(_config_with(executor))
    [problem] = raised.value.problems
    assert problem.startswith("classes.access_request.approval") and "executor" in problem
    assert says in problem.lower()


def test_a_flow_needs_the_fields_its_steps_use_and_names_what_the_policy_and_routing_know() -> None:
    data = yaml.safe_load((ROOT / "helpdesk.yaml").read_text())
    data["forms"]["access"]["fields"] = [f for f in data["forms"]["access"]["fields"] if f["name"] != "manager"]
    with pytest.raises(PolicyError, match="manager step needs a required person field"):
        parse_helpdesk_config(data)

    data = yaml.safe_load((ROOT / "helpdesk.yaml").read_text())
    data["classes"]["access_request"]["approval"].update(environment="moon", systems=["service-api", "mainframe"])
    config = parse_helpdesk_config(data).config
    problems = flow_problems(config.classes, POLICY.policy.environments, ROUTING)
    assert any("'moon' is not one of the policy's" in p for p in problems)
    assert any("'mainframe' is not a service in routing.yaml" in p for p in problems)
    assert flow_problems(HELPDESK.loaded.config.classes, POLICY.policy.environments, ROUTING) == []
    form = HELPDESK.loaded.config.forms["access"]
    assert {f.name: f.input for f in form.fields}["manager"] is FormInput.PERSON

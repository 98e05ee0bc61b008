"""The approval workflow's Lambda steps on in-memory fakes: Notify keeps the task token, posts the
card where routing says (never a public channel for a sensitive checkpoint) and tells the
escalation route; Finalize applies the timeout rule, updates the cards, calls the webhook once and
answers an embedding workflow. Step Functions may retry either: nothing happens twice."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from signoff.audit.events import EventType
from signoff.domain.acts import Act
from signoff.domain.cards import build_card
from signoff.domain.models import Checkpoint, Status
from signoff.domain.policy import LoadedPolicy
from signoff.ports import TaskToken
from signoff.testing.memory import InMemoryChat
from signoff.usecases.results import result
from signoff.usecases.workflow_steps import ESCALATION, INITIAL, ChatUnavailable, NobodyReachable
from tests.gates import (
    BOB,
    CAROL,
    DAVE,
    GRACE,
    SECRET_TOKEN,
    Gates,
    RecordingWorkflow,
    actor,
    gates,
    hard_policy,
    soft_policy,
)
from tests.helpers import CALLER_ARN

pytestmark = pytest.mark.unit

INTERNAL = {"risk.data_sensitivity": "internal"}  # the hard sample, not sensitive
HOOK = "https://hooks.example.com/signoff"
CALLER_TOKEN = "caller-task-token-of-the-embedding-workflow"
APPROVER_DMS = [f"dm:{p}" for p in (BOB, CAROL, DAVE, GRACE)]


@pytest.fixture
def make_gates() -> Iterator[Callable[..., Gates]]:
    made: list[Gates] = []

    def build(policy: LoadedPolicy | None = None, **kwargs: Any) -> Gates:
        made.append(gates(policy, **kwargs))
        return made[-1]

    yield build
    for wired in made:
        wired.assert_chains()


@pytest.fixture
def g(make_gates: Callable[..., Gates]) -> Gates:
    return make_gates()


# -- Notify: the initial card ------------------------------------------------------------------


def test_notify_keeps_the_token_and_posts_a_production_card_to_the_release_channel(g: Gates) -> None:
    # Given a non-sensitive production checkpoint
    cp = g.create("hard", INTERNAL)
    assert not cp.assessment.gate.sensitive
    # When the Notify task runs
    out = g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    # Then the token is kept server-side until the first wait ends
    assert out == {"posted": 1}
    assert g.repo.get_token(cp.id) == TaskToken(
        token=SECRET_TOKEN, phase=INITIAL, expires_at=g.clock.now() + timedelta(minutes=30)
    )
    # and the card went to the production release channel, with its buttons
    assert [where for where, _ in g.chat.posts] == ["C0RELEASE"]
    card = g.chat.posts[0][1]
    assert card == build_card(cp) and [b.act for b in card.buttons][:2] == [Act.APPROVE, Act.DENY]
    stored = g.repo.get(cp.id)
    assert [(m.surface, m.channel, m.kind) for m in stored.messages] == [("slack", "C0RELEASE", "card")]
    last = g.events(cp.id)[-1]
    assert (last.type, last.actor) == (EventType.NOTIFIED, "signoff")
    assert last.data == {"sensitive": False, "destinations": ["slack:C0RELEASE"]}
    assert g.workflow.answer_calls == []


def test_a_sensitive_checkpoint_goes_to_each_approver_directly_never_to_a_public_channel(g: Gates) -> None:
    # Given the hard sample (confidential data: sensitive)
    cp = g.create("hard")
    assert cp.assessment.gate.sensitive
    # When Notify runs
    out = g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    # Then each approver gets the card in a DM and no channel gets it
    assert out == {"posted": 4}
    assert [where for where, _ in g.chat.posts] == APPROVER_DMS
    assert not any(where.startswith("C") for where, _ in g.chat.posts)
    assert g.events(cp.id)[-1].data == {"sensitive": True, "destinations": [f"slack:{d}" for d in APPROVER_DMS]}


def test_a_soft_gate_card_goes_to_the_owning_team_channel(g: Gates) -> None:
    cp = g.create("soft")
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    assert [where for where, _ in g.chat.posts] == ["C0PAYMENTS"]
    token = g.repo.get_token(cp.id)
    assert token is not None and token.expires_at == g.clock.now() + timedelta(minutes=10)


def test_a_retried_notify_posts_nothing_twice(g: Gates) -> None:
    # Given a checkpoint whose card was posted
    cp = g.create("hard")
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    # When Step Functions retries Notify (with the task's token)
    out = g.steps.notify(cp.id, INITIAL, "retried-token")
    # Then nothing is posted or recorded again; the newest token is the one kept
    assert out == {"posted": 0}
    assert len(g.chat.posts) == 4
    assert len(g.of_type(cp.id, EventType.NOTIFIED)) == 1
    assert len(g.repo.get(cp.id).messages) == 4
    token = g.repo.get_token(cp.id)
    assert token is not None and token.token == "retried-token"


def test_notify_after_the_checkpoint_was_decided_answers_at_once_and_posts_nothing(g: Gates) -> None:
    # Given a checkpoint cancelled before its Notify task ran
    cp = g.create("hard")
    g.service.cancel(cp.id, actor=CALLER_ARN, reason="superseded")
    # When Notify runs
    out = g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    # Then the task is answered with the decision at once and nobody is bothered
    assert out == {"posted": 0}
    assert g.workflow.answers == {SECRET_TOKEN: {"status": "CANCELLED", "decided_by": CALLER_ARN}}
    assert g.chat.posts == [] and g.chat.notices == []
    assert g.of_type(cp.id, EventType.NOTIFIED) == []


def test_nobody_reachable_when_every_destination_fails(make_gates: Callable[..., Gates]) -> None:
    # Given a chat where the release channel cannot be reached
    g = make_gates(chat=InMemoryChat(unreachable={"C0RELEASE"}))
    cp = g.create("hard", INTERNAL)
    # When Notify runs
    with pytest.raises(NobodyReachable):
        g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    # Then nothing claims to have notified anyone
    assert g.chat.posts == []
    assert g.of_type(cp.id, EventType.NOTIFIED) == []
    assert g.repo.get(cp.id).messages == []


def test_nobody_reachable_when_no_approver_takes_a_dm(make_gates: Callable[..., Gates]) -> None:
    g = make_gates(chat=InMemoryChat(unreachable={BOB, CAROL, DAVE, GRACE}))
    cp = g.create("hard")
    with pytest.raises(NobodyReachable):
        g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    assert g.of_type(cp.id, EventType.NOTIFIED) == []


def test_one_reachable_approver_is_enough(make_gates: Callable[..., Gates]) -> None:
    g = make_gates(chat=InMemoryChat(unreachable={BOB, DAVE, GRACE}))
    cp = g.create("hard")
    assert g.steps.notify(cp.id, INITIAL, SECRET_TOKEN) == {"posted": 1}
    assert g.events(cp.id)[-1].data["destinations"] == [f"slack:dm:{CAROL}"]


# -- Notify: escalation ------------------------------------------------------------------------


def test_escalation_tells_the_route_marks_the_checkpoint_and_updates_the_card(g: Gates) -> None:
    # Given a non-sensitive checkpoint whose card nobody answered within the approval deadline
    cp = g.create("hard", INTERNAL)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.clock.advance(30 * 60)
    # When Notify runs in the escalation phase
    out = g.steps.notify(cp.id, ESCALATION, "escalation-token")
    # Then the escalation route (release managers, public channel) gets a notice
    assert out == {"posted": 1}
    assert len(g.chat.notices) == 1
    where, text = g.chat.notices[0]
    assert where == "C0RELEASE"
    assert text == (
        "Escalated to release-managers: no decision yet on [Checkpoint Required] Deploy service-api v2.4.1 to"
        " production. If no response by 13:00 UTC this request is denied automatically."
    )
    # and the new wait is the escalation wait
    token = g.repo.get_token(cp.id)
    assert token == TaskToken(
        token="escalation-token", phase=ESCALATION, expires_at=g.clock.now() + timedelta(minutes=30)
    )
    # and the checkpoint is marked escalated, the notice kept apart from the card
    stored = g.repo.get(cp.id)
    assert stored.escalated and stored.status is Status.PENDING
    assert [m.kind for m in stored.messages] == ["card", "escalation"]
    last = g.events(cp.id)[-1]
    assert last.type is EventType.ESCALATED
    assert last.data == {"route": "release-managers", "manual": False, "destinations": ["slack:C0RELEASE"]}
    # and the card is updated in place: escalated, no longer promising an escalation
    [(ref, card)] = g.chat.updates
    assert ref == stored.messages[0]
    assert card.escalated and card.deadline == "If no response by 13:00 UTC this request is denied automatically."
    assert card.buttons  # still open for a decision


def test_a_sensitive_escalation_goes_to_the_route_people_directly(g: Gates) -> None:
    cp = g.create("hard")
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.steps.notify(cp.id, ESCALATION, "escalation-token")
    assert [where for where, _ in g.chat.notices] == [f"dm:{CAROL}"]
    assert len(g.chat.updates) == 4  # every approver's card


def test_escalation_nobody_reachable(make_gates: Callable[..., Gates]) -> None:
    g = make_gates(chat=InMemoryChat(unreachable={CAROL}))
    cp = g.create("hard")
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    with pytest.raises(NobodyReachable):
        g.steps.notify(cp.id, ESCALATION, "escalation-token")
    assert not g.repo.get(cp.id).escalated
    assert g.of_type(cp.id, EventType.ESCALATED) == []


def test_a_retried_escalation_posts_nothing_twice(g: Gates) -> None:
    # Given a checkpoint already escalated by the workflow
    cp = g.create("hard", INTERNAL)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.steps.notify(cp.id, ESCALATION, "escalation-token")
    # When Step Functions retries the escalation Notify
    g.steps.notify(cp.id, ESCALATION, "escalation-token")
    # Then the route is told once
    assert len(g.chat.notices) == 1
    assert len(g.of_type(cp.id, EventType.ESCALATED)) == 1


# -- Finalize ----------------------------------------------------------------------------------


def test_finalize_applies_the_timeout_rule_and_updates_every_card(g: Gates) -> None:
    # Given a sensitive checkpoint whose cards nobody answered, escalation included
    cp = g.create("hard", {"callback_url": HOOK})
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.steps.notify(cp.id, ESCALATION, "escalation-token")
    assert cp.deadline is not None
    g.clock.at = cp.deadline
    updates_before = len(g.chat.updates)
    # When Finalize runs with no decision
    out = g.steps.finalize(cp.id, None)
    # Then the fail-closed rule expired it
    stored = g.repo.get(cp.id)
    assert stored.status is Status.EXPIRED and stored.decided_by == "policy (fail-closed)"
    assert out == result(stored)
    # and every card, and the escalation notice (it carries buttons too), now shows the outcome
    updated = g.chat.updates[updates_before:]
    assert sorted(ref.channel for ref, _ in updated if ref.kind == "card") == APPROVER_DMS
    assert [ref.channel for ref, _ in updated if ref.kind == "escalation"] == [f"dm:{CAROL}"]
    for _, card in updated:
        assert card.buttons == []
        assert (
            card.outcome
            == "Expired by policy (fail-closed) at 13:00 UTC: no decision by the deadline: denied (fail-closed)"
        )
    # and the webhook got the result
    assert g.callbacks.calls == [(HOOK, result(stored))]


def test_finalize_after_a_decision_keeps_it_and_shows_it(g: Gates) -> None:
    cp = g.create("hard", INTERNAL)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    g.clock.advance(60)
    g.decisions.act(cp.id, actor(CAROL), Act.APPROVE_WITH_CONDITIONS, comment="ok", conditions={"window": "off-peak"})
    decided = g.repo.get(cp.id)
    out = g.steps.finalize(cp.id, g.workflow.answers[SECRET_TOKEN])
    assert g.repo.get(cp.id).status is Status.APPROVED
    assert out["status"] == "APPROVED" and out["conditions"] == {"window": "off-peak"}
    [(_, card)] = g.chat.updates
    assert card.buttons == []
    assert card.outcome == "Approved by Bob Chen, Carol Diaz at 12:01 UTC: ok; ok — conditions: window off-peak"
    assert len(g.of_type(cp.id, EventType.DECIDED)) == 1
    assert g.repo.get(cp.id).status == decided.status


def test_soft_gate_finalize_runs_it_when_nobody_vetoed(g: Gates) -> None:
    cp = g.create("soft")
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.clock.advance(600)
    out = g.steps.finalize(cp.id, None)
    assert out["status"] == "APPROVED" and out["reason"] == "veto window closed with no veto"


def test_the_webhook_is_called_once_even_when_finalize_is_retried(g: Gates) -> None:
    cp = g.create("hard", {"callback_url": HOOK})
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="not now")
    g.steps.finalize(cp.id, None)
    g.steps.finalize(cp.id, None)
    assert len(g.callbacks.calls) == 1
    delivered = g.of_type(cp.id, EventType.CALLBACK_DELIVERED)
    assert len(delivered) == 1 and delivered[0].data == {"url": HOOK, "detail": "200 OK"}
    assert g.of_type(cp.id, EventType.CALLBACK_FAILED) == []


def test_a_failed_webhook_is_recorded_and_tried_again_on_retry(make_gates: Callable[..., Gates]) -> None:
    # Given a webhook that is down
    g = make_gates(callbacks_ok=False)
    cp = g.create("hard", {"callback_url": HOOK})
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="not now")
    # When Finalize runs
    g.steps.finalize(cp.id, None)
    # Then the failure is on the record
    failed = g.of_type(cp.id, EventType.CALLBACK_FAILED)
    assert len(failed) == 1 and failed[0].data == {"url": HOOK, "detail": "503 after 3 attempts"}
    # When the webhook is back and Finalize is retried
    g.callbacks.ok = True
    g.steps.finalize(cp.id, None)
    g.steps.finalize(cp.id, None)
    # Then it is delivered, once
    assert len(g.callbacks.calls) == 2
    assert len(g.of_type(cp.id, EventType.CALLBACK_DELIVERED)) == 1


def test_no_webhook_no_call(g: Gates) -> None:
    cp = g.create("hard")
    g.steps.finalize(cp.id, None)
    assert g.callbacks.calls == []
    assert g.types(cp.id)[-1] is EventType.DECIDED


def _approve(g: Gates, cp: Checkpoint) -> None:
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    g.decisions.act(cp.id, actor(GRACE), Act.APPROVE_WITH_CONDITIONS, comment="ok", conditions={"window": "off-peak"})


def _deny(g: Gates, cp: Checkpoint) -> None:
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="freeze")


def _cancel(g: Gates, cp: Checkpoint) -> None:
    g.service.cancel(cp.id, actor=CALLER_ARN, reason="superseded")


def _nothing(g: Gates, cp: Checkpoint) -> None:
    pass


def test_an_embedding_workflow_resumes_with_the_approval(g: Gates) -> None:
    # Given an embedded checkpoint (its caller waits on a token) that was approved
    cp = g.create("hard")
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    _approve(g, cp)
    # When Finalize runs (twice: a retry)
    g.steps.finalize(cp.id, None)
    g.steps.finalize(cp.id, None)
    # Then the caller's token got the decision and its conditions, once
    stored = g.repo.get(cp.id)
    assert g.workflow.answers[CALLER_TOKEN] == result(stored)
    assert g.workflow.answers[CALLER_TOKEN]["conditions"] == {"window": "off-peak"}
    assert CALLER_TOKEN not in g.workflow.failures


@pytest.mark.parametrize(
    ("decide", "error", "reason"),
    [
        (_deny, "Signoff.Denied", "freeze"),
        (_nothing, "Signoff.Expired", "no decision by the deadline: denied (fail-closed)"),
        (_cancel, "Signoff.Cancelled", "superseded"),
    ],
    ids=["denied", "expired", "cancelled"],
)
def test_an_embedding_workflow_fails_with_an_error_it_can_catch(
    g: Gates, decide: Callable[[Gates, Checkpoint], None], error: str, reason: str
) -> None:
    cp = g.create("hard")
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    decide(g, cp)
    g.steps.finalize(cp.id, None)
    assert g.workflow.failures == {CALLER_TOKEN: (error, f"{cp.id}: {reason}")}
    assert CALLER_TOKEN not in g.workflow.answers


@pytest.mark.parametrize("gate", ["hard", "soft"])
def test_notify_failed_expires_the_checkpoint(g: Gates, gate: str) -> None:
    # Given a checkpoint whose Notify found nobody to tell (even a fail-open soft gate)
    cp = g.create(gate)
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    # When Finalize runs with the workflow's notify_failed marker
    out = g.steps.finalize(cp.id, {"notify_failed": True})
    # Then it expires in the name of that (not of the timeout rule it did not apply), and the
    # caller hears so
    assert (out["status"], out["decided_by"], out["reason"]) == (
        "EXPIRED",
        "policy (unreachable)",
        "no approver could be notified",
    )
    assert g.workflow.failures[CALLER_TOKEN][0] == "Signoff.Expired"


# -- chat failures: Notify -----------------------------------------------------------------------


def _caught(exc: Exception) -> dict[str, Any]:
    """What the state machine's catch hands Finalize when Notify raised `exc` (Lambda's error
    document as the cause)."""
    cause = {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": []}
    return {"notify_failed": True, "error": type(exc).__name__, "cause": json.dumps(cause)}


@pytest.mark.parametrize(
    ("break_chat", "named"),
    [
        (lambda chat: chat.unreachable.add("C0RELEASE"), "slack channel_not_found on C0RELEASE"),
        (lambda chat: chat.fail("post", "invalid_auth", times=None), "slack invalid_auth on C0RELEASE"),
        (lambda chat: chat.fail("post", "account_inactive", times=None), "slack account_inactive on C0RELEASE"),
    ],
    ids=["channel_not_found", "invalid_auth", "account_inactive"],
)
def test_a_refusal_expires_the_request_with_a_reason_that_names_it(
    make_gates: Callable[..., Gates], break_chat: Callable[[InMemoryChat], None], named: str
) -> None:
    # Given a fail-open gate (it must not run unseen) whose only channel refuses the card for good
    g = make_gates(hard_policy(timeout_rule="fail-open"))
    break_chat(g.chat)
    cp = g.create("hard", {**INTERNAL, "callback_url": HOOK})
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    # When Notify runs, it concludes at once that nobody can be reached, and says why
    with pytest.raises(NobodyReachable) as raised:
        g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    assert str(raised.value) == named
    assert g.chat.posts == [] and g.of_type(cp.id, EventType.NOTIFIED) == []
    # and when Finalize runs with what the state machine's catch passes on
    out = g.steps.finalize(cp.id, _caught(raised.value))
    # Then the request expired, saying who refused and why, and everyone waiting hears that
    reason = f"no approver could be notified: {named}"
    assert (out["status"], out["decided_by"], out["reason"]) == ("EXPIRED", "policy (unreachable)", reason)
    assert g.workflow.failures[CALLER_TOKEN] == ("Signoff.Expired", f"{cp.id}: {reason}")
    assert [body["reason"] for _, body in g.callbacks.calls] == [reason]


def test_transient_post_errors_are_retried_by_the_workflow_then_posted_once(
    make_gates: Callable[..., Gates],
) -> None:
    # Given Slack failing (after its client's own retries) the first time Notify posts
    g = make_gates()
    g.chat.fail("post", "service_unavailable", times=1)
    cp = g.create("hard", INTERNAL)
    # When Notify runs, it leaves the door open: nothing posted, nothing recorded
    with pytest.raises(ChatUnavailable, match="slack service_unavailable on C0RELEASE"):
        g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    assert g.chat.posts == [] and g.repo.get(cp.id).messages == []
    assert g.of_type(cp.id, EventType.NOTIFIED) == []
    # When the state machine retries the step (with a new token)
    out = g.steps.notify(cp.id, INITIAL, "retried-token")
    # Then the card is posted, once, and the request waits for people as usual
    assert out == {"posted": 1}
    assert [where for where, _ in g.chat.posts] == ["C0RELEASE"]
    assert g.chat.attempts["post"] == 2
    assert len(g.of_type(cp.id, EventType.NOTIFIED)) == 1
    assert g.repo.get(cp.id).status is Status.PENDING


def test_a_transient_error_outlasting_the_retries_expires_with_what_kept_failing(
    make_gates: Callable[..., Gates],
) -> None:
    g = make_gates(soft_policy())  # fail-open
    g.chat.fail("post", "http_503", times=None)
    cp = g.create("soft")
    # Every retry of the state machine fails the same way, then its catch moves on to Finalize
    for token in ("first", "second", "third"):
        with pytest.raises(ChatUnavailable) as raised:
            g.steps.notify(cp.id, INITIAL, token)
    out = g.steps.finalize(cp.id, _caught(raised.value))
    assert (out["status"], out["decided_by"]) == ("EXPIRED", "policy (unreachable)")
    assert out["reason"] == (
        "no approver could be notified: slack http_503 on C0PAYMENTS (still failing after retries)"
    )


def test_a_destination_that_fails_does_not_hold_back_the_others(make_gates: Callable[..., Gates]) -> None:
    # Given a sensitive checkpoint (a DM per approver) where two DMs are refused
    g = make_gates(chat=InMemoryChat(unreachable={BOB, DAVE}))
    cp = g.create("hard")
    # When Notify runs
    assert g.steps.notify(cp.id, INITIAL, SECRET_TOKEN) == {"posted": 2}
    # Then the others got the card, and the trail says who was missed and why
    assert [where for where, _ in g.chat.posts] == [f"dm:{CAROL}", f"dm:{GRACE}"]
    data = g.events(cp.id)[-1].data
    assert data["destinations"] == [f"slack:dm:{CAROL}", f"slack:dm:{GRACE}"]
    assert data["unreached"] == [
        {"surface": "slack", "where": f"dm:{BOB}", "error": "user_not_found"},
        {"surface": "slack", "where": f"dm:{DAVE}", "error": "user_not_found"},
    ]


def test_a_reason_names_three_refusals_and_counts_the_rest(
    make_gates: Callable[..., Gates],
) -> None:
    g = make_gates(chat=InMemoryChat(unreachable={BOB, CAROL, DAVE, GRACE}))
    cp = g.create("hard")
    with pytest.raises(NobodyReachable) as raised:
        g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    assert str(raised.value) == (
        f"slack user_not_found on dm:{BOB}; slack user_not_found on dm:{CAROL}; "
        f"slack user_not_found on dm:{DAVE}; and 1 more"
    )


@pytest.mark.parametrize(
    ("decision", "reason"),
    [
        ({"notify_failed": True, "error": "Lambda.Unknown", "cause": '{"errorMessage": "secret stuff"}'},
         "no approver could be notified: the notify step failed (Lambda.Unknown)"),
        ({"notify_failed": True, "error": "NobodyReachable", "cause": "not json"},
         "no approver could be notified: the notify step failed (NobodyReachable)"),
        ({"notify_failed": True}, "no approver could be notified"),
    ],
    ids=["another-error-is-named-not-quoted", "unreadable-cause", "no-error"],
)  # fmt: skip
def test_only_notifys_own_messages_become_the_reason(g: Gates, decision: dict[str, Any], reason: str) -> None:
    cp = g.create("hard")
    assert g.steps.finalize(cp.id, decision)["reason"] == reason


def test_escalation_goes_on_when_the_cards_cannot_be_refreshed(make_gates: Callable[..., Gates]) -> None:
    # Given a card posted, then chat.update failing for good
    g = make_gates()
    cp = g.create("hard", INTERNAL)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.chat.fail("update", "internal_error", times=None)
    # When the escalation runs
    assert g.steps.notify(cp.id, ESCALATION, "escalation-token") == {"posted": 1}
    # Then the route was told and the wait goes on; the stale card is on the record
    assert g.repo.get(cp.id).escalated
    (failed,) = g.of_type(cp.id, EventType.CARD_UPDATE_FAILED)
    assert failed.data == {"surface": "slack", "channel": "C0RELEASE", "kind": "card", "error": "internal_error"}


# -- chat failures: Finalize ---------------------------------------------------------------------


def _approved_with_cards_down(g: Gates) -> Checkpoint:
    """A hard checkpoint (webhook, embedding caller) whose card was posted, then approved while
    chat.update fails on every try."""
    cp = g.create("hard", {**INTERNAL, "callback_url": HOOK})
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.chat.fail("update", "service_unavailable", times=None)
    _approve(g, cp)
    return cp


def test_a_card_that_cannot_be_updated_never_holds_back_the_decision(g: Gates) -> None:
    cp = _approved_with_cards_down(g)
    # When Finalize runs
    out = g.steps.finalize(cp.id, g.workflow.answers[SECRET_TOKEN])
    # Then it succeeds: the caller is answered and the webhook sent, once each
    stored = g.repo.get(cp.id)
    assert out == result(stored) and out["status"] == "APPROVED"
    assert g.workflow.answers[CALLER_TOKEN] == result(stored)
    assert g.callbacks.calls == [(HOOK, result(stored))]
    # and the stale card is on the record: where, and Slack's error code, never the card's text
    (failed,) = g.of_type(cp.id, EventType.CARD_UPDATE_FAILED)
    assert failed.data == {"surface": "slack", "channel": "C0RELEASE", "kind": "card", "error": "service_unavailable"}
    assert failed.actor == "signoff"
    # and the deliveries happened before the cards were tried
    order = [e.type for e in g.events(cp.id)][-3:]
    assert order == [EventType.CALLER_ANSWERED, EventType.CALLBACK_DELIVERED, EventType.CARD_UPDATE_FAILED]


def test_a_later_finalize_re_renders_the_card_and_delivers_nothing_twice(g: Gates) -> None:
    cp = _approved_with_cards_down(g)
    g.steps.finalize(cp.id, None)
    # When Slack is back and Finalize runs again (a Step Functions retry)
    g.chat.heal()
    g.steps.finalize(cp.id, None)
    # Then the card shows the decision, and the caller and webhook were told once
    ref, card = g.chat.updates[-1]
    assert ref.channel == "C0RELEASE" and card.buttons == [] and card.outcome
    assert len(g.callbacks.calls) == 1
    assert len(g.workflow.answer_calls) == 2  # the approval task (by the click) and the caller, once
    assert len(g.of_type(cp.id, EventType.CALLER_ANSWERED)) == 1
    assert len(g.of_type(cp.id, EventType.CARD_UPDATE_FAILED)) == 1


def test_the_caller_answer_is_recorded_once_without_the_token(g: Gates) -> None:
    cp = g.create("hard")
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    _deny(g, cp)
    g.steps.finalize(cp.id, None)
    g.steps.finalize(cp.id, None)
    (answered,) = g.of_type(cp.id, EventType.CALLER_ANSWERED)
    assert answered.data == {"status": "DENIED", "error": "Signoff.Denied", "task_was_waiting": True}
    assert CALLER_TOKEN not in json.dumps([e.content() for e in g.events(cp.id)])
    assert len(g.workflow.fail_calls) == 1


def test_a_caller_task_that_no_longer_waits_is_recorded_as_such(g: Gates) -> None:
    # Given an embedding workflow whose task was already answered (an earlier Finalize run that
    # could not record it)
    cp = g.create("hard")
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    _approve(g, cp)
    g.workflow.answer(CALLER_TOKEN, {"already": True})
    g.steps.finalize(cp.id, None)
    (answered,) = g.of_type(cp.id, EventType.CALLER_ANSWERED)
    assert answered.data["task_was_waiting"] is False


class FlakyWorkflow(RecordingWorkflow):
    """SendTaskFailure throttled `failures` times, then fine."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures_left = failures

    def fail(self, token: str, error: str, cause: str) -> bool:
        if self.failures_left:
            self.failures_left -= 1
            raise RuntimeError("ThrottlingException")
        return super().fail(token, error, cause)


def test_a_caller_that_cannot_be_answered_fails_finalize_after_the_webhook_and_cards(g: Gates) -> None:
    # Given a denied embedded checkpoint and Step Functions throttling the answer once
    cp = g.create("hard", {**INTERNAL, "callback_url": HOOK})
    g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    _deny(g, cp)
    g.steps.workflow = flaky = FlakyWorkflow(failures=1)
    # When Finalize runs, it still sends the webhook and updates the card, then fails (to be retried)
    with pytest.raises(RuntimeError, match="Throttling"):
        g.steps.finalize(cp.id, None)
    assert len(g.callbacks.calls) == 1 and len(g.chat.updates) == 1
    assert g.of_type(cp.id, EventType.CALLER_ANSWERED) == []
    # When Step Functions retries it
    out = g.steps.finalize(cp.id, None)
    # Then the caller is answered, and the webhook is not sent again
    assert out["status"] == "DENIED"
    assert flaky.failures == {CALLER_TOKEN: ("Signoff.Denied", f"{cp.id}: freeze")}
    assert len(g.callbacks.calls) == 1
    assert len(g.of_type(cp.id, EventType.CALLER_ANSWERED)) == 1

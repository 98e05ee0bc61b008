"""Human gates: people acting on a checkpoint (authorization, separation of duties, N of M,
comments, deadlines, one vote each), the timeout rule, races between writers, and cancelling.
Every scenario ends with an intact audit chain."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from signoff.audit.events import EventType
from signoff.domain.acts import Act, Actor, Refusal
from signoff.domain.cards import build_card
from signoff.domain.errors import Conflict, DuplicateVote, Forbidden, WorkflowUnavailable
from signoff.domain.models import Checkpoint, Status
from signoff.domain.policy import LoadedPolicy
from signoff.ports import TaskToken
from signoff.usecases.decisions import DecisionService
from tests.gates import (
    ALICE,
    BOB,
    CAROL,
    DAVE,
    GRACE,
    MALLORY,
    SECRET_TOKEN,
    Gates,
    InterleavingRepository,
    actor,
    gates,
    hard_policy,
    one_of_one,
    soft_policy,
    stranger,
)
from tests.helpers import CALLER_ARN, stored_checkpoints

pytestmark = pytest.mark.unit

DECISION_FIELDS = {
    "status",
    "decided_by",
    "reason",
    "gate",
    "risk",
    "score",
    "environment",
    "policy_version",
    "requested_at",
    "latency_seconds",
    "approvers",
}


@pytest.fixture
def make_gates() -> Iterator[Callable[..., Gates]]:
    made: list[Gates] = []

    def build(policy: LoadedPolicy | None = None) -> Gates:
        made.append(gates(policy))
        return made[-1]

    yield build
    for wired in made:
        wired.assert_chains()


@pytest.fixture
def g(make_gates: Callable[..., Gates]) -> Gates:
    return make_gates()


def _token(g: Gates, cp: Checkpoint) -> None:
    g.repo.put_token(cp.id, TaskToken(token=SECRET_TOKEN, phase="initial", expires_at=cp.deadline or g.clock.now()))


def _unchanged_but_audited(before: Checkpoint, after: Checkpoint) -> bool:
    return after.model_copy(update={"audit_seq": before.audit_seq, "audit_head": before.audit_head}) == before


def _assert_refused(g: Gates, before: Checkpoint, refusal: Refusal, who: Actor, act: Act) -> None:
    """Exactly one REFUSED event was added and nothing else about the checkpoint changed."""
    after = g.repo.get(before.id)
    assert _unchanged_but_audited(before, after)
    assert after.audit_seq == before.audit_seq + 1
    last = g.events(before.id)[-1]
    assert last.type is EventType.REFUSED
    assert last.actor == (who.person or who.handle)
    assert last.data == {
        "refusal": refusal.value,
        "unauthorized": refusal in (Refusal.UNAUTHORIZED, Refusal.REQUESTER),
        "act": act.value,
        "surface": who.surface,
        "handle": who.handle,
        "person": who.person,
    }


# -- hard gate, N of M -------------------------------------------------------------------------


def test_hard_sample_waits_for_two_of_its_eligible_approvers(g: Gates) -> None:
    # Given the hard sample (production migration, confidential data) / When it is created
    cp = g.create("hard")
    # Then it waits on the two-person gate, the requester excluded from its approvers
    assert cp.status is Status.PENDING
    assert cp.assessment.gate.profile == "two-person"
    assert cp.approvers == [BOB, CAROL, DAVE, GRACE]
    assert cp.execution == cp.id
    assert g.types(cp.id) == [EventType.REQUESTED, EventType.GATE_OPENED]


def test_first_approval_with_a_comment_keeps_the_checkpoint_pending(g: Gates) -> None:
    # Given a pending two-person checkpoint
    cp = g.create("hard")
    # When one approver approves with a comment
    result = g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="  migration window is fine  ")
    # Then the vote is recorded, the checkpoint still waits, and the card counts 1 of 2
    assert result.ok and not result.decided
    assert result.message == "Approval recorded (1 of 2)."
    stored = g.repo.get(cp.id)
    assert stored.status is Status.PENDING and stored.decided_by is None
    assert [(v.approver, v.kind.value, v.comment) for v in stored.votes] == [
        (BOB, "approve", "migration window is fine")
    ]
    assert build_card(stored).votes == "1 of 2 approvals: Bob Chen"
    assert g.types(cp.id)[-1] is EventType.VOTED
    assert g.of_type(cp.id, EventType.DECIDED) == []


def test_second_distinct_approval_approves_and_records_every_decision_field(g: Gates) -> None:
    # Given a two-person checkpoint that one approver approved
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="window ok")
    g.clock.advance(300)
    # When a second, different approver approves
    result = g.decisions.act(cp.id, actor(CAROL), Act.APPROVE, comment="release notes checked")
    # Then it is approved by both, with the decision recorded once and in full
    assert result.ok and result.decided
    assert result.message == "Recorded. The checkpoint is now approved."
    stored = g.repo.get(cp.id)
    assert stored.status is Status.APPROVED
    assert stored.decided_by == "Bob Chen, Carol Diaz"
    assert stored.decided_at == g.clock.now()
    assert stored.decision_reason == "window ok; release notes checked"
    decided = g.of_type(cp.id, EventType.DECIDED)
    assert len(decided) == 1
    data = decided[0].data
    assert DECISION_FIELDS <= data.keys()
    assert {k: data[k] for k in DECISION_FIELDS} == {
        "status": "APPROVED",
        "decided_by": "Bob Chen, Carol Diaz",
        "reason": "window ok; release notes checked",
        "gate": "hard",
        "risk": "high",
        "score": cp.assessment.score.score,
        "environment": "production",
        "policy_version": cp.assessment.policy_version,
        "requested_at": cp.created_at.isoformat(),
        "latency_seconds": 300.0,
        "approvers": [BOB, CAROL],
    }
    assert g.types(cp.id)[-2:] == [EventType.VOTED, EventType.DECIDED]


def test_the_approval_workflow_token_is_answered_exactly_once_with_the_status(g: Gates) -> None:
    # Given a two-person checkpoint whose Notify task waits with a token
    cp = g.create("hard")
    _token(g, cp)
    # When the first approval arrives, nothing is answered yet
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    assert g.workflow.answer_calls == []
    # When the second approval decides it, and more clicks follow
    g.decisions.act(cp.id, actor(CAROL), Act.APPROVE, comment="ok too")
    late = g.decisions.act(cp.id, actor(DAVE), Act.APPROVE, comment="me too")
    g.decisions.act(cp.id, actor(GRACE), Act.DENY, comment="no")
    # Then the token was answered once, with the status and who decided
    assert late.refusal is Refusal.ALREADY_DECIDED
    assert g.workflow.answer_calls == [(SECRET_TOKEN, {"status": "APPROVED", "decided_by": "Bob Chen, Carol Diaz"})]


def test_one_of_one_gate_is_approved_by_a_single_approval(make_gates: Callable[..., Gates]) -> None:
    # Given a hard gate needing one approval and no comment
    g = make_gates(one_of_one())
    cp = g.create("hard")
    # When one approver approves without a comment
    result = g.decisions.act(cp.id, actor(GRACE), Act.APPROVE)
    # Then it is approved by that person with the default reason
    assert result.decided
    stored = g.repo.get(cp.id)
    assert (stored.status, stored.decided_by, stored.decision_reason) == (Status.APPROVED, "Grace Hopper", "approved")


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize("act", [Act.APPROVE, Act.APPROVE_WITH_CONDITIONS])
def test_requester_may_not_approve_their_own_request(g: Gates, act: Act) -> None:
    # Given the hard sample, requested by alice (a member of the owning team)
    cp = g.create("hard")
    _token(g, cp)
    # When alice approves it
    result = g.decisions.act(cp.id, actor(ALICE), act, comment="looks good to me", conditions={"x": 1})
    # Then separation of duties refuses it, the refusal counts as unauthorized, nothing else changes
    assert result.refusal is Refusal.REQUESTER and not result.ok
    assert "Separation of duties" in result.message
    _assert_refused(g, cp, Refusal.REQUESTER, actor(ALICE), act)
    assert g.repo.votes == {}
    assert g.workflow.answer_calls == []


@pytest.mark.parametrize("who", [actor(MALLORY), stranger()], ids=["outsider", "unknown-person"])
@pytest.mark.parametrize("act", [Act.APPROVE, Act.DENY, Act.REQUEST_INFO, Act.ESCALATE])
def test_people_who_are_not_approvers_are_refused(g: Gates, who: Actor, act: Act) -> None:
    # Given a pending hard checkpoint
    cp = g.create("hard")
    # When someone who is not one of its approvers (or not in the directory at all) acts on it
    result = g.decisions.act(cp.id, who, act, comment="a reason")
    # Then they are refused as unauthorized and the attempt is audited
    assert result.refusal is Refusal.UNAUTHORIZED
    _assert_refused(g, cp, Refusal.UNAUTHORIZED, who, act)
    assert g.repo.votes == {}


def test_the_same_person_cannot_vote_twice(g: Gates) -> None:
    # Given a two-person checkpoint bob approved
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    before = g.repo.get(cp.id)
    # When bob approves again, then changes his mind and denies
    results = [g.decisions.act(cp.id, actor(BOB), act, comment="again") for act in (Act.APPROVE, Act.DENY)]
    # Then both are duplicates: no second vote, still pending, each attempt audited
    assert [r.refusal for r in results] == [Refusal.DUPLICATE, Refusal.DUPLICATE]
    assert all(r.message == "You already voted (approve at 12:00 UTC)." for r in results)
    after = g.repo.get(cp.id)
    assert _unchanged_but_audited(before, after) and after.audit_seq == before.audit_seq + 2
    assert [(e.type, e.data["refusal"]) for e in g.events(cp.id)[-2:]] == [(EventType.REFUSED, "duplicate")] * 2
    assert list(g.repo.votes) == [(cp.id, BOB)]


@pytest.mark.parametrize("comment", [None, "", "   "])
@pytest.mark.parametrize("act", [Act.APPROVE, Act.APPROVE_WITH_CONDITIONS])
def test_approval_without_a_comment_is_refused_where_one_is_required(g: Gates, comment: str | None, act: Act) -> None:
    # Given a two-person gate that requires a comment
    cp = g.create("hard")
    # When an approver approves without one
    result = g.decisions.act(cp.id, actor(BOB), act, comment=comment, conditions={"window": "off-peak"})
    # Then the approval is refused and not counted
    assert result.refusal is Refusal.COMMENT_REQUIRED
    _assert_refused(g, cp, Refusal.COMMENT_REQUIRED, actor(BOB), act)


@pytest.mark.parametrize("comment", [None, "", " \n "])
def test_deny_without_a_reason_is_refused(g: Gates, comment: str | None) -> None:
    cp = g.create("hard")
    result = g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment=comment)
    assert result.refusal is Refusal.REASON_REQUIRED
    assert result.message == "A reason is required to deny."
    _assert_refused(g, cp, Refusal.REASON_REQUIRED, actor(CAROL), Act.DENY)


def test_deny_with_a_reason_denies_at_once_even_on_a_two_person_gate(g: Gates) -> None:
    # Given a two-person checkpoint one approver already approved
    cp = g.create("hard")
    _token(g, cp)
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="fine by me")
    # When another approver denies with a reason
    result = g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="freeze until Monday")
    # Then a single deny decides it
    assert result.decided
    stored = g.repo.get(cp.id)
    assert (stored.status, stored.decided_by, stored.decision_reason) == (
        Status.DENIED,
        "Carol Diaz",
        "freeze until Monday",
    )
    decided = g.of_type(cp.id, EventType.DECIDED)
    assert len(decided) == 1 and decided[0].data["status"] == "DENIED"
    assert decided[0].data["approvers"] == [BOB, CAROL]
    assert g.workflow.answers == {SECRET_TOKEN: {"status": "DENIED", "decided_by": "Carol Diaz"}}


def test_a_click_after_the_decision_is_already_decided(g: Gates) -> None:
    # Given a checkpoint denied at 12:05
    cp = g.create("hard")
    g.clock.advance(300)
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="not today")
    before = g.repo.get(cp.id)
    # When someone else clicks Approve on the old card
    result = g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="oops")
    # Then they are told it is already decided, and by whom
    assert result.refusal is Refusal.ALREADY_DECIDED
    assert result.message == "Already decided: denied by Carol Diaz at 12:05 UTC."
    _assert_refused(g, before, Refusal.ALREADY_DECIDED, actor(BOB), Act.APPROVE)


@pytest.mark.parametrize("who", [actor(MALLORY), stranger()], ids=["outsider", "unknown-person"])
def test_someone_who_may_not_act_learns_nothing_from_a_decided_card(g: Gates, who: Actor) -> None:
    # Given a checkpoint Carol denied
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="not today")
    # When someone who is not its approver or requester clicks its old card
    result = g.decisions.act(cp.id, who, Act.APPROVE, comment="me too")
    # Then the refusal is the same as before the decision: unauthorized, naming nobody
    assert result.refusal is Refusal.UNAUTHORIZED
    assert "Carol" not in result.message and "denied" not in result.message


@pytest.mark.parametrize("after_deadline", [0, 1, 3600])
def test_a_click_at_or_after_the_deadline_is_late(g: Gates, after_deadline: int) -> None:
    # Given a pending checkpoint whose deadline (escalation included) has come
    cp = g.create("hard")
    assert cp.deadline is not None
    g.clock.advance((cp.deadline - cp.created_at).total_seconds() + after_deadline)
    # When an approver approves
    result = g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="sorry, was out")
    # Then it is too late
    assert result.refusal is Refusal.LATE
    assert result.message == "Too late: the deadline passed at 13:00 UTC."
    _assert_refused(g, cp, Refusal.LATE, actor(BOB), Act.APPROVE)


def test_a_click_just_before_the_deadline_counts(g: Gates) -> None:
    cp = g.create("hard")
    assert cp.deadline is not None
    g.clock.advance((cp.deadline - cp.created_at).total_seconds() - 1)
    assert g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="just in time").ok


# -- soft gate ---------------------------------------------------------------------------------


def test_veto_on_a_soft_gate_denies_it(g: Gates) -> None:
    # Given a checkpoint in its veto window
    cp = g.create("soft")
    _token(g, cp)
    # When an approver vetoes (no reason needed)
    result = g.decisions.act(cp.id, actor(DAVE), Act.VETO)
    # Then it is denied by them
    assert result.decided
    stored = g.repo.get(cp.id)
    assert (stored.status, stored.decided_by, stored.decision_reason) == (Status.DENIED, "Dave Okafor", "vetoed")
    assert g.of_type(cp.id, EventType.DECIDED)[0].data["gate"] == "soft"
    assert g.workflow.answers[SECRET_TOKEN]["status"] == "DENIED"


def test_a_veto_reason_becomes_the_decision_reason(g: Gates) -> None:
    cp = g.create("soft")
    g.decisions.act(cp.id, actor(BOB), Act.VETO, comment="release in progress")
    assert g.repo.get(cp.id).decision_reason == "release in progress"


@pytest.mark.parametrize("act", [Act.APPROVE, Act.APPROVE_WITH_CONDITIONS, Act.DENY, Act.ESCALATE])
def test_hard_gate_buttons_do_nothing_on_a_soft_gate(g: Gates, act: Act) -> None:
    cp = g.create("soft")
    result = g.decisions.act(cp.id, actor(BOB), act, comment="a comment")
    assert result.refusal is Refusal.NOT_ON_THIS_GATE
    assert result.message == f"'{act.value}' is not available on a soft gate."
    _assert_refused(g, cp, Refusal.NOT_ON_THIS_GATE, actor(BOB), act)


def test_veto_does_nothing_on_a_hard_gate(g: Gates) -> None:
    cp = g.create("hard")
    result = g.decisions.act(cp.id, actor(BOB), Act.VETO, comment="no")
    assert result.refusal is Refusal.NOT_ON_THIS_GATE
    _assert_refused(g, cp, Refusal.NOT_ON_THIS_GATE, actor(BOB), Act.VETO)


# -- conditions, info, escalation, details ----------------------------------------------------


def test_conditions_of_every_approval_are_merged_into_the_decision(g: Gates) -> None:
    # Given a two-person checkpoint
    cp = g.create("hard")
    # When both approvers approve with conditions
    first = g.decisions.act(
        cp.id, actor(BOB), Act.APPROVE_WITH_CONDITIONS, comment="off-peak only", conditions={"window": "off-peak"}
    )
    assert first.message == "Approval recorded (1 of 2)."
    assert g.repo.get(cp.id).conditions is None  # nothing is granted before the quorum
    g.decisions.act(
        cp.id, actor(GRACE), Act.APPROVE_WITH_CONDITIONS, comment="smaller batches", conditions={"max_batch": 5000}
    )
    # Then the checkpoint is approved with both sets of conditions, recorded on the decision
    stored = g.repo.get(cp.id)
    assert stored.status is Status.APPROVED
    assert stored.conditions == {"window": "off-peak", "max_batch": 5000}
    assert [v.conditions for v in stored.votes] == [{"window": "off-peak"}, {"max_batch": 5000}]
    assert g.of_type(cp.id, EventType.DECIDED)[0].data["conditions"] == {"window": "off-peak", "max_batch": 5000}


def test_plain_approve_ignores_conditions_sent_with_it(make_gates: Callable[..., Gates]) -> None:
    g = make_gates(one_of_one())
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, conditions={"sneaky": True})
    assert g.repo.get(cp.id).conditions is None


@pytest.mark.parametrize("gate", ["hard", "soft"])
def test_request_info_is_recorded_and_the_clock_keeps_running(g: Gates, gate: str) -> None:
    cp = g.create(gate)
    result = g.decisions.act(cp.id, actor(BOB), Act.REQUEST_INFO, comment="which batch size?")
    assert result.ok and not result.decided
    assert result.message == "Asked the requester in the thread; the clock keeps running."
    stored = g.repo.get(cp.id)
    assert stored.status is Status.PENDING and stored.votes == [] and not stored.escalated
    assert stored.deadline == cp.deadline
    last = g.events(cp.id)[-1]
    assert (last.type, last.actor) == (EventType.INFO_REQUESTED, BOB)
    assert last.data == {"by": BOB, "surface": "slack", "comment": "which batch size?", "manual": True}


def test_escalate_marks_the_checkpoint_escalated_and_keeps_it_pending(g: Gates) -> None:
    cp = g.create("hard")
    result = g.decisions.act(cp.id, actor(DAVE), Act.ESCALATE, comment="need a release manager")
    assert result.ok and not result.decided
    assert result.message == "Escalated to release-managers."
    stored = g.repo.get(cp.id)
    assert stored.status is Status.PENDING and stored.escalated and stored.votes == []
    last = g.events(cp.id)[-1]
    assert last.type is EventType.ESCALATED and last.data["manual"] is True and last.data["by"] == DAVE


@pytest.mark.parametrize("who", [BOB, CAROL, ALICE], ids=["approver", "release-manager", "requester"])
def test_approvers_and_the_requester_may_view_details(g: Gates, who: str) -> None:
    cp = g.create("hard")
    result = g.decisions.act(cp.id, actor(who), Act.VIEW_DETAILS)
    assert result.ok and result.refusal is None
    assert result.checkpoint == cp
    assert g.repo.get(cp.id) == cp  # viewing records nothing


@pytest.mark.parametrize("who", [actor(MALLORY), stranger()], ids=["outsider", "unknown-person"])
def test_outsiders_may_not_view_details(g: Gates, who: Actor) -> None:
    cp = g.create("hard")
    result = g.decisions.act(cp.id, who, Act.VIEW_DETAILS)
    assert result.refusal is Refusal.UNAUTHORIZED
    _assert_refused(g, cp, Refusal.UNAUTHORIZED, who, Act.VIEW_DETAILS)


def test_requester_may_approve_when_the_gate_allows_it(make_gates: Callable[..., Gates]) -> None:
    # Given a gate whose profile lets the requester approve
    g = make_gates(hard_policy(requester_may_approve=True))
    cp = g.create("hard")
    assert ALICE in cp.approvers
    # When alice and a colleague approve
    assert g.decisions.act(cp.id, actor(ALICE), Act.APPROVE, comment="mine, and tested").ok
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="agreed")
    # Then both votes count
    assert g.repo.get(cp.id).status is Status.APPROVED


# -- timeout rule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "gate", "status", "reason"),
    [
        (None, "hard", Status.EXPIRED, "no decision by the deadline: denied (fail-closed)"),
        (
            hard_policy(timeout_rule="fail-open"),
            "hard",
            Status.APPROVED,
            "no decision by the deadline: approved (fail-open)",
        ),
        (hard_policy(timeout_rule="cancel"), "hard", Status.CANCELLED, "no decision by the deadline: cancelled"),
        (None, "soft", Status.APPROVED, "veto window closed with no veto"),
        (
            soft_policy(timeout_rule="fail-closed"),
            "soft",
            Status.EXPIRED,
            "no decision by the deadline: denied (fail-closed)",
        ),
    ],
    ids=["hard-fail-closed", "hard-fail-open", "hard-cancel", "soft-fail-open", "soft-fail-closed"],
)
def test_timeout_applies_the_gate_rule(
    make_gates: Callable[..., Gates], policy: LoadedPolicy | None, gate: str, status: Status, reason: str
) -> None:
    # Given a pending checkpoint nobody decided
    g = make_gates(policy)
    cp = g.create(gate)
    assert cp.deadline is not None
    g.clock.at = cp.deadline
    # When the workflow's wait runs out
    decided = g.decisions.apply_timeout(cp.id)
    # Then the gate's timeout rule decides it, in the name of the policy
    rule = cp.assessment.gate.timeout_rule
    assert rule is not None
    assert (decided.status, decided.decision_reason) == (status, reason)
    assert decided.decided_by == f"policy ({rule.value})"
    assert decided.decided_at == cp.deadline
    events = g.of_type(cp.id, EventType.DECIDED)
    assert len(events) == 1
    assert events[0].data["status"] == status.value and events[0].data["reason"] == reason
    assert DECISION_FIELDS <= events[0].data.keys()
    assert events[0].data["latency_seconds"] == (cp.deadline - cp.created_at).total_seconds()


RULES = {
    "hard-fail-closed": (None, "hard"),
    "hard-fail-open": (hard_policy(timeout_rule="fail-open"), "hard"),
    "hard-cancel": (hard_policy(timeout_rule="cancel"), "hard"),
    "soft-fail-open": (None, "soft"),
    "soft-fail-closed": (soft_policy(timeout_rule="fail-closed"), "soft"),
    "soft-cancel": (soft_policy(timeout_rule="cancel"), "soft"),
}
# Every rule, reached or not: (status, decided_by, reason). decided_by names what decided and the
# reason says the same: nobody reached always expires, in the name of that, never of the rule.
CLOSED = "no decision by the deadline: denied (fail-closed)"
OPENED = "no decision by the deadline: approved (fail-open)"
UNREACHED = (Status.EXPIRED, "policy (unreachable)", "no approver could be notified: slack channel_not_found on C0X")
TIMEOUT_TABLE = [
    ("hard-fail-closed", False, (Status.EXPIRED, "policy (fail-closed)", CLOSED)),
    ("hard-fail-open", False, (Status.APPROVED, "policy (fail-open)", OPENED)),
    ("hard-cancel", False, (Status.CANCELLED, "policy (cancel)", "no decision by the deadline: cancelled")),
    ("soft-fail-open", False, (Status.APPROVED, "policy (fail-open)", "veto window closed with no veto")),
    ("soft-fail-closed", False, (Status.EXPIRED, "policy (fail-closed)", CLOSED)),
    ("soft-cancel", False, (Status.CANCELLED, "policy (cancel)", "no decision by the deadline: cancelled")),
    *[(rule, True, UNREACHED) for rule in RULES],
]  # fmt: skip


@pytest.mark.parametrize(
    ("rule", "unreachable", "expected"),
    TIMEOUT_TABLE,
    ids=[f"{rule}-{'unreachable' if unreachable else 'reached'}" for rule, unreachable, _ in TIMEOUT_TABLE],
)
def test_decided_by_and_reason_agree_for_every_rule_reached_or_not(
    make_gates: Callable[..., Gates], rule: str, unreachable: bool, expected: tuple[Status, str, str]
) -> None:
    # Given a pending checkpoint under this timeout rule
    policy, gate = RULES[rule]
    g = make_gates(policy)
    cp = g.create(gate)
    assert cp.assessment.gate.timeout_rule is not None
    assert rule.endswith(cp.assessment.gate.timeout_rule.value)
    # When nobody decided (reached, or never notified: Notify named why)
    detail = "slack channel_not_found on C0X" if unreachable else None
    decided = g.decisions.apply_timeout(cp.id, unreachable=unreachable, detail=detail)
    # Then status, who decided and why say the same thing, on the checkpoint and in its trail
    assert (decided.status, decided.decided_by, decided.decision_reason) == expected
    (event,) = g.of_type(cp.id, EventType.DECIDED)
    assert (event.actor, event.data["status"], event.data["decided_by"], event.data["reason"]) == (
        expected[1],
        expected[0].value,
        expected[1],
        expected[2],
    )


def test_nobody_reachable_without_a_named_cause_still_says_so(g: Gates) -> None:
    cp = g.create("soft")  # fail-open
    decided = g.decisions.apply_timeout(cp.id, unreachable=True)
    assert (decided.status, decided.decided_by, decided.decision_reason) == (
        Status.EXPIRED,
        "policy (unreachable)",
        "no approver could be notified",
    )


def test_timeout_is_applied_once(g: Gates) -> None:
    # Given a checkpoint the timeout rule already expired
    cp = g.create("hard")
    first = g.decisions.apply_timeout(cp.id)
    events = g.events(cp.id)
    # When the rule is applied again (a retried Finalize), even as unreachable
    g.clock.advance(60)
    second = g.decisions.apply_timeout(cp.id)
    third = g.decisions.apply_timeout(cp.id, unreachable=True)
    # Then nothing changes
    assert first == second == third == g.repo.get(cp.id)
    assert g.events(cp.id) == events


def test_timeout_does_not_override_a_decision(g: Gates) -> None:
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="no")
    denied = g.repo.get(cp.id)
    assert g.decisions.apply_timeout(cp.id) == denied
    assert len(g.of_type(cp.id, EventType.DECIDED)) == 1


# -- concurrency -------------------------------------------------------------------------------


def _racing(g: Gates, interleave: Callable[[], Any]) -> tuple[DecisionService, InterleavingRepository]:
    repo = InterleavingRepository(g.repo, interleave)
    return DecisionService(repo, g.clock, g.workflow), repo  # type: ignore[arg-type]


def test_two_approvals_racing_still_make_exactly_two_votes_and_one_decision(g: Gates) -> None:
    # Given a two-person checkpoint and carol's approval landing while bob's is being saved
    cp = g.create("hard")
    _token(g, cp)
    carol = lambda: g.decisions.act(cp.id, actor(CAROL), Act.APPROVE, comment="carol: ok")  # noqa: E731
    decisions, racing_repo = _racing(g, carol)
    # When bob's approval is saved (stale once) and retried
    result = decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="bob: ok")
    # Then both votes count, in order, and the second one decided it exactly once
    assert racing_repo.saves == 2
    assert result.decided
    stored = g.repo.get(cp.id)
    assert stored.status is Status.APPROVED
    assert [v.approver for v in stored.votes] == [CAROL, BOB]
    assert sorted(g.repo.votes) == [(cp.id, BOB), (cp.id, CAROL)]
    assert stored.decided_by == "Carol Diaz, Bob Chen"
    assert len(g.of_type(cp.id, EventType.VOTED)) == 2
    assert len(g.of_type(cp.id, EventType.DECIDED)) == 1
    assert [t for t, _ in g.workflow.answer_calls] == [SECRET_TOKEN]


def test_a_double_click_racing_itself_is_one_vote(g: Gates) -> None:
    cp = g.create("hard")
    bob_again = lambda: g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")  # noqa: E731
    decisions, _ = _racing(g, bob_again)
    result = decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    assert result.refusal is Refusal.DUPLICATE
    assert len(g.repo.get(cp.id).votes) == 1
    assert len(g.of_type(cp.id, EventType.VOTED)) == 1


def test_an_approval_racing_the_timeout_finds_it_decided(g: Gates) -> None:
    cp = g.create("hard")
    decisions, _ = _racing(g, lambda: g.decisions.apply_timeout(cp.id))
    result = decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    assert result.refusal is Refusal.ALREADY_DECIDED
    stored = g.repo.get(cp.id)
    assert stored.status is Status.EXPIRED and stored.votes == []


def test_a_vote_the_store_already_holds_is_a_duplicate(g: Gates) -> None:
    # Given a store whose vote item exists although the checkpoint does not show it yet
    cp = g.create("hard")

    class ReplayingRepository(InterleavingRepository):
        def save(self, checkpoint: Checkpoint, *, expected: Checkpoint, events: list[Any], vote: Any = None) -> None:
            if vote is not None:
                raise DuplicateVote(vote.approver)
            self.inner.save(checkpoint, expected=expected, events=events, vote=vote)

    decisions = DecisionService(ReplayingRepository(g.repo), g.clock, g.workflow)  # type: ignore[arg-type]
    # When the vote is saved
    result = decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    # Then the click is refused as a duplicate and audited, not raised
    assert result.refusal is Refusal.DUPLICATE
    assert g.events(cp.id)[-1].data["refusal"] == "duplicate"
    assert g.repo.get(cp.id).votes == []


# -- cancelling --------------------------------------------------------------------------------


def test_the_requesting_principal_may_cancel(g: Gates) -> None:
    # Given a pending checkpoint whose workflow waits with a token
    cp = g.create("hard")
    _token(g, cp)
    g.clock.advance(120)
    # When the principal that requested it cancels it
    cancelled = g.service.cancel(cp.id, actor=CALLER_ARN, reason="superseded by v2.4.2", only_by=CALLER_ARN)
    # Then it is cancelled, audited with the decision fields, and the workflow moves on
    assert cancelled.status is Status.CANCELLED
    assert (cancelled.decided_by, cancelled.decision_reason) == (CALLER_ARN, "superseded by v2.4.2")
    last = g.events(cp.id)[-1]
    assert last.type is EventType.CANCELLED
    assert DECISION_FIELDS <= last.data.keys() and last.data["latency_seconds"] == 120.0
    assert g.workflow.answers == {SECRET_TOKEN: {"status": "CANCELLED", "decided_by": CALLER_ARN}}
    # and later clicks find it decided
    assert g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok").refusal is Refusal.ALREADY_DECIDED


def test_another_principal_may_not_cancel(g: Gates) -> None:
    cp = g.create("hard")
    _token(g, cp)
    with pytest.raises(Forbidden):
        g.service.cancel(cp.id, actor="arn:aws:iam::123456789012:user/intruder", reason="x", only_by="arn:intruder")
    assert g.repo.get(cp.id) == cp
    assert g.workflow.answer_calls == []


def test_a_decided_checkpoint_cannot_be_cancelled(g: Gates) -> None:
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="no")
    denied = g.repo.get(cp.id)
    with pytest.raises(Conflict):
        g.service.cancel(cp.id, actor=CALLER_ARN, reason="x", only_by=CALLER_ARN)
    assert g.repo.get(cp.id) == denied


def test_a_workflow_that_does_not_start_leaves_nothing_pending(g: Gates) -> None:
    # Given a state machine that cannot be started
    g.workflow.fail_start = True
    # When a hard checkpoint is requested
    with pytest.raises(WorkflowUnavailable):
        g.create("hard")
    # Then the stored checkpoint was cancelled rather than left waiting
    [cp] = stored_checkpoints(g.repo)
    assert cp.status is Status.CANCELLED and cp.execution is None
    assert cp.decided_by == "signoff" and "could not start" in (cp.decision_reason or "")
    assert g.types(cp.id) == [EventType.REQUESTED, EventType.CANCELLED]
    assert g.workflow.started == {}


def test_deadline_is_the_approval_deadline_plus_the_escalation_wait(g: Gates) -> None:
    cp = g.create("hard")
    assert cp.deadline == cp.created_at + timedelta(minutes=60)

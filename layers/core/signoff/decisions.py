"""People acting on a checkpoint from chat: authorized server-side (eligible approver, separation
of duties, deadline, one vote per person, N of M, comments), recorded once, refusals audited.
A decision is single-use: a conditional update from PENDING."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.answers import release_workflow
from signoff.audit import EventType
from signoff.cards import Act
from signoff.errors import DuplicateVote
from signoff.ledger import Change, Entry, apply_change, decision_data
from signoff.models import Checkpoint, Status, Vote, VoteKind
from signoff.observability import metrics
from signoff.policy import GateKind, TimeoutRule
from signoff.ports import CheckpointRepository, Clock, Workflow

MAX_COMMENT = 2000


@dataclass(frozen=True)
class Actor:
    """Who clicked, as the chat surface proved it and the directory resolved it."""

    surface: str  # slack | teams
    handle: str  # e.g. slack:T0SIGNOFF/U0CAROL
    person: str | None  # directory id; None when the directory does not know them
    name: str


class Refusal(StrEnum):
    UNAUTHORIZED = "unauthorized"  # not an eligible approver (or unknown to the directory)
    REQUESTER = "requester"  # separation of duties
    ALREADY_DECIDED = "already_decided"
    LATE = "late"
    DUPLICATE = "duplicate"
    COMMENT_REQUIRED = "comment_required"
    REASON_REQUIRED = "reason_required"
    NOT_ON_THIS_GATE = "not_on_this_gate"

    @property
    def unauthorized(self) -> bool:
        """Counts towards the 'unauthorized approvals' figure (should be 0)."""
        return self in (Refusal.UNAUTHORIZED, Refusal.REQUESTER)


@dataclass(frozen=True)
class ActResult:
    checkpoint: Checkpoint
    message: str  # what the person is told (ephemeral)
    refusal: Refusal | None = None
    decided: bool = False

    @property
    def ok(self) -> bool:
        return self.refusal is None


class Refused(Exception):
    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


_HARD_ACTS = {Act.APPROVE, Act.APPROVE_WITH_CONDITIONS, Act.DENY, Act.ESCALATE}
_SOFT_ACTS = {Act.VETO}
_VOTES = {Act.APPROVE, Act.APPROVE_WITH_CONDITIONS, Act.DENY, Act.VETO}


def _when(at: datetime | None) -> str:
    return at.strftime("%H:%M UTC") if at else "?"


def check(cp: Checkpoint, actor: Actor, act: Act, comment: str | None, now: datetime) -> None:
    """Raise Refused when `actor` may not do `act` on `cp` now. Pure: the rules in one place."""
    gate = cp.assessment.gate
    if act is Act.VIEW_DETAILS:
        # Approvers and the requester may look at a checkpoint whatever its state.
        if actor.person is not None and (actor.person in cp.approvers or actor.person == cp.request.requester.id):
            return
        raise Refused(Refusal.UNAUTHORIZED, "Only this checkpoint's approvers and requester can see its details.")
    if cp.status is not Status.PENDING:
        raise Refused(
            Refusal.ALREADY_DECIDED,
            f"Already decided: {cp.status.value.lower()} by {cp.decided_by} at {_when(cp.decided_at)}.",
        )
    if cp.deadline is not None and now >= cp.deadline:
        raise Refused(Refusal.LATE, f"Too late: the deadline passed at {_when(cp.deadline)}.")
    if actor.person is None:
        raise Refused(Refusal.UNAUTHORIZED, "You are not in Signoff's directory, so you cannot act on checkpoints.")
    is_requester = actor.person == cp.request.requester.id
    if is_requester and act in (Act.APPROVE, Act.APPROVE_WITH_CONDITIONS) and not gate.requester_may_approve:
        raise Refused(Refusal.REQUESTER, "Separation of duties: the requester may not approve their own request.")
    if actor.person not in cp.approvers:
        raise Refused(Refusal.UNAUTHORIZED, "You are not an approver for this checkpoint.")
    if (act in _HARD_ACTS and gate.kind is not GateKind.HARD) or (act in _SOFT_ACTS and gate.kind is not GateKind.SOFT):
        raise Refused(Refusal.NOT_ON_THIS_GATE, f"'{act.value}' is not available on a {gate.kind.value} gate.")
    if act in _VOTES:
        previous = next((v for v in cp.votes if v.approver == actor.person), None)
        if previous is not None:
            raise Refused(Refusal.DUPLICATE, f"You already voted ({previous.kind.value} at {_when(previous.at)}).")
    if act in (Act.DENY,) and not (comment and comment.strip()):
        raise Refused(Refusal.REASON_REQUIRED, "A reason is required to deny.")
    if (
        act in (Act.APPROVE, Act.APPROVE_WITH_CONDITIONS)
        and gate.comment_required
        and not (comment and comment.strip())
    ):
        raise Refused(Refusal.COMMENT_REQUIRED, "This is a high-risk approval: a comment is required.")


class DecisionService:
    def __init__(self, repo: CheckpointRepository, clock: Clock, workflow: Workflow | None) -> None:
        self.repo = repo
        self.clock = clock
        self.workflow = workflow

    def act(
        self,
        checkpoint_id: str,
        actor: Actor,
        act: Act,
        *,
        comment: str | None = None,
        conditions: dict[str, Any] | None = None,
    ) -> ActResult:
        """Apply one click (or modal submission). Never raises for a refused click: it is recorded
        and explained instead."""
        comment = comment.strip()[:MAX_COMMENT] if comment and comment.strip() else None

        def decide(cp: Checkpoint) -> Change:
            now = self.clock.now()
            check(cp, actor, act, comment, now)
            if act in _VOTES:
                return self._vote(cp, actor, act, comment, conditions, now)
            entry_type = {Act.REQUEST_INFO: EventType.INFO_REQUESTED, Act.ESCALATE: EventType.ESCALATED}.get(act)
            if entry_type is None:  # view details: nothing changes
                raise _NothingToRecord()
            data = {"by": actor.person, "surface": actor.surface, "comment": comment, "manual": True}
            updates = {"escalated": True} if act is Act.ESCALATE else {}
            return Change(updates=updates, entries=[Entry(entry_type, actor.person or actor.handle, data)])

        try:
            cp = apply_change(self.repo, self.clock, checkpoint_id, decide)
        except Refused as refused:
            return self._refuse(checkpoint_id, actor, act, refused)
        except DuplicateVote:
            # The condition on the vote item caught a replay the state did not show yet.
            return self._refuse(checkpoint_id, actor, act, Refused(Refusal.DUPLICATE, "You already voted."))
        except _NothingToRecord:
            return ActResult(self.repo.get(checkpoint_id), "")
        decided = cp.status is not Status.PENDING
        if decided:
            release_workflow(self.repo, self.workflow, cp)
        return ActResult(cp, _ack_message(cp, act, decided), decided=decided)

    def _vote(
        self,
        cp: Checkpoint,
        actor: Actor,
        act: Act,
        comment: str | None,
        conditions: dict[str, Any] | None,
        now: datetime,
    ) -> Change:
        assert actor.person is not None
        kind = VoteKind.DENY if act in (Act.DENY, Act.VETO) else VoteKind.APPROVE
        vote = Vote(
            approver=actor.person,
            name=actor.name,
            kind=kind,
            comment=comment,
            conditions=conditions if act is Act.APPROVE_WITH_CONDITIONS else None,
            surface=actor.surface,
            at=now,
        )
        votes = [*cp.votes, vote]
        entries = [Entry(EventType.VOTED, actor.person, {**vote.model_dump(mode="json"), "act": act.value})]
        updates: dict[str, Any] = {"votes": votes}
        approvals = [v for v in votes if v.kind is VoteKind.APPROVE]
        status: Status | None = None
        if kind is VoteKind.DENY:
            status, reason = Status.DENIED, comment or ("vetoed" if act is Act.VETO else "denied")
            decided_by = actor.name
        elif len(approvals) >= cp.assessment.gate.approvals_required:
            status, reason = Status.APPROVED, "; ".join(v.comment for v in approvals if v.comment) or "approved"
            decided_by = ", ".join(v.name for v in approvals)
        if status is not None:
            merged: dict[str, Any] = {}
            for v in approvals:
                merged.update(v.conditions or {})
            updates |= {
                "status": status,
                "decided_at": now,
                "decided_by": decided_by,
                "decision_reason": reason,
                "conditions": merged or None,
            }
            decided = cp.model_copy(update={"votes": votes, "conditions": merged or None})
            entries.append(
                Entry(EventType.DECIDED, actor.person, decision_data(decided, status, decided_by, reason, now))
            )
        return Change(updates=updates, entries=entries, vote=vote)

    def _refuse(self, checkpoint_id: str, actor: Actor, act: Act, refused: Refused) -> ActResult:
        """Write the refused attempt to the audit trail (it feeds the unauthorized-attempts SLI)."""
        data = {
            "refusal": refused.refusal.value,
            "unauthorized": refused.refusal.unauthorized,
            "act": act.value,
            "surface": actor.surface,
            "handle": actor.handle,
            "person": actor.person,
        }

        def record(cp: Checkpoint) -> Change:
            return Change(entries=[Entry(EventType.REFUSED, actor.person or actor.handle, data)])

        # Counted before the write: the alarm on it pages, and an attempt happened even if
        # recording it fails. A refused peek at the details is audited but pages nobody: cards
        # sit in shared channels, and a curious non-approver there is not an attack.
        if refused.refusal.unauthorized and act is not Act.VIEW_DETAILS:
            metrics.add_metric(name="UnauthorizedAttempt", unit=MetricUnit.Count, value=1)
        cp = apply_change(self.repo, self.clock, checkpoint_id, record)
        return ActResult(cp, refused.message, refusal=refused.refusal)

    def apply_timeout(self, checkpoint_id: str, *, unreachable: bool = False) -> Checkpoint:
        """Nobody decided in time (escalation included): apply the gate's timeout rule, once.
        When no approver could even be notified the request expires, whatever the rule says."""

        def decide(cp: Checkpoint) -> Change:
            if cp.status is not Status.PENDING:
                raise _NothingToRecord()
            now = self.clock.now()
            gate = cp.assessment.gate
            rule = gate.timeout_rule or TimeoutRule.FAIL_CLOSED
            if unreachable:
                status, reason = Status.EXPIRED, "no approver could be notified: denied (fail-closed)"
            elif gate.kind is GateKind.SOFT and rule is TimeoutRule.FAIL_OPEN:
                status, reason = Status.APPROVED, "veto window closed with no veto"
            else:
                status, reason = {
                    TimeoutRule.FAIL_CLOSED: (Status.EXPIRED, "no decision by the deadline: denied (fail-closed)"),
                    TimeoutRule.FAIL_OPEN: (Status.APPROVED, "no decision by the deadline: approved (fail-open)"),
                    TimeoutRule.CANCEL: (Status.CANCELLED, "no decision by the deadline: cancelled"),
                }[rule]
            by = f"policy ({rule.value})"
            updates = {"status": status, "decided_at": now, "decided_by": by, "decision_reason": reason}
            return Change(
                updates=updates, entries=[Entry(EventType.DECIDED, by, decision_data(cp, status, by, reason, now))]
            )

        try:
            return apply_change(self.repo, self.clock, checkpoint_id, decide)
        except _NothingToRecord:
            return self.repo.get(checkpoint_id)


class _NothingToRecord(Exception):
    pass


def _ack_message(cp: Checkpoint, act: Act, decided: bool) -> str:
    if decided:
        return f"Recorded. The checkpoint is now {cp.status.value.lower()}."
    if act in (Act.APPROVE, Act.APPROVE_WITH_CONDITIONS):
        approvals = sum(1 for v in cp.votes if v.kind is VoteKind.APPROVE)
        return f"Approval recorded ({approvals} of {cp.assessment.gate.approvals_required})."
    return {
        Act.REQUEST_INFO: "Asked the requester in the thread; the clock keeps running.",
        Act.ESCALATE: f"Escalated to {cp.assessment.gate.escalation_route or 'the escalation route'}.",
    }.get(act, "Recorded.")

"""People acting on a checkpoint from chat: authorized server-side (eligible approver, separation
of duties, deadline, one vote per person, N of M, comments), recorded once, refusals audited.
A decision is single-use: a conditional update from PENDING."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.audit.changes import Change, Entry, apply_change, decision_data
from signoff.audit.events import EventType
from signoff.domain.acts import MAX_COMMENT, VOTES, Act, Actor, Refusal, Refused, check
from signoff.domain.errors import DuplicateVote
from signoff.domain.models import Checkpoint, Status, Vote, VoteKind
from signoff.domain.policy import GateKind, TimeoutRule
from signoff.observability import metrics
from signoff.ports import CheckpointRepository, Clock, Workflow
from signoff.usecases.results import release_workflow


@dataclass(frozen=True)
class ActResult:
    checkpoint: Checkpoint
    message: str  # what the person is told (ephemeral)
    refusal: Refusal | None = None
    decided: bool = False

    @property
    def ok(self) -> bool:
        return self.refusal is None


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
            if act in VOTES:
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

    def apply_timeout(self, checkpoint_id: str, *, unreachable: bool = False, detail: str | None = None) -> Checkpoint:
        """Nobody decided in time (escalation included): apply the gate's timeout rule, once.

        When no approver could even be notified the request expires, whatever the rule says: a
        fail-open gate nobody saw must not run. The decision then names that, not the rule it
        did not apply (`decided_by` "policy (unreachable)"), and `detail` says why nobody could
        be told, e.g. "slack channel_not_found on C0RELEASE"."""

        def decide(cp: Checkpoint) -> Change:
            if cp.status is not Status.PENDING:
                raise _NothingToRecord()
            now = self.clock.now()
            status, by, reason = timeout_outcome(cp, unreachable=unreachable, detail=detail)
            updates = {"status": status, "decided_at": now, "decided_by": by, "decision_reason": reason}
            return Change(
                updates=updates, entries=[Entry(EventType.DECIDED, by, decision_data(cp, status, by, reason, now))]
            )

        try:
            return apply_change(self.repo, self.clock, checkpoint_id, decide)
        except _NothingToRecord:
            return self.repo.get(checkpoint_id)


UNREACHABLE_BY = "policy (unreachable)"
UNREACHABLE_REASON = "no approver could be notified"


def timeout_outcome(cp: Checkpoint, *, unreachable: bool, detail: str | None = None) -> tuple[Status, str, str]:
    """(status, decided_by, reason) of a checkpoint nobody decided. `decided_by` names what
    decided and the reason says the same thing: the rule that applied, or that nobody could be
    told (which always expires)."""
    if unreachable:
        return Status.EXPIRED, UNREACHABLE_BY, f"{UNREACHABLE_REASON}: {detail}" if detail else UNREACHABLE_REASON
    gate = cp.assessment.gate
    rule = gate.timeout_rule or TimeoutRule.FAIL_CLOSED
    by = f"policy ({rule.value})"
    if gate.kind is GateKind.SOFT and rule is TimeoutRule.FAIL_OPEN:
        return Status.APPROVED, by, "veto window closed with no veto"
    status, reason = {
        TimeoutRule.FAIL_CLOSED: (Status.EXPIRED, "no decision by the deadline: denied (fail-closed)"),
        TimeoutRule.FAIL_OPEN: (Status.APPROVED, "no decision by the deadline: approved (fail-open)"),
        TimeoutRule.CANCEL: (Status.CANCELLED, "no decision by the deadline: cancelled"),
    }[rule]
    return status, by, reason


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

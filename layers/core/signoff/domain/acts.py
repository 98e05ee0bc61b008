"""What people do to a checkpoint from chat, and the rule that says whether they may: eligible
approver, separation of duties, deadline, one vote per person, the gate's own buttons, comments.
Pure: every surface and the use cases ask `check` the same question."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from signoff.domain.models import Checkpoint, Status
from signoff.domain.policy import GateKind

MAX_COMMENT = 2000  # characters of a comment or reason kept (inputs are limited to it too)


class Act(StrEnum):
    """What a button does. Values are the action ids both surfaces send back."""

    APPROVE = "approve"
    DENY = "deny"
    REQUEST_INFO = "request_info"
    APPROVE_WITH_CONDITIONS = "approve_conditions"
    ESCALATE = "escalate"
    VIEW_DETAILS = "view_details"
    VETO = "veto"


@dataclass(frozen=True)
class Actor:
    """Who clicked, as the chat surface proved it and the directory resolved it."""

    surface: str  # slack | teams
    handle: str  # e.g. slack:T0SIGNOFF/U0CAROL
    person: str | None  # directory id; None when the directory does not know them
    name: str
    # False for a request from a workspace (Slack) or tenant (Teams) that is not this deployment's:
    # signed by the platform, but from people Signoff has no business with.
    workspace_known: bool = True


class Refusal(StrEnum):
    UNAUTHORIZED = "unauthorized"  # not an eligible approver (or unknown to the directory)
    REQUESTER = "requester"  # separation of duties
    ALREADY_DECIDED = "already_decided"
    LATE = "late"
    DUPLICATE = "duplicate"
    COMMENT_REQUIRED = "comment_required"
    REASON_REQUIRED = "reason_required"
    NOT_ON_THIS_GATE = "not_on_this_gate"
    UNKNOWN_WORKSPACE = "unknown_workspace"  # a workspace or tenant that is not this deployment's

    @property
    def unauthorized(self) -> bool:
        """Counts towards the 'unauthorized approvals' figure (should be 0)."""
        return self in (Refusal.UNAUTHORIZED, Refusal.REQUESTER, Refusal.UNKNOWN_WORKSPACE)


class Refused(Exception):
    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


_HARD_ACTS = {Act.APPROVE, Act.APPROVE_WITH_CONDITIONS, Act.DENY, Act.ESCALATE}
_SOFT_ACTS = {Act.VETO}
VOTES = {Act.APPROVE, Act.APPROVE_WITH_CONDITIONS, Act.DENY, Act.VETO}  # one per person


def _when(at: datetime | None) -> str:
    return at.strftime("%H:%M UTC") if at else "?"


def check(cp: Checkpoint, actor: Actor, act: Act, comment: str | None, now: datetime) -> None:
    """Raise Refused when `actor` may not do `act` on `cp` now. Pure: the rules in one place."""
    gate = cp.assessment.gate
    if not actor.workspace_known:
        raise Refused(Refusal.UNKNOWN_WORKSPACE, "This workspace is not connected to Signoff.")
    if act is Act.VIEW_DETAILS:
        # Approvers and the requester may look at a checkpoint whatever its state.
        if can_see(cp, actor):
            return
        raise Refused(Refusal.UNAUTHORIZED, "Only this checkpoint's approvers and requester can see its details.")
    # Who may act is checked before the checkpoint's state: someone who may not see it learns
    # nothing from a refusal (not who decided it, nor when), and the answer a stranger gets does
    # not depend on whether the approvers were faster.
    if actor.person is None:
        raise Refused(Refusal.UNAUTHORIZED, "You are not in Signoff's directory, so you cannot act on checkpoints.")
    if not can_see(cp, actor):
        raise Refused(Refusal.UNAUTHORIZED, "You are not an approver for this checkpoint.")
    if cp.status is not Status.PENDING:
        raise Refused(
            Refusal.ALREADY_DECIDED,
            f"Already decided: {cp.status.value.lower()} by {cp.decided_by} at {_when(cp.decided_at)}.",
        )
    if cp.deadline is not None and now >= cp.deadline:
        raise Refused(Refusal.LATE, f"Too late: the deadline passed at {_when(cp.deadline)}.")
    is_requester = actor.person == cp.request.requester.id
    if is_requester and act in (Act.APPROVE, Act.APPROVE_WITH_CONDITIONS) and not gate.requester_may_approve:
        raise Refused(Refusal.REQUESTER, "Separation of duties: the requester may not approve their own request.")
    if actor.person not in cp.approvers:
        raise Refused(Refusal.UNAUTHORIZED, "You are not an approver for this checkpoint.")
    if (act in _HARD_ACTS and gate.kind is not GateKind.HARD) or (act in _SOFT_ACTS and gate.kind is not GateKind.SOFT):
        raise Refused(Refusal.NOT_ON_THIS_GATE, f"'{act.value}' is not available on a {gate.kind.value} gate.")
    if act in VOTES:
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


def can_see(cp: Checkpoint, actor: Actor) -> bool:
    """Approvers and the requester may see a checkpoint (its details, its card on a sensitive gate)."""
    return actor.person is not None and (actor.person in cp.approvers or actor.person == cp.request.requester.id)

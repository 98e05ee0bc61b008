"""How a decision leaves Signoff: the approval workflow's task answered, an embedding workflow
resumed (or failed with an error it can catch), the body the requester's webhook receives."""

from __future__ import annotations

from typing import Any

from signoff.domain.models import Checkpoint, Status
from signoff.ports import CheckpointRepository, Workflow

CALLER_ERRORS = {
    Status.DENIED: "Signoff.Denied",
    Status.EXPIRED: "Signoff.Expired",
    Status.CANCELLED: "Signoff.Cancelled",
}


def result(cp: Checkpoint) -> dict[str, Any]:
    """What the requester's webhook and an embedding workflow receive."""
    return {
        "checkpoint_id": cp.id,
        "status": cp.status.value,
        "decided_by": cp.decided_by,
        "decided_at": cp.decided_at.isoformat() if cp.decided_at else None,
        "reason": cp.decision_reason,
        "conditions": cp.conditions,
        "gate": cp.assessment.gate.kind.value,
        "score": cp.assessment.score.score,
        "policy_version": cp.assessment.policy_version,
        "request_id": cp.request.request_id,
        "workflow_id": cp.request.workflow_id,
    }


def answer_caller(workflow: Workflow, token: str, cp: Checkpoint) -> bool:
    """Resume an embedding workflow: the decision (and its conditions) on approval, else a task
    failure it can catch: Signoff.Denied, Signoff.Expired or Signoff.Cancelled. False when its
    task no longer waits (answered before, timed out, or its execution ended)."""
    if cp.status is Status.PENDING:
        return False
    if cp.status is Status.APPROVED:
        return workflow.answer(token, result(cp))
    cause = f"{cp.id}: {cp.decision_reason or cp.status.value}"
    return workflow.fail(token, CALLER_ERRORS[cp.status], cause)


def caller_error(cp: Checkpoint) -> str | None:
    """The error an embedding workflow's task fails with (None: it resumes with the decision)."""
    return CALLER_ERRORS.get(cp.status)


def release_workflow(repo: CheckpointRepository, workflow: Workflow | None, cp: Checkpoint) -> None:
    """Answer the approval workflow's waiting task with the recorded decision, so the execution
    moves on to Finalize at once. A task that no longer waits is fine: Finalize reads the record."""
    if workflow is None or cp.status is Status.PENDING:
        return
    token = repo.get_token(cp.id)
    if token is None:
        return
    workflow.answer(token.token, {"status": cp.status.value, "decided_by": cp.decided_by})

"""A Step Functions workflow embedding a checkpoint: it invokes the intake function with
`.waitForTaskToken`. The checkpoint is created like one from the API; its decision answers the
caller's token (the decision and its conditions) or fails it with Signoff.Denied,
Signoff.Expired or Signoff.Cancelled. A request Signoff cannot accept fails it with
Signoff.InvalidRequest, so the caller never waits for nothing."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from signoff.errors import Conflict, InvalidRequest
from signoff.models import CheckpointRequest
from signoff.observability import logger
from signoff.policy import validation_problems
from signoff.ports import Workflow
from signoff.service import CheckpointService

EMBED_KEY = "signoff_checkpoint"


def is_embedded(event: dict[str, Any]) -> bool:
    return isinstance(event, dict) and EMBED_KEY in event and "httpMethod" not in event


def handle_embedded(event: dict[str, Any], service: CheckpointService, workflow: Workflow) -> dict[str, Any]:
    """event = {"signoff_checkpoint": <request>, "task_token": ..., "execution": $$.Execution.Id,
    "state": $$.State.Name}. The execution and state make the idempotency key, so a retried task
    finds the checkpoint it already created."""
    token = str(event.get("task_token") or "")
    if not token:
        raise ValueError("an embedded checkpoint needs task_token ($$.Task.Token)")
    execution = str(event.get("execution") or "unknown-execution")
    caller = execution.rsplit(":", 2)[0] if execution.count(":") >= 2 else execution  # the state machine
    try:
        request = CheckpointRequest.model_validate(event[EMBED_KEY])
        cp = service.create(
            request, caller=caller, idempotency_key=f"{execution}/{event.get('state', '')}", caller_token=token
        )
    except ValidationError as exc:
        workflow.fail(token, "Signoff.InvalidRequest", "; ".join(validation_problems(exc))[:4000])
        return {"accepted": False}
    except (InvalidRequest, Conflict) as exc:
        workflow.fail(token, "Signoff.InvalidRequest", str(exc))
        return {"accepted": False}
    logger.info("embedded checkpoint", extra={"checkpoint_id": cp.id, "status": cp.status.value})
    return {"accepted": True, "checkpoint_id": cp.id, "status": cp.status.value}

"""A Step Functions workflow embedding a checkpoint: it invokes the intake function with
`.waitForTaskToken`. The checkpoint is created like one from the API; its decision answers the
caller's token (the decision and its conditions) or fails it with Signoff.Denied,
Signoff.Expired or Signoff.Cancelled. A request Signoff cannot accept fails it with
Signoff.InvalidRequest, so the caller never waits for nothing."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from signoff.domain.errors import Conflict, InvalidRequest
from signoff.domain.models import CheckpointRequest, Status
from signoff.domain.policy import GateKind, validation_problems
from signoff.observability import logger, metrics
from signoff.ports import Workflow
from signoff.usecases.intake import CheckpointService
from signoff.usecases.results import answer_caller

EMBED_KEY = "signoff_checkpoint"


def state_machine_of(execution_arn: str) -> str:
    """arn:aws:states:r:a:execution:Machine:run (or express:Machine:run:id) -> the state machine's ARN:
    the caller of record of an embedded checkpoint (and the only principal that may cancel it)."""
    parts = execution_arn.split(":")
    if len(parts) >= 8 and parts[5] in ("execution", "express"):
        return ":".join([*parts[:5], "stateMachine", parts[6]])
    return execution_arn


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
    caller = state_machine_of(execution)
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
    metrics.add_metric(name="CheckpointRequested", unit=MetricUnit.Count, value=1)
    if cp.assessment.gate.kind is GateKind.AUTO:
        metrics.add_metric(name="AutoApproved", unit=MetricUnit.Count, value=1)
    # A retried task may carry a new token and may find the checkpoint already decided (or
    # cancelled because its workflow could not start): keep the newest token and answer it now,
    # so the caller never waits on a checkpoint that will not move again.
    service.repo.put_caller_token(cp.id, token)
    if cp.status is not Status.PENDING:
        answer_caller(workflow, token, cp)
    logger.info("embedded checkpoint", extra={"checkpoint_id": cp.id, "status": cp.status.value})
    return {"accepted": True, "checkpoint_id": cp.id, "status": cp.status.value}

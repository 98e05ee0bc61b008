"""Notify: the approval workflow's waiting task. Keeps the task token server-side and posts the
card (initial phase) or tells the escalation route (escalation phase)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.observability import log_invocation, logger, metrics, tracer


@log_invocation()
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(checkpoint_id=event["checkpoint_id"], phase=event["phase"])
    return composition.steps().notify(event["checkpoint_id"], event["phase"], event["task_token"])

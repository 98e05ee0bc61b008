"""Sweeper: run every 5 minutes by an EventBridge schedule. Counts pending checkpoints and the
ones stalled past their deadline (PendingApprovals, StalledApprovals) and logs the stalled ids."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.observability import log_invocation, metrics, tracer
from signoff.usecases.sweeper import sweep


@log_invocation()
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sweep(composition.repository(), composition.clock()).summary()

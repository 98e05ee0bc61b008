"""Finalize: records the timeout rule if nobody decided, updates the cards, calls the requester's
webhook, answers an embedding workflow, emits the business metrics."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.observability import log_invocation, logger, metrics, tracer


@log_invocation()
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(checkpoint_id=event["checkpoint_id"])
    return composition.steps().finalize(event["checkpoint_id"], event.get("decision"))

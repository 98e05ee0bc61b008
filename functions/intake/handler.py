"""Intake: POST/GET /v1/checkpoints*, cancel, the audit trail and outcomes, the OpenAPI document;
and checkpoints embedded in Step Functions workflows (invoked with `.waitForTaskToken`)."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import wiring
from signoff.embed import handle_embedded, is_embedded
from signoff.http import handle
from signoff.observability import logger, metrics, tracer
from signoff.routes import checkpoints

app = checkpoints.build()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_embedded(event):
        return handle_embedded(event, wiring.api_service(), wiring.workflow())
    return handle(app, event, context)

"""Intake: POST/GET /v1/checkpoints*, cancel, the audit trail and outcomes, the OpenAPI document;
and checkpoints embedded in Step Functions workflows (invoked with `.waitForTaskToken`)."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.api import checkpoints
from signoff.api.http import handle
from signoff.observability import log_invocation, metrics, tracer
from signoff.usecases.embed import handle_embedded, is_embedded

app = checkpoints.build(composition.api_service)


@log_invocation(correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_embedded(event):
        return handle_embedded(event, composition.api_service(), composition.workflow())
    return handle(app, event, context)

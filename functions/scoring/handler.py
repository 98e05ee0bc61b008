"""Scoring: POST /v1/score, the decision engine as a dry run (nothing stored)."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.api import scoring
from signoff.api.http import build_app, handle
from signoff.observability import log_invocation, metrics, tracer

app = build_app(scoring.routes(composition.policy))


@log_invocation(correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)

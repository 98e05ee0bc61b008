"""Slack: POST /v1/slack/events. Interactivity (buttons, modals), the /signoff command and events
share it; bolt verifies Slack's signature. Lazy work re-invokes this same function asynchronously."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.observability import log_invocation, metrics
from signoff.surfaces.slack.app import handle


@log_invocation(correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics  # flushes what the decisions emitted (UnauthorizedAttempt), on errors too
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, composition.slack_handler())

"""Teams: POST /v1/teams/messages. What the Bot Connector sends the bot (card clicks, installs,
messages), authenticated by its JWT; follow-up work re-invokes this same function asynchronously."""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.observability import log_invocation, metrics
from signoff.surfaces.teams.app import handle


@log_invocation(correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics  # flushes what the decisions emitted (UnauthorizedAttempt), on errors too
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, composition.teams_app(), composition.self_invoke(context.invoked_function_arn))

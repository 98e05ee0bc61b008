"""POST /v1/score: the decision engine as a dry run. Imports nothing that talks to AWS, so the
scoring function starts fast. The route is built around a provider of the policy, which the
function's handler takes from the composition root."""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from signoff.api.http import BODY_PROBLEMS, json_response, responses
from signoff.domain.models import Assessment, CheckpointRequest
from signoff.domain.policy import LoadedPolicy
from signoff.usecases.intake import score_request


def routes(policy: Callable[[], LoadedPolicy]) -> Router:
    """The scoring route, on a provider of the policy (called when a request comes)."""
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/v1/score",
        summary="Dry run: score and gate a request without storing anything",
        tags=["scoring"],
        responses=responses({200: ("What the engine concluded: score, risk, band, gate", Assessment)}, *BODY_PROBLEMS),
    )
    def score(body: CheckpointRequest) -> Response[str]:
        return json_response(200, score_request(body, policy()))

    return router

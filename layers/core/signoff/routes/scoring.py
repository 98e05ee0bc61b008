"""POST /v1/score: the decision engine as a dry run. Imports nothing that talks to AWS, so the
scoring function starts fast."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from signoff.http import json_response
from signoff.models import CheckpointRequest
from signoff.service import score_request
from signoff.wiring import policy

router = Router()  # type: ignore[no-untyped-call]


@router.post("/v1/score", summary="Dry run: score and gate a request without storing anything", tags=["scoring"])
def score(body: CheckpointRequest) -> Response[str]:
    return json_response(200, score_request(body, policy()))

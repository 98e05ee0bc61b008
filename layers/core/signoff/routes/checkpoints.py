"""POST/GET /v1/checkpoints*, the audit trail, outcomes, and the OpenAPI document of the whole API."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, ConfigDict, StringConstraints

from signoff.errors import NotFound
from signoff.http import build_app, caller, json_response, problem
from signoff.models import CHECKPOINT_ID_RE, CheckpointPage, CheckpointRequest, OutcomeRequest, Status
from signoff.observability import logger, metrics
from signoff.policy import GateKind
from signoff.routes import scoring
from signoff.wiring import api_service

API_TITLE = "Signoff"
API_VERSION = "1.0.0"

router = Router()  # type: ignore[no-untyped-call]


def _checkpoint_id(value: str) -> str:
    if not CHECKPOINT_ID_RE.match(value):
        raise NotFound(value)
    return value


@router.post("/v1/checkpoints", summary="Ask whether an action may run", tags=["checkpoints"])
def create_checkpoint(
    body: CheckpointRequest,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="Retries with the same key and body return the same checkpoint",
        ),
    ] = None,
) -> Response[str]:
    service = api_service()
    service.bind_lambda_context(router.lambda_context)
    cp = service.create(body, caller=caller(router), idempotency_key=idempotency_key)
    logger.append_keys(checkpoint_id=cp.id)
    logger.info("checkpoint", extra={"status": cp.status.value, "gate": cp.assessment.gate.kind.value})
    # Business metrics (dashboards, not an exact ledger: an idempotent retry is counted again).
    metrics.add_metric(name="CheckpointRequested", unit=MetricUnit.Count, value=1)
    if cp.assessment.gate.kind is GateKind.AUTO:
        metrics.add_metric(name="AutoApproved", unit=MetricUnit.Count, value=1)
    # Auto gates are decided: 200. Soft and hard gates wait for people: 202, poll or get a webhook.
    status = 200 if cp.status is not Status.PENDING else 202
    return json_response(status, cp, {"Location": f"/v1/checkpoints/{cp.id}"})


@router.get("/v1/checkpoints", summary="List checkpoints by status", tags=["checkpoints"])
def list_checkpoints(
    status: Annotated[str, Query(pattern="^(pending|approved|denied|expired|cancelled)$")] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    page: CheckpointPage = api_service().list_by_status(Status(status.upper()), limit=limit, next_token=next_token)
    return json_response(200, page)


@router.get("/v1/checkpoints/<checkpoint_id>", summary="Read a checkpoint", tags=["checkpoints"])
def get_checkpoint(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
    return json_response(200, api_service().get(_checkpoint_id(checkpoint_id)))


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = "cancelled by the requester"


@router.post(
    "/v1/checkpoints/<checkpoint_id>/cancel",
    summary="Cancel a pending checkpoint (requester only)",
    tags=["checkpoints"],
)
def cancel_checkpoint(checkpoint_id: Annotated[str, Path()], body: CancelRequest | None = None) -> Response[str]:
    who = caller(router)
    reason = (body or CancelRequest()).reason
    cp = api_service().cancel(_checkpoint_id(checkpoint_id), actor=who, reason=reason, only_by=who)
    return json_response(200, cp)


@router.get("/v1/checkpoints/<checkpoint_id>/events", summary="Read a checkpoint's audit trail", tags=["checkpoints"])
def get_events(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
    events = api_service().events(_checkpoint_id(checkpoint_id))
    body = json.dumps({"items": [e.model_dump(mode="json") for e in events]})
    return Response(status_code=200, content_type="application/json", body=body)


@router.post(
    "/v1/checkpoints/<checkpoint_id>/outcome", summary="Report how the action went (once)", tags=["checkpoints"]
)
def report_outcome(checkpoint_id: Annotated[str, Path()], body: OutcomeRequest) -> Response[str]:
    cp = api_service().report_outcome(_checkpoint_id(checkpoint_id), body, caller=caller(router))
    return json_response(200, cp)


def build() -> APIGatewayRestResolver:
    """The intake function's app: checkpoint routes, idempotency errors, and the OpenAPI document."""
    app = build_app(router)

    @app.exception_handler(IdempotencyValidationError)
    def _reused(_: IdempotencyValidationError) -> Response[str]:
        return problem(409, "Conflict", "this Idempotency-Key was already used with a different request body")

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response[str]:
        return problem(409, "Conflict", "a request with this Idempotency-Key is still in progress; retry shortly")

    @app.get("/v1/openapi.json", include_in_schema=False)
    def _openapi() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body=openapi_json())

    return app


@cache
def openapi_json() -> str:
    """The whole API's schema, intake and scoring routes alike."""
    return build_app(router, scoring.router).get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Ask whether an automated action may run: auto, soft (veto window) or hard (approval) gates.",
    )

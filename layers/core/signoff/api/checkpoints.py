"""POST/GET /v1/checkpoints*, the audit trail, outcomes, and the OpenAPI document of the whole API.

The routes are built around a provider of the intake service (`routes(intake)`), which the
function's handler takes from the composition root: nothing here builds or caches a dependency."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel, ConfigDict, StringConstraints

from signoff.api import scoring
from signoff.api.http import build_app, caller, json_response
from signoff.domain.errors import NotFound
from signoff.domain.models import CHECKPOINT_ID_RE, CheckpointPage, CheckpointRequest, OutcomeRequest, Status
from signoff.domain.policy import GateKind
from signoff.observability import logger, metrics
from signoff.usecases.intake import CheckpointService

API_TITLE = "Signoff"
API_VERSION = "1.0.0"


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] = "cancelled by the requester"


def _checkpoint_id(value: str) -> str:
    if not CHECKPOINT_ID_RE.match(value):
        raise NotFound(value)
    return value


def routes(intake: Callable[[], CheckpointService]) -> Router:
    """The checkpoint routes, on a provider of the intake service (called when a route needs it)."""
    router = Router()  # type: ignore[no-untyped-call]

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
        cp = intake().create(body, caller=caller(router), idempotency_key=idempotency_key)
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
        page: CheckpointPage = intake().list_by_status(Status(status.upper()), limit=limit, next_token=next_token)
        return json_response(200, page)

    @router.get("/v1/checkpoints/<checkpoint_id>", summary="Read a checkpoint", tags=["checkpoints"])
    def get_checkpoint(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
        return json_response(200, intake().get(_checkpoint_id(checkpoint_id)))

    @router.post(
        "/v1/checkpoints/<checkpoint_id>/cancel",
        summary="Cancel a pending checkpoint (requester only)",
        tags=["checkpoints"],
    )
    def cancel_checkpoint(checkpoint_id: Annotated[str, Path()], body: CancelRequest | None = None) -> Response[str]:
        who = caller(router)
        reason = (body or CancelRequest()).reason
        cp = intake().cancel(_checkpoint_id(checkpoint_id), actor=who, reason=reason, only_by=who)
        return json_response(200, cp)

    @router.get(
        "/v1/checkpoints/<checkpoint_id>/events", summary="Read a checkpoint's audit trail", tags=["checkpoints"]
    )
    def get_events(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
        events = intake().events(_checkpoint_id(checkpoint_id))
        body = json.dumps({"items": [e.model_dump(mode="json") for e in events]})
        return Response(status_code=200, content_type="application/json", body=body)

    @router.post(
        "/v1/checkpoints/<checkpoint_id>/outcome", summary="Report how the action went (once)", tags=["checkpoints"]
    )
    def report_outcome(checkpoint_id: Annotated[str, Path()], body: OutcomeRequest) -> Response[str]:
        cp = intake().report_outcome(_checkpoint_id(checkpoint_id), body, caller=caller(router))
        return json_response(200, cp)

    return router


def build(intake: Callable[[], CheckpointService]) -> APIGatewayRestResolver:
    """The intake function's app: checkpoint routes and the OpenAPI document."""
    app = build_app(routes(intake))

    @app.get("/v1/openapi.json", include_in_schema=False)
    def _openapi() -> Response[str]:
        return Response(status_code=200, content_type="application/json", body=openapi_json())

    return app


@cache
def openapi_json() -> str:
    """The whole API's schema, intake and scoring routes alike."""
    # The document needs only the routes' shapes: no service is ever asked for.
    return build_app(routes(_unused), scoring.routes(_unused)).get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Ask whether an automated action may run: auto, soft (veto window) or hard (approval) gates.",
    )


def _unused() -> Any:
    raise AssertionError("the OpenAPI document's app serves no request")

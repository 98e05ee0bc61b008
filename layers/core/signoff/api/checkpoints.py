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
from signoff.api.http import BODY_PROBLEMS, build_app, caller, json_response, responses
from signoff.audit.events import AuditEvent
from signoff.domain.errors import NotFound
from signoff.domain.models import (
    CHECKPOINT_ID_RE,
    TEXT_PATTERN,
    Checkpoint,
    CheckpointPage,
    CheckpointRequest,
    OutcomeRequest,
    Status,
)
from signoff.domain.policy import GateKind
from signoff.observability import logger, metrics
from signoff.usecases.intake import CheckpointService

API_TITLE = "Signoff"
API_VERSION = "1.0.0"


class CancelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=TEXT_PATTERN)] = (
        "cancelled by the requester"
    )


class EventList(BaseModel):
    """GET /v1/checkpoints/{id}/events."""

    items: list[AuditEvent]


_CHECKPOINT = ("The checkpoint", Checkpoint)


def _checkpoint_id(value: str) -> str:
    if not CHECKPOINT_ID_RE.match(value):
        raise NotFound(value)
    return value


def routes(intake: Callable[[], CheckpointService]) -> Router:
    """The checkpoint routes, on a provider of the intake service (called when a route needs it)."""
    router = Router()  # type: ignore[no-untyped-call]

    @router.post(
        "/v1/checkpoints",
        summary="Ask whether an action may run",
        tags=["checkpoints"],
        responses=responses(
            {
                200: ("Decided at once (auto gate): APPROVED", Checkpoint),
                202: ("Waiting for people (soft or hard gate): PENDING", Checkpoint),
            },
            *BODY_PROBLEMS,
            409,
            503,
            location=True,
        ),
    )
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

    @router.get(
        "/v1/checkpoints",
        summary="List checkpoints by status",
        tags=["checkpoints"],
        responses=responses({200: ("A page of checkpoints", CheckpointPage)}, *BODY_PROBLEMS),
    )
    def list_checkpoints(
        status: Annotated[str, Query(pattern="^(pending|approved|denied|expired|cancelled)$")] = "pending",
        limit: Annotated[int, Query(ge=1, le=100)] = 50,
        next_token: Annotated[
            str | None,
            Query(
                max_length=2048,
                description="Opaque: the next_token of the previous page, as returned; any other value is a 422",
            ),
        ] = None,
    ) -> Response[str]:
        page: CheckpointPage = intake().list_by_status(Status(status.upper()), limit=limit, next_token=next_token)
        return json_response(200, page)

    @router.get(
        "/v1/checkpoints/<checkpoint_id>",
        summary="Read a checkpoint",
        tags=["checkpoints"],
        responses=responses({200: _CHECKPOINT}, *BODY_PROBLEMS, 404),
    )
    def get_checkpoint(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
        return json_response(200, intake().get(_checkpoint_id(checkpoint_id)))

    @router.post(
        "/v1/checkpoints/<checkpoint_id>/cancel",
        summary="Cancel a pending checkpoint (requester only)",
        tags=["checkpoints"],
        responses=responses({200: _CHECKPOINT}, *BODY_PROBLEMS, 403, 404, 409, 503),
    )
    def cancel_checkpoint(checkpoint_id: Annotated[str, Path()], body: CancelRequest | None = None) -> Response[str]:
        who = caller(router)
        reason = (body or CancelRequest()).reason
        cp = intake().cancel(_checkpoint_id(checkpoint_id), actor=who, reason=reason, only_by=who)
        return json_response(200, cp)

    @router.get(
        "/v1/checkpoints/<checkpoint_id>/events",
        summary="Read a checkpoint's audit trail",
        tags=["checkpoints"],
        responses=responses({200: ("The hash-chained audit events, oldest first", EventList)}, *BODY_PROBLEMS, 404),
    )
    def get_events(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
        events = intake().events(_checkpoint_id(checkpoint_id))
        return json_response(200, EventList(items=events))

    @router.post(
        "/v1/checkpoints/<checkpoint_id>/outcome",
        summary="Report how the action went (once)",
        tags=["checkpoints"],
        responses=responses({200: _CHECKPOINT}, *BODY_PROBLEMS, 404, 409),
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
        environments = tuple(intake().policy.policy.environments)
        return Response(status_code=200, content_type="application/json", body=openapi_json(environments))

    return app


@cache
def openapi_json(environments: tuple[str, ...] | None = None) -> str:
    """The whole API's schema, intake and scoring routes alike. `environments`: the policy's, so
    the document names the only values `environment` may take (the policy decides which exist)."""
    # The document needs only the routes' shapes (and the policy's environments): no service is asked for.
    document = json.loads(
        build_app(routes(_unused), scoring.routes(_unused)).get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description="Ask whether an automated action may run: auto, soft (veto window) or hard (approval) gates.",
        )
    )
    schemas = document.get("components", {}).get("schemas", {})
    # Powertools documents a 422 body it never sends here (ours are problem details).
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    if environments:
        for name, schema in schemas.items():
            if name.startswith("CheckpointRequest") and "environment" in schema.get("properties", {}):
                schema["properties"]["environment"] = {
                    "type": "string",
                    "enum": list(environments),
                    "description": "One of the policy's environments",
                    "title": "Environment",
                }
    return json.dumps(document)


def _unused() -> Any:
    raise AssertionError("the OpenAPI document's app serves no request")

"""The HTTP API: Powertools resolvers with request validation, problem details for every error,
and OpenAPI. The intake and scoring functions each serve their routes from here."""

from __future__ import annotations

import json
from functools import cache
from typing import Annotated, Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff.errors import Conflict, InvalidRequest, NotFound
from signoff.models import (
    CHECKPOINT_ID_RE,
    Assessment,
    CheckpointPage,
    CheckpointRequest,
    OutcomeRequest,
    Status,
)
from signoff.observability import logger
from signoff.service import score_request
from signoff.wiring import api_service, policy

MAX_BODY_BYTES = 256 * 1024
PROBLEM = "application/problem+json"
API_TITLE = "Signoff"
API_VERSION = "1.0.0"

checkpoints = Router()  # type: ignore[no-untyped-call]
scoring = Router()  # type: ignore[no-untyped-call]


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> Response[str]:
    """RFC 9457 problem details."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(status_code=status, content_type=PROBLEM, body=json.dumps(body))


def _caller(router: Router) -> str:
    """The authenticated principal: API Gateway's IAM identity (or the local stack's stand-in)."""
    event = cast(APIGatewayProxyEvent, router.current_event)
    identity = event.request_context.identity
    return identity.user_arn or identity.caller or "anonymous"


def _json(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=model.model_dump_json(), headers=headers)


def _checkpoint_id(value: str) -> str:
    if not CHECKPOINT_ID_RE.match(value):
        raise NotFound(value)
    return value


@checkpoints.post("/v1/checkpoints", summary="Ask whether an action may run", tags=["checkpoints"])
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
    service.bind_lambda_context(checkpoints.lambda_context)
    cp = service.create(body, caller=_caller(checkpoints), idempotency_key=idempotency_key)
    logger.append_keys(checkpoint_id=cp.id)
    logger.info("checkpoint", extra={"status": cp.status.value, "gate": cp.assessment.gate.kind.value})
    # Auto gates are decided: 200. Soft and hard gates wait for people: 202, poll or get a webhook.
    status = 200 if cp.status is not Status.PENDING else 202
    return _json(status, cp, {"Location": f"/v1/checkpoints/{cp.id}"})


@checkpoints.get("/v1/checkpoints", summary="List checkpoints by status", tags=["checkpoints"])
def list_checkpoints(
    status: Annotated[str, Query(pattern="^(pending|approved|denied|expired|cancelled)$")] = "pending",
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[str]:
    page: CheckpointPage = api_service().list_by_status(Status(status.upper()), limit=limit, next_token=next_token)
    return _json(200, page)


@checkpoints.get("/v1/checkpoints/<checkpoint_id>", summary="Read a checkpoint", tags=["checkpoints"])
def get_checkpoint(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
    return _json(200, api_service().get(_checkpoint_id(checkpoint_id)))


@checkpoints.get(
    "/v1/checkpoints/<checkpoint_id>/events", summary="Read a checkpoint's audit trail", tags=["checkpoints"]
)
def get_events(checkpoint_id: Annotated[str, Path()]) -> Response[str]:
    events = api_service().events(_checkpoint_id(checkpoint_id))
    body = json.dumps({"items": [e.model_dump(mode="json") for e in events]})
    return Response(status_code=200, content_type="application/json", body=body)


@checkpoints.post(
    "/v1/checkpoints/<checkpoint_id>/outcome", summary="Report how the action went (once)", tags=["checkpoints"]
)
def report_outcome(checkpoint_id: Annotated[str, Path()], body: OutcomeRequest) -> Response[str]:
    cp = api_service().report_outcome(_checkpoint_id(checkpoint_id), body, caller=_caller(checkpoints))
    return _json(200, cp)


@scoring.post("/v1/score", summary="Dry run: score and gate a request without storing anything", tags=["scoring"])
def score(body: CheckpointRequest) -> Response[str]:
    assessment: Assessment = score_request(body, policy())
    return _json(200, assessment)


def _field(loc: tuple[Any, ...]) -> str:
    parts = (
        [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path", "header") else [str(p) for p in loc]
    )
    prefix = {"query": "query ", "path": "path ", "header": "header "}.get(str(loc[0]) if loc else "", "")
    return prefix + ".".join(parts) if parts else prefix.strip() or "body"


def _install_error_handlers(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[str]:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem(400, "Malformed JSON", "the request body is not valid JSON")
        named = [{"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))} for e in errors]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in named)
        return problem(422, "Invalid request", detail, named)

    @app.exception_handler(InvalidRequest)
    def _domain_invalid(exc: InvalidRequest) -> Response[str]:
        return problem(
            422, "Invalid request", f"{exc.field}: {exc.message}", [{"field": exc.field, "message": exc.message}]
        )

    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response[str]:
        return problem(404, "Not found", str(exc))

    @app.exception_handler(IdempotencyValidationError)
    def _reused(_: IdempotencyValidationError) -> Response[str]:
        return problem(409, "Conflict", "this Idempotency-Key was already used with a different request body")

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _in_progress(_: IdempotencyAlreadyInProgressError) -> Response[str]:
        return problem(409, "Conflict", "a request with this Idempotency-Key is still in progress; retry shortly")

    @app.exception_handler(Conflict)
    def _conflict(exc: Conflict) -> Response[str]:
        return problem(409, "Conflict", str(exc))

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return problem(404, "Not found", f"no route {app.current_event.http_method} {app.current_event.path}")


def build_app(*routers: Router, openapi: bool = False) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)
    _install_error_handlers(app)
    if openapi:

        @app.get("/v1/openapi.json", include_in_schema=False)
        def _openapi() -> Response[str]:
            return Response(status_code=200, content_type="application/json", body=openapi_json())

    return app


@cache
def openapi_json() -> str:
    """The whole API's schema, intake and scoring routes alike."""
    return build_app(checkpoints, scoring).get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description="Ask whether an automated action may run: auto, soft (veto window) or hard (approval) gates.",
    )


def _entry_problem(status: int, title: str, detail: str) -> dict[str, Any]:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def handle(app: APIGatewayRestResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point shared by the API functions: checks that need no parsing come first."""
    body = event.get("body") or ""
    size = len(body.encode() if isinstance(body, str) else body)
    if event.get("isBase64Encoded"):
        size = size * 3 // 4
    if size > MAX_BODY_BYTES:
        return _entry_problem(413, "Payload too large", f"the body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or "application/json").split(";")[0].strip().lower()
    if body and not (content_type == "application/json" or content_type.endswith("+json")):
        # Otherwise a form-encoded body would be parsed as a form and the errors would make no sense.
        detail = f"send the body as JSON with Content-Type: application/json (got {content_type})"
        return _entry_problem(415, "Unsupported media type", detail)
    return app.resolve(event, context)

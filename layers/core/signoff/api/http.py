"""HTTP plumbing shared by the API functions: Powertools resolvers with request validation,
RFC 9457 problem details for every error, and the entry point that checks size and media type."""

from __future__ import annotations

import json
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound, WorkflowUnavailable

MAX_BODY_BYTES = 256 * 1024
PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> Response[str]:
    """RFC 9457 problem details."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return Response(status_code=status, content_type=PROBLEM, body=json.dumps(body))


def caller(router: Router | APIGatewayRestResolver) -> str:
    """The authenticated principal: API Gateway's IAM identity (or the local stack's stand-in)."""
    event = cast(APIGatewayProxyEvent, router.current_event)
    identity = event.request_context.identity
    return identity.user_arn or identity.caller or "anonymous"


def json_response(status: int, model: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(status_code=status, content_type="application/json", body=model.model_dump_json(), headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    where = str(loc[0]) if loc else ""
    parts = [str(p) for p in (loc[1:] if where in ("body", "query", "path", "header") else loc)]
    prefix = {"query": "query ", "path": "path ", "header": "header "}.get(where, "")
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
        errors = [{"field": exc.field, "message": exc.message}]
        return problem(422, "Invalid request", f"{exc.field}: {exc.message}", errors)

    @app.exception_handler(NotFound)
    def _not_found(exc: NotFound) -> Response[str]:
        return problem(404, "Not found", str(exc))

    @app.exception_handler(Forbidden)
    def _forbidden(exc: Forbidden) -> Response[str]:
        return problem(403, "Forbidden", str(exc))

    @app.exception_handler(WorkflowUnavailable)
    def _unavailable(exc: WorkflowUnavailable) -> Response[str]:
        return problem(503, "Service unavailable", str(exc))

    @app.exception_handler(Conflict)
    def _conflict(exc: Conflict) -> Response[str]:
        return problem(409, "Conflict", str(exc))

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return problem(404, "Not found", f"no route {app.current_event.http_method} {app.current_event.path}")


def build_app(*routers: Router) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver(enable_validation=True)
    for router in routers:
        app.include_router(router)
    _install_error_handlers(app)
    return app


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

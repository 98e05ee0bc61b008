"""HTTP plumbing shared by the API functions: Powertools resolvers with request validation,
RFC 9457 problem details for every error, and the entry point that checks size and media type."""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from signoff.domain.errors import Conflict, Forbidden, InvalidRequest, NotFound, WorkflowUnavailable

MAX_BODY_BYTES = 256 * 1024
PROBLEM = "application/problem+json"


class ProblemField(BaseModel):
    field: str = Field(description="Where: a dotted path into the body (signals.model_confidence), or 'query x'")
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error this API returns."""

    type: str = Field(description="Always about:blank: the status says what kind of problem it is")
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = Field(default=None, description="Each wrong field, when there are any")


_PROBLEMS = {
    400: "Malformed body: not JSON, not UTF-8, nested deeper than 32 levels, a number longer than 100 characters",
    403: "Not allowed for this caller",
    404: "No such checkpoint",
    409: "Conflict: the Idempotency-Key was used with another body, or the outcome was already reported",
    413: "Body over 256 KiB",
    415: "Not application/json (UTF-8)",
    422: "Invalid field (each named in errors[].field): type, range, unknown field, duplicate key, control "
    "character; for `environment`, a name the policy does not define",
    503: "The approval workflow could not be started; nothing was stored, retry",
}
BODY_PROBLEMS = (400, 413, 415, 422)


def responses(
    success: dict[int, tuple[str, type[BaseModel]]], *problems: int, location: bool = False
) -> dict[int, OpenAPIResponse]:
    """The OpenAPI responses of a route: its successes (with their models) and problems."""
    documented: dict[int, OpenAPIResponse] = {}
    for status, (description, model) in success.items():
        documented[status] = {"description": description, "content": {"application/json": {"model": model}}}
        if location:
            documented[status]["headers"] = {
                "Location": {"description": "The checkpoint's URL path", "schema": {"type": "string"}}
            }
    for status in sorted(set(problems)):
        documented[status] = {"description": _PROBLEMS[status], "content": {PROBLEM: {"model": Problem}}}
    return documented


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


def _entry_problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return {
        "statusCode": status,
        "headers": {"Content-Type": PROBLEM, **(headers or {})},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def handle(app: APIGatewayRestResolver, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Entry point shared by the API functions. Everything a client sends is checked here before
    Powertools parses anything (method, size, media type, encoding, then the JSON itself, strictly),
    and every refusal is a 4xx problem: Powertools then sees only a canonical JSON body."""
    try:
        return app.resolve(_admitted(app, event), context)
    except _Refused as refused:
        return _entry_problem(refused.status, refused.title, refused.detail, refused.errors, refused.headers)


class _Refused(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.errors, self.headers = status, title, detail, errors, headers


def _admitted(app: APIGatewayRestResolver, event: dict[str, Any]) -> dict[str, Any]:
    """`event` as the app may see it, or _Refused."""
    _check_method(app, event)
    body = event.get("body") or ""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    size = len(raw) * 3 // 4 if event.get("isBase64Encoded") else len(raw)
    if size > MAX_BODY_BYTES:
        raise _Refused(413, "Payload too large", f"the body is {size} bytes; the limit is {MAX_BODY_BYTES}")
    if not raw:
        return event
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items() if isinstance(v, str)}
    _check_media_type(headers.get("content-type") or "application/json")
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except ValueError:
            raise _Refused(400, "Malformed body", "the body is marked base64 but is not valid base64") from None
    document = strict_json(raw)
    # Powertools parses again: hand it the canonical form, which it cannot choke on.
    canonical = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    return {
        **event,
        "body": json.dumps(document),
        "isBase64Encoded": False,
        "headers": {**canonical, "Content-Type": "application/json"},
        "multiValueHeaders": {**multi, "Content-Type": ["application/json"]},
    }


def _check_method(app: APIGatewayRestResolver, event: dict[str, Any]) -> None:
    """A path the API serves, asked with a method it does not serve: 405 with Allow (RFC 9110).
    An unknown path stays a 404, whatever the method."""
    method = str(event.get("httpMethod") or "").upper()
    path = str(event.get("path") or "")
    # Powertools keeps its compiled routes in these lists; there is no public accessor.
    routes = app._static_routes + app._dynamic_routes
    allowed = sorted({route.method for route in routes if route.rule.match(path)})
    if allowed and method not in allowed:
        detail = f"{path} does not support {method[:20]}; it supports {', '.join(allowed)}"
        raise _Refused(405, "Method not allowed", detail, headers={"Allow": ", ".join(allowed)})


def _check_media_type(content_type: str) -> None:
    media_type, _, parameters = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json":
        # Anything else would be parsed as a form, or refused in Powertools' own shape.
        detail = f"send the body as JSON with Content-Type: application/json (got {media_type[:100]})"
        raise _Refused(415, "Unsupported media type", detail)
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            charset = value.strip()[:40]
            raise _Refused(415, "Unsupported media type", f"JSON bodies are UTF-8; charset={charset} is not supported")


# -- strict JSON ---------------------------------------------------------------------------------

MAX_DEPTH = 32
"""Arrays and objects nested deeper are refused: a request is 4 levels deep, and the standard
parser recurses once per level (5,000 levels exhaust the interpreter's stack)."""
MAX_NUMBER_CHARS = 100
"""Longer number literals are refused: no field needs more than 17 significant digits, and
converting a long digit string is quadratic (Python refuses past 4,300 digits, with an error)."""
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')
# Cc other than tab, LF and CR, and lone surrogates (JSON can escape one; it cannot be encoded).
_FORBIDDEN_CHARACTER = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class _Duplicates(dict[str, Any]):
    """An object in which some key appeared more than once (found by the walk, which knows the path)."""

    duplicates: list[str]


def strict_json(raw: bytes) -> Any:
    """`raw` parsed as strict JSON (RFC 8259, plus limits), or _Refused naming the reason and,
    where there is one, the field: UTF-8 only; at most MAX_DEPTH levels; number literals of at most
    MAX_NUMBER_CHARS characters, finite; no NaN/Infinity; no duplicate keys (which value would
    count is undefined, and a later `"action"` must not silently replace the one a reviewer read);
    no control characters or lone surrogates in any string."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        detail = f"the body is not valid UTF-8: byte {exc.start} (0x{raw[exc.start]:02x}) cannot be decoded"
        raise _Refused(400, "Malformed body", detail) from None
    _check_depth(text)
    try:
        document = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise _Refused(400, "Malformed JSON", f"the request body is not valid JSON: {exc}") from None
    problems = _walk(document)
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise _Refused(422, "Invalid request", detail, problems)
    return document


def _check_depth(text: str) -> None:
    # Strings are skipped whole, so a bracket inside one does not count. A string left open makes
    # the parser stop there, so what follows it cannot deepen the parse even if it is miscounted.
    depth = 0
    for match in _STRUCTURE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(
                    400, "Malformed JSON", f"the body nests arrays or objects deeper than {MAX_DEPTH} levels"
                )
        elif token in "]}":
            depth -= 1


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    duplicates = []
    for key, value in pairs:
        if key in found:
            duplicates.append(key)
        found[key] = value
    if not duplicates:
        return found
    marked = _Duplicates(found)
    marked.duplicates = duplicates
    return marked


def _int(literal: str) -> int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(400, "Malformed JSON", f"a number in the body is longer than {MAX_NUMBER_CHARS} characters")
    return int(literal)


def _float(literal: str) -> float | int:
    if len(literal) > MAX_NUMBER_CHARS:
        raise _Refused(400, "Malformed JSON", f"a number in the body is longer than {MAX_NUMBER_CHARS} characters")
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(400, "Malformed JSON", f"the number {literal} is out of range")
    # JSON has one number type: 2.0 and 2e0 are the integer 2 (as JSON Schema's "integer" says),
    # so a count may be written either way; a float field takes an int as it is.
    return int(value) if value.is_integer() else value


def _constant(literal: str) -> Any:
    raise _Refused(400, "Malformed JSON", f"{literal} is not JSON")


def _walk(document: Any, limit: int = 20) -> list[dict[str, str]]:
    """Duplicate keys and forbidden characters, each named by its path (as the 422s name fields)."""
    problems: list[dict[str, str]] = []
    stack: list[tuple[tuple[str, ...], Any]] = [((), document)]
    while stack and len(problems) < limit:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key in getattr(node, "duplicates", ()):
                problems.append({"field": _dotted((*path, key)), "message": "duplicate key: the object names it twice"})
            for key, value in reversed(node.items()):
                if _FORBIDDEN_CHARACTER.search(key):
                    problems.append({"field": _dotted(path), "message": f"a key holds {_character(key)}"})
                stack.append(((*path, key), value))
        elif isinstance(node, list):
            stack.extend(((*path, str(i)), item) for i, item in reversed(list(enumerate(node))))
        elif isinstance(node, str) and _FORBIDDEN_CHARACTER.search(node):
            problems.append({"field": _dotted(path), "message": f"holds {_character(node)}"})
    return problems


def _character(text: str) -> str:
    found = _FORBIDDEN_CHARACTER.search(text)
    code = ord(found.group()) if found else 0
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not text"
    return f"a control character (U+{code:04X}); only tab, line feed and carriage return are allowed"


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(path) or "body"

"""A WSGI stand-in for API Gateway in front of the two API functions: each request becomes the REST
proxy event API Gateway would send (as the local stack builds it), the function's handler runs
in-process, and its proxy response becomes the HTTP response. Lets schemathesis call the real
handlers (edge checks, Powertools, problem details) with no socket."""

from __future__ import annotations

import base64
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from tests.helpers import CALLER_ARN, invoke

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
# The scoring function serves this path; the intake function serves every other one.
SCORING_PATHS = frozenset({"/v1/score"})


def proxy_event(environ: dict[str, Any]) -> dict[str, Any]:
    method = environ["REQUEST_METHOD"]
    # WSGI hands the path as latin-1 code points of its bytes; API Gateway hands it as UTF-8 text.
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace") or "/"
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body: str | None = raw.decode() if raw else None
        encoded = False
    except UnicodeDecodeError:  # as API Gateway does with a binary body
        body, encoded = base64.b64encode(raw).decode(), True
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "signoffapi",
            "stage": "v1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "httpMethod": method,
            "path": f"/v1{path}",
            "resourcePath": path,
            "identity": {"userArn": CALLER_ARN, "caller": "AIDAEXAMPLE", "sourceIp": "192.0.2.10"},
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI application: one proxy event per request, to the function that serves the path."""
    event = proxy_event(environ)
    function = "scoring" if event["path"] in SCORING_PATHS else "intake"
    try:
        response = invoke(function, event)
    except Exception:  # what API Gateway does when a function raises: a 502 (the fuzz run then fails)
        trace = traceback.format_exc()
        response = {"statusCode": 502, "headers": {"Content-Type": "text/plain"}, "body": trace}
    headers = dict(response.get("headers") or {})
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers.setdefault(name, values[-1])
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    status = int(response["statusCode"])
    start_response(f"{status} {_REASONS.get(status, 'Status')}", [(k, str(v)) for k, v in headers.items()])
    return [payload]


_REASONS = {
    200: "OK", 202: "Accepted", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    409: "Conflict", 413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
}  # fmt: skip

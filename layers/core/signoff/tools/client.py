"""A small client of the Signoff API for pipelines and scripts (and the `signoff request` command).

Requests are signed with SigV4 for `execute-api` (the API uses IAM auth) with botocore, which
boto3 already brings: no other dependency. Responses are plain dicts rather than models, so an
older client keeps working when the API adds fields.

    client = SignoffClient("https://abc123.execute-api.eu-west-1.amazonaws.com/live", sign=True)
    status, checkpoint = client.create(request, idempotency_key="release-2024-11-21")
    checkpoint = client.get(checkpoint["id"])
"""

from __future__ import annotations

import json
import re
import urllib.request
from http.client import HTTPException
from typing import TYPE_CHECKING, Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit

from signoff.adapters.http_out import is_loopback_host, no_redirect_opener
from signoff.domain.errors import SignoffError

if TYPE_CHECKING:
    from email.message import Message

USER_AGENT = "signoff-client/1"
SERVICE = "execute-api"
TIMEOUT_SECONDS = 30.0  # API Gateway gives up at 29 s
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
_MAX_DETAIL = 500


class Opener(Protocol):
    """What `urllib.request.OpenerDirector` offers and the client needs (tests inject fakes)."""

    def open(self, fullurl: urllib.request.Request, data: None = None, timeout: float = ...) -> Any: ...


class CredentialSource(Protocol):
    """What the client needs from a boto3 Session."""

    @property
    def region_name(self) -> str | None: ...

    def get_credentials(self) -> Any: ...


class SignoffClientError(SignoffError):
    """The API could not be used: base of the client's errors."""

    @property
    def transient(self) -> bool:
        """Worth retrying later (the same request may succeed): False unless a subclass knows better."""
        return False


class SignoffApiError(SignoffClientError):
    """The API answered with an error status; `problem` is its RFC 9457 problem details
    (API Gateway's own errors, e.g. a 403 for a bad signature, are turned into the same shape)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"HTTP {status} {self.title}: {self.detail}".rstrip(": "))

    @property
    def title(self) -> str:
        return str(self.problem.get("title") or "")

    @property
    def detail(self) -> str:
        return str(self.problem.get("detail") or "")

    @property
    def errors(self) -> list[dict[str, Any]]:
        """The fields that are wrong: [{"field": "signals.model_confidence", "message": ...}]."""
        errors = self.problem.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    @property
    def transient(self) -> bool:
        """Worth retrying later: throttled or a server-side failure."""
        return self.status == 429 or self.status >= 500


class SignoffUnreachable(SignoffClientError):
    """No HTTP answer at all: DNS, refused connection, TLS failure, timeout."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach {url}: {reason}")

    @property
    def transient(self) -> bool:
        return True


def is_loopback_url(url: str) -> bool:
    """True for a URL on this machine (127.0.0.0/8, localhost, [::1]): the local stack, which checks
    no signature."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # e.g. an unclosed [IPv6 literal
        return False
    return is_loopback_host(host)


class SignoffClient:
    """POST/GET the checkpoint routes of one Signoff API.

    `base_url` is the API's root (the ApiUrl stack output, or http://127.0.0.1:8080 locally).
    With `sign`, every request carries a SigV4 signature made with the credentials of `session`
    (a boto3 Session; by default the usual chain: environment, profile, role) for `region`
    (by default read from the execute-api host name, else the session's region)."""

    def __init__(
        self,
        base_url: str,
        sign: bool,
        region: str | None = None,
        session: CredentialSource | None = None,
        opener: Opener | None = None,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = _checked_base_url(base_url)
        # Following a redirect would send a signed request (and its session token) somewhere else.
        self._opener: Opener = opener or no_redirect_opener()
        self._timeout = timeout
        self._session: CredentialSource | None = None
        self._region = ""
        if sign:
            self._session = session or _default_session()
            self._region = region or _region_of(self.base_url) or self._session.region_name or ""
            if not self._region:
                raise SignoffClientError("cannot tell the API's region for SigV4: pass a region or set AWS_REGION")

    def create(self, request: dict[str, Any], idempotency_key: str) -> tuple[int, dict[str, Any]]:
        """POST /v1/checkpoints: (200, the decided checkpoint) for auto gates, (202, the pending
        one) otherwise. Retrying with the same key and body returns the same checkpoint."""
        return self._call("POST", "/v1/checkpoints", request, {"Idempotency-Key": idempotency_key})

    def get(self, checkpoint_id: str) -> dict[str, Any]:
        """GET /v1/checkpoints/{id}: status, assessment, votes, decision and conditions."""
        return self._call("GET", f"/v1/checkpoints/{quote(checkpoint_id, safe='')}")[1]

    def cancel(self, checkpoint_id: str, reason: str | None = None) -> dict[str, Any]:
        """POST /v1/checkpoints/{id}/cancel: withdraw a pending checkpoint (its requester only)."""
        body = {"reason": reason} if reason else {}
        return self._call("POST", f"/v1/checkpoints/{quote(checkpoint_id, safe='')}/cancel", body)[1]

    def outcome(
        self, checkpoint_id: str, outcome: str, details: str | None = None, reported_by: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/checkpoints/{id}/outcome: success, failure or rolled_back, once per approved action."""
        body: dict[str, Any] = {"outcome": outcome}
        if details is not None:
            body["details"] = details
        if reported_by is not None:
            body["reported_by"] = reported_by
        return self._call("POST", f"/v1/checkpoints/{quote(checkpoint_id, safe='')}/outcome", body)[1]

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, extra: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT, **(extra or {})}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self._session is not None:
            headers = self._signed(method, url, data, headers)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return response.status, _json_object(response.status, response.read())
        except HTTPError as exc:
            with exc:
                raise SignoffApiError(exc.code, _problem(exc.code, str(exc.reason), exc.headers, exc.read())) from None
        except (OSError, HTTPException) as exc:  # URLError, refused, reset, timed out
            reason = exc.reason if isinstance(exc, URLError) else exc
            raise SignoffUnreachable(url, str(reason) or type(reason).__name__) from exc

    def _signed(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        assert self._session is not None
        # Fetched per request: role and SSO credentials expire and botocore refreshes them.
        credentials = self._session.get_credentials()
        if credentials is None:
            raise SignoffClientError("no AWS credentials found to sign the request (or pass --no-sign)")
        aws_request = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(credentials, SERVICE, self._region).add_auth(aws_request)
        return {str(k): str(v) for k, v in aws_request.headers.items()}


def _checked_base_url(base_url: str) -> str:
    try:
        parts = urlsplit(base_url.strip())
        host = parts.hostname
    except ValueError:
        host = None
    if host is None or parts.scheme not in ("https", "http"):
        raise SignoffClientError(f"the API URL must look like https://host/stage (got {base_url!r})")
    if parts.scheme == "http" and not is_loopback_url(base_url):
        # A signed request carries the session token in a header: never over plain http.
        raise SignoffClientError(f"the API URL must be https:// (plain http only for the local stack): {base_url}")
    return base_url.strip().rstrip("/")


def _region_of(base_url: str) -> str | None:
    match = _EXECUTE_API_HOST.match(urlsplit(base_url).hostname or "")
    return match.group(1) if match else None


def _default_session() -> CredentialSource:
    import boto3

    session: CredentialSource = boto3.Session()
    return session


def _json_object(status: int, raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        problem = {"title": "Unexpected response", "status": status, "detail": "the body is not a JSON object"}
        raise SignoffApiError(status, problem)
    return value


def _problem(status: int, reason: str, headers: Message | None, raw: bytes) -> dict[str, Any]:
    """The problem details of an error response, whatever answered: the API's handlers send RFC 9457
    JSON, API Gateway itself {"message": ...}, a proxy perhaps HTML."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict) and ("title" in value or "detail" in value):
        return {"status": status, **value}
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return {"title": reason, "status": status, "detail": value["message"]}
    text = raw.decode("utf-8", "replace").strip()
    content_type = headers.get("Content-Type", "") if headers is not None else ""
    detail = text[:_MAX_DETAIL] if text and "html" not in content_type else ""
    return {"title": reason, "status": status, "detail": detail}

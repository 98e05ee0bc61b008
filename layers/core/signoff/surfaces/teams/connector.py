"""A small client of the Bot Connector REST API (v3), all Signoff needs from Teams:

- a bot token by client credentials from `{login}/{tenant}/oauth2/v2.0/token` (scope
  `https://api.botframework.com/.default`), cached until shortly before it expires;
- `POST {serviceUrl}/v3/conversations/{id}/activities` to post, `POST …/activities/{activityId}`
  to reply in a card's thread, `PUT …/activities/{activityId}` to update a card in place;
- `POST {serviceUrl}/v3/conversations` to open (or find) someone's 1:1 chat with the bot;
- `GET …/conversations/{id}/members/{userId}` for a member's email / UPN, without Graph.

The bot token is a bearer credential for the whole bot: it is sent only to service URLs on the
allow-list (the connector's hosts, plus any configured, e.g. the local fake), over https, and no
redirect is ever followed. 429 and 5xx answers (and dropped connections) are retried with
backoff, honouring Retry-After; a 401 drops the cached token and tries once more with a new one."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote, urlencode, urlsplit

from signoff.adapters.http_out import (
    backoff_delay,
    host_matches,
    is_loopback_host,
    no_redirect_opener,
    retry_after_seconds,
)
from signoff.domain.errors import SignoffError
from signoff.observability import logger

SCOPE = "https://api.botframework.com/.default"
DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
# The Bot Connector's own service hosts (public cloud). Patterns: "*.x" is any subdomain of x.
CONNECTOR_HOSTS = ("*.botframework.com", "smba.trafficmanager.net")
TOKEN_MARGIN_SECONDS = 300  # renew this long before the token expires
TIMEOUT_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 10.0
USER_AGENT = "signoff-teams/1"

Json = dict[str, Any]


@dataclass(frozen=True)
class BotCredentials:
    """The bot's Entra ID app registration (Secrets Manager JSON); repr hides the password."""

    app_id: str
    app_password: str = field(repr=False)
    tenant_id: str


class ConnectorError(SignoffError):
    """An answer other than success. `code` is the connector's error code (never its message,
    which may quote the request); `status` is None when no HTTP answer came back."""

    def __init__(self, operation: str, status: int | None, code: str) -> None:
        super().__init__(f"teams {operation}: {status or 'no answer'} {code}")
        self.operation = operation
        self.status = status
        self.code = code

    @property
    def unreachable(self) -> bool:
        """The conversation or member is not there for this bot (not installed, removed, unknown)."""
        return self.status in (403, 404)


class UntrustedServiceUrl(SignoffError):
    """A service URL the bot token must not be sent to."""


def trusted_service_url(url: str, hosts: Iterable[str]) -> bool:
    """https to an allowed host; plain http only to an allowed loopback host (the local fake)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return False
    if not host or not any(host_matches(host, pattern) for pattern in hosts):
        return False
    return parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(host))


@dataclass(frozen=True)
class _Answer:
    status: int | None
    body: Any
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def transient(self) -> bool:
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def code(self) -> str:
        body = self.body if isinstance(self.body, dict) else {}
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else error  # connector | OAuth shape
        return str(code or (f"HTTP {self.status}" if self.status else "connection failed"))


class BotConnector:
    """The REST client. `credentials` may be a function, read whenever a token is needed (so a
    rotated password is picked up); `trusted_hosts` adds service hosts to the connector's own."""

    def __init__(
        self,
        credentials: BotCredentials | Callable[[], BotCredentials],
        *,
        login_url: str = DEFAULT_LOGIN_URL,
        trusted_hosts: Iterable[str] = (),
        opener: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        attempts: int = 3,
        base_delay: float = 0.5,
        timeout: float = TIMEOUT_SECONDS,
    ) -> None:
        self._credentials = credentials
        self.login_url = login_url.rstrip("/")
        self.hosts = (*CONNECTOR_HOSTS, *(h.strip().lower() for h in trusted_hosts if h.strip()))
        # A redirect would carry the bot token (or the app password) to a host nobody vetted.
        self._opener = opener or no_redirect_opener()
        self._sleep = sleep
        self._clock = clock
        self._attempts = max(1, attempts)
        self._base_delay = base_delay
        self._timeout = timeout
        self._token: tuple[str, float] | None = None  # (token, renew at)
        self._lock = threading.Lock()

    @property
    def credentials(self) -> BotCredentials:
        return self._credentials() if callable(self._credentials) else self._credentials

    # -- the bot token -------------------------------------------------------------------------

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self._clock() < self._token[1]:
                return self._token[0]
            creds = self.credentials
            form = urlencode({
                "grant_type": "client_credentials", "client_id": creds.app_id,
                "client_secret": creds.app_password, "scope": SCOPE,
            }).encode()  # fmt: skip
            url = f"{self.login_url}/{quote(creds.tenant_id, safe='')}/oauth2/v2.0/token"
            answer = self._retried("token", lambda: self._send("POST", url, form, "application/x-www-form-urlencoded"))
            if not answer.ok:
                raise ConnectorError("token", answer.status, answer.code)  # e.g. invalid_client
            body = answer.body if isinstance(answer.body, dict) else {}
            token, lifetime = body.get("access_token"), body.get("expires_in")
            if not isinstance(token, str) or not token:
                raise ConnectorError("token", answer.status, "no access_token in the answer")
            seconds = float(lifetime) if isinstance(lifetime, int | float | str) and str(lifetime).isdigit() else 3600.0
            self._token = (token, self._clock() + max(0.0, seconds - TOKEN_MARGIN_SECONDS))
            return token

    def _forget_token(self) -> None:
        with self._lock:
            self._token = None

    # -- conversations ---------------------------------------------------------------------------

    def send(self, service_url: str, conversation_id: str, activity: Json) -> str:
        """Post an activity to a conversation; its activity id."""
        answer = self._call(
            "send", "POST", service_url, f"/v3/conversations/{_seg(conversation_id)}/activities", activity
        )
        return _id(answer, "send")

    def reply(self, service_url: str, conversation_id: str, activity_id: str, activity: Json) -> str:
        """Post an activity in reply to another (in a channel: in the card's thread)."""
        path = f"/v3/conversations/{_seg(conversation_id)}/activities/{_seg(activity_id)}"
        return _id(self._call("reply", "POST", service_url, path, {**activity, "replyToId": activity_id}), "reply")

    def update(self, service_url: str, conversation_id: str, activity_id: str, activity: Json) -> None:
        """Replace an activity in place (a card after a vote or the decision)."""
        path = f"/v3/conversations/{_seg(conversation_id)}/activities/{_seg(activity_id)}"
        self._call("update", "PUT", service_url, path, {**activity, "id": activity_id})

    def create_conversation(self, service_url: str, *, user_aad: str, tenant_id: str) -> str:
        """The 1:1 chat between the bot and a person (by Entra object id): created, or the
        existing one returned (Teams keeps one per user)."""
        creds = self.credentials
        body = {
            "isGroup": False,
            "bot": {"id": f"28:{creds.app_id}"},
            "members": [{"id": user_aad}],
            "tenantId": tenant_id,
            "channelData": {"tenant": {"id": tenant_id}},
        }
        return _id(
            self._call("create conversation", "POST", service_url, "/v3/conversations", body), "create conversation"
        )

    def member(self, service_url: str, conversation_id: str, user_id: str) -> Json | None:
        """A conversation member's profile (id, name, aadObjectId, email, userPrincipalName), or
        None when the connector does not know them there."""
        path = f"/v3/conversations/{_seg(conversation_id)}/members/{_seg(user_id)}"
        try:
            answer = self._call("member", "GET", service_url, path, None)
        except ConnectorError as exc:
            if exc.unreachable:
                return None
            raise
        return answer.body if isinstance(answer.body, dict) else None

    # -- transport -------------------------------------------------------------------------------

    def _call(self, operation: str, method: str, service_url: str, path: str, body: Json | None) -> _Answer:
        if not trusted_service_url(service_url, self.hosts):
            # The host only: the rest of a service URL is the connector's business, not the logs'.
            logger.warning("teams service url refused", extra={"host": urlsplit(service_url).hostname or "?"})
            raise UntrustedServiceUrl("the bot token is sent to the Bot Connector's own hosts only")
        url = service_url.rstrip("/") + path
        data = json.dumps(body).encode() if body is not None else None
        answer = self._retried(operation, lambda: self._send(method, url, data, "application/json", self.token()))
        if answer.status == 401:
            self._forget_token()  # revoked or rotated: one more try with a fresh token
            answer = self._retried(operation, lambda: self._send(method, url, data, "application/json", self.token()))
        if not answer.ok:
            raise ConnectorError(operation, answer.status, answer.code)
        return answer

    def _retried(self, operation: str, send: Callable[[], _Answer]) -> _Answer:
        for number in range(1, self._attempts + 1):
            answer = send()
            if answer.ok or not answer.transient or number == self._attempts:
                break
            logger.warning(
                "teams call retried", extra={"operation": operation, "status": answer.status, "attempt": number}
            )
            self._sleep(backoff_delay(number, answer.retry_after, base=self._base_delay, cap=MAX_RETRY_AFTER_SECONDS))
        if not answer.ok and answer.status != 401:
            logger.warning(
                "teams call failed", extra={"operation": operation, "status": answer.status, "code": answer.code}
            )
        return answer

    def _send(self, method: str, url: str, data: bytes | None, content_type: str, token: str | None = None) -> _Answer:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if data is not None:
            headers["Content-Type"] = content_type
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return _Answer(response.status, _json(response.read()))
        except HTTPError as exc:
            with exc:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                return _Answer(exc.code, _json(exc.read()), retry_after_seconds(retry_after, self._clock()))
        except (OSError, HTTPException) as exc:  # refused, reset, timed out
            logger.warning("teams connection failed", extra={"error": type(exc).__name__})
            return _Answer(None, None)


def _seg(value: str) -> str:
    """One path segment: conversation ids hold ':', '@' and ';'."""
    return quote(value, safe="")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _id(answer: _Answer, operation: str) -> str:
    body: Mapping[str, Any] = answer.body if isinstance(answer.body, dict) else {}
    found = body.get("id")
    if not isinstance(found, str) or not found:
        raise ConnectorError(operation, answer.status, "no id in the answer")
    return found

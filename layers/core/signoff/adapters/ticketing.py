"""Ticketing adapters: Jira Cloud REST v3 and the ServiceNow Table API, over urllib.

- Jira: `POST {site}/rest/api/3/issue` with `fields.project.key`, `summary`, `issuetype.name` and a
  `description` in Atlassian Document Format; answers `{"id", "key", "self"}`; browse at `/browse/KEY`.
- ServiceNow: `POST {instance}/api/now/table/incident` with `short_description`, `description`,
  `assignment_group`, `urgency` (1 high, 2 medium, 3 low); answers `{"result": {"number", "sys_id"}}`.

Both use basic auth from a Secrets Manager secret ({"user", "token"}), read per ticket (Powertools caches
it for 5 minutes). Requests never follow a redirect (the credentials are for this host only) and are
retried with jittered backoff on 429 and 5xx; a 4xx is final. Nothing from the answer body is logged:
it can quote the ticket."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from signoff.adapters.http_out import backoff_delay, is_loopback_host, no_redirect_opener, retry_after_seconds
from signoff.observability import logger
from signoff.ports import TicketDraft, TicketingError, TicketRef
from signoff.settings import SettingsError

ATTEMPTS = 3
TIMEOUT_SECONDS = 5.0
RETRY_CAP_SECONDS = 10.0
Credentials = tuple[str, str]  # (user or account email, API token or password)
_URGENCY = {"high": "1", "medium": "2", "normal": "3"}


def _base_url(url: str, *, allow_loopback: bool) -> str:
    parts = urlsplit(url)
    loopback = parts.hostname is not None and is_loopback_host(parts.hostname)
    if parts.scheme == "https" and parts.hostname or allow_loopback and loopback and parts.scheme == "http":
        return url.rstrip("/")
    raise SettingsError("the ticketing URL must be https:// (http:// only to the local fake)")


class _Client:
    system = ""

    def __init__(
        self,
        base_url: str,
        credentials: Callable[[], Credentials],
        *,
        allow_loopback: bool = False,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = _base_url(base_url, allow_loopback=allow_loopback)
        self._credentials = credentials
        self._sleep = sleep
        self._opener = no_redirect_opener()

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        user, token = self._credentials()
        auth = base64.b64encode(f"{user}:{token}".encode()).decode()
        data = json.dumps(body).encode()
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(
                self.base_url + path,
                data=data,
                method="POST",
                headers={
                    "Authorization": f"Basic {auth}",
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
            retry_after: float | None = None
            try:
                with self._opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                    answer = json.loads(response.read() or b"{}")
                    if not isinstance(answer, dict):
                        raise TicketingError(f"{self.system}: unexpected answer")
                    return answer
            except urllib.error.HTTPError as exc:
                status = exc.code
                if status != 429 and status < 500:
                    raise TicketingError(f"{self.system} refused the ticket (HTTP {status})") from None
                retry_after = retry_after_seconds(exc.headers.get("Retry-After"), time.time())
                detail = f"HTTP {status}"
            except (urllib.error.URLError, TimeoutError, OSError) as exc:
                detail = type(exc).__name__
            except json.JSONDecodeError:
                raise TicketingError(f"{self.system}: the answer is not JSON") from None
            logger.warning(
                "ticketing attempt failed", extra={"system": self.system, "attempt": attempt, "detail": detail}
            )
            if attempt < ATTEMPTS:
                self._sleep(backoff_delay(attempt, retry_after, base=0.5, cap=RETRY_CAP_SECONDS))
        raise TicketingError(f"{self.system} unreachable ({detail})")


def adf(paragraphs: list[str], link: str | None) -> dict[str, Any]:
    """Atlassian Document Format: one paragraph per line, then the thread as a link."""
    content: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [{"type": "text", "text": p[:4000]}]} for p in paragraphs if p
    ]
    if link:
        mark = {"type": "link", "attrs": {"href": link}}
        content.append({"type": "paragraph", "content": [{"type": "text", "text": "Slack thread", "marks": [mark]}]})
    return {"type": "doc", "version": 1, "content": content}


class JiraTicketing(_Client):
    system = "jira"

    def __init__(self, *args: Any, issue_type: str = "Task", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issue_type = issue_type

    def open(self, ticket: TicketDraft) -> TicketRef:
        fields = {
            "project": {"key": ticket.project},
            "summary": " ".join(ticket.summary.split())[:250],  # Jira: one line, at most 255
            "issuetype": {"name": self.issue_type},
            "description": adf(ticket.description, ticket.link),
            # Jira labels cannot hold spaces.
            "labels": sorted(
                {"".join(c if c.isalnum() or c in "-_:" else "_" for c in label) for label in ticket.labels}
            ),
        }
        answer = self._post("/rest/api/3/issue", {"fields": fields})
        key = answer.get("key")
        if not isinstance(key, str) or not key:
            raise TicketingError("jira: the answer names no issue key")
        return TicketRef(key=key, url=f"{self.base_url}/browse/{key}")


class ServiceNowTicketing(_Client):
    system = "servicenow"

    def open(self, ticket: TicketDraft) -> TicketRef:
        description = "\n".join(ticket.description + ([f"Slack thread: {ticket.link}"] if ticket.link else []))
        body = {
            "short_description": ticket.summary[:160],
            "description": description,
            "assignment_group": ticket.project,
            "urgency": _URGENCY.get(ticket.urgency, "3"),
            "correlation_id": ticket.reference,
        }
        result = self._post("/api/now/table/incident", body).get("result") or {}
        number, sys_id = result.get("number"), result.get("sys_id")
        if not isinstance(number, str) or not isinstance(sys_id, str):
            raise TicketingError("servicenow: the answer names no incident")
        return TicketRef(key=number, url=f"{self.base_url}/nav_to.do?uri=incident.do?sys_id={sys_id}")


def secret_credentials(secret_arn: str) -> Credentials:
    """{"user", "token"} from Secrets Manager, cached by Powertools for 5 minutes."""
    from aws_lambda_powertools.utilities import parameters

    secret = parameters.get_secret(secret_arn, transform="json", max_age=300)
    user = secret.get("user") if isinstance(secret, dict) else None
    token = secret.get("token") if isinstance(secret, dict) else None
    if not (isinstance(user, str) and user and isinstance(token, str) and token):
        raise SettingsError(f"secret {secret_arn} must be JSON with non-empty strings 'user' and 'token'")
    return user, token


def build_ticketing(system: str, url: str | None, secret_arn: str | None) -> JiraTicketing | ServiceNowTicketing:
    from signoff.domain.urls import loopback_allowed

    if not url or not secret_arn:
        raise SettingsError("TICKETING_URL and TICKETING_SECRET_ARN are required with TICKETING_SYSTEM")
    cls = JiraTicketing if system == "jira" else ServiceNowTicketing
    return cls(url, lambda: secret_credentials(secret_arn), allow_loopback=loopback_allowed())

"""The ticketing adapters against loopback servers speaking Jira Cloud's and ServiceNow's wire formats:
what they send (ADF, basic auth, fields), what they read back, and how they fail (4xx final, 5xx/429
retried, redirects never followed)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from local.fake_jira import TOKEN, USER, FakeJira
from signoff.adapters.ticketing import JiraTicketing, ServiceNowTicketing
from signoff.ports import TicketDraft, TicketingError
from signoff.settings import SettingsError

pytestmark = pytest.mark.integration

DRAFT = TicketDraft(
    project="IT",
    summary="[out_of_scope] what's for lunch in the cafeteria today?",
    description=["Request (redacted): what's for lunch", "Stopped because: no source covers it"],
    urgency="high",
    labels=["signoff-helpdesk", "area:general IT"],
    link="https://slack.com/archives/C01ITHELP/p1700000000000100",
    reference="hd_0000000000aaaaaaaaaaaaaaaa",
)


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira() as fake:
        yield fake


def test_jira_gets_an_issue_with_an_adf_description_and_the_key_is_linked(jira: FakeJira) -> None:
    ticketing = JiraTicketing(jira.url, lambda: (USER, TOKEN), allow_loopback=True, sleep=lambda _s: None)

    ref = ticketing.open(DRAFT)

    assert ref.key == "IT-1" and ref.url == f"{jira.url}/browse/IT-1"
    fields = jira.requests[0]["fields"]
    assert fields["project"] == {"key": "IT"} and fields["issuetype"] == {"name": "Task"}
    assert fields["description"]["type"] == "doc" and fields["description"]["version"] == 1
    texts = [c["content"][0]["text"] for c in fields["description"]["content"]]
    assert texts[0] == "Request (redacted): what's for lunch" and texts[-1] == "Slack thread"
    assert "area:general_IT" in fields["labels"]
    assert ticketing.open(DRAFT).key == "IT-2"


def test_jira_refusing_the_credentials_is_a_ticketing_error_not_retried(jira: FakeJira) -> None:
    ticketing = JiraTicketing(jira.url, lambda: (USER, "wrong"), allow_loopback=True, sleep=lambda _s: None)

    with pytest.raises(TicketingError, match="HTTP 401"):
        ticketing.open(DRAFT)
    assert jira.issues == {}


def test_plain_http_is_refused_unless_it_is_the_local_fake() -> None:
    with pytest.raises(SettingsError):
        JiraTicketing("http://jira.example.com", lambda: (USER, TOKEN))
    with pytest.raises(SettingsError):
        JiraTicketing("http://127.0.0.1:9", lambda: (USER, TOKEN))  # loopback not allowed here


class _Scripted(BaseHTTPRequestHandler):
    """ServiceNow's Table API: answers from a script of (status, body, headers), records requests."""

    script: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    seen: list[tuple[str, str, dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers.get("Authorization") or "", body))
        status, answer, headers = type(self).script.pop(0)
        data = json.dumps(answer).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def servicenow() -> Iterator[tuple[str, type[_Scripted]]]:
    handler = type("Handler", (_Scripted,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_servicenow_gets_an_incident_after_a_retried_503(servicenow: tuple[str, type[_Scripted]]) -> None:
    url, handler = servicenow
    handler.script += [
        (503, {"error": {"message": "busy"}}, {"Retry-After": "1"}),
        (201, {"result": {"number": "INC0010001", "sys_id": "abc123"}}, {}),
    ]
    slept: list[float] = []
    ticketing = ServiceNowTicketing(url, lambda: ("helpdesk.bot", "pw"), allow_loopback=True, sleep=slept.append)

    ref = ticketing.open(DRAFT)

    assert ref.key == "INC0010001" and ref.url.endswith("sys_id=abc123")
    assert len(slept) == 1 and slept[0] >= 1
    path, auth, body = handler.seen[-1]
    assert path == "/api/now/table/incident"
    assert auth == "Basic " + base64.b64encode(b"helpdesk.bot:pw").decode()
    assert body["urgency"] == "1" and body["assignment_group"] == "IT" and body["correlation_id"] == DRAFT.reference
    assert "Slack thread: https://slack.com/archives/" in body["description"]


def test_servicenow_redirects_are_not_followed(servicenow: tuple[str, type[_Scripted]]) -> None:
    url, handler = servicenow
    handler.script.append((302, {}, {"Location": "http://127.0.0.1:9/steal"}))
    ticketing = ServiceNowTicketing(url, lambda: ("u", "p"), allow_loopback=True, sleep=lambda _s: None)

    with pytest.raises(TicketingError, match="HTTP 302"):
        ticketing.open(DRAFT)
    assert len(handler.seen) == 1


def test_servicenow_that_never_answers_well_gives_up_after_three_attempts(
    servicenow: tuple[str, type[_Scripted]],
) -> None:
    url, handler = servicenow
    handler.script += [(500, {}, {})] * 3
    ticketing = ServiceNowTicketing(url, lambda: ("u", "p"), allow_loopback=True, sleep=lambda _s: None)

    with pytest.raises(TicketingError, match="unreachable"):
        ticketing.open(DRAFT)
    assert len(handler.seen) == 3

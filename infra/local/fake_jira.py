"""A fake Jira Cloud on 127.0.0.1 for the local stack and the tests: `POST /rest/api/3/issue` with basic
auth creates an issue (KEY-n per project) and answers as Jira does (201, `{"id", "key", "self"}`);
`GET /rest/api/3/issue/KEY` reads it back; `GET /browse/KEY` shows it. Wrong credentials get 401, a
body without project, summary, issue type or an ADF description gets 400 with Jira's error shape."""

from __future__ import annotations

import base64
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.loopback import LoopbackServer

USER = "helpdesk-bot@example.com"
TOKEN = "fake-jira-api-token"


class FakeJira(LoopbackServer):
    thread_name = "fake-jira"

    def __init__(self, *, user: str = USER, token: str = TOKEN, host: str = "127.0.0.1", port: int = 0) -> None:
        self.user, self.token = user, token
        self.issues: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, Any]] = []  # every POST body, as received
        self._ids = itertools.count(10001)
        self._numbers: dict[str, itertools.count[int]] = {}
        self._lock = threading.Lock()
        super().__init__(ThreadingHTTPServer((host, port), _handler(self)))

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return header == f"Basic {expected}"

    def create(self, body: Any) -> tuple[int, dict[str, Any]]:
        fields = body.get("fields") if isinstance(body, dict) else None
        errors: dict[str, str] = {}
        if not isinstance(fields, dict):
            return 400, {"errorMessages": ["fields is required"], "errors": {}}
        project = (fields.get("project") or {}).get("key")
        if not isinstance(project, str) or not project:
            errors["project"] = "project is required"
        if not isinstance(fields.get("summary"), str) or not fields["summary"].strip():
            errors["summary"] = "You must specify a summary of the issue."
        if not (fields.get("issuetype") or {}).get("name"):
            errors["issuetype"] = "issue type is required"
        description = fields.get("description")
        if description is not None and (not isinstance(description, dict) or description.get("type") != "doc"):
            errors["description"] = "Operation value must be an Atlassian Document"
        if errors:
            return 400, {"errorMessages": [], "errors": errors}
        with self._lock:
            number = next(self._numbers.setdefault(str(project), itertools.count(1)))
            key, issue_id = f"{project}-{number}", str(next(self._ids))
            self.issues[key] = {"id": issue_id, "key": key, "fields": fields}
        return 201, {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/3/issue/{issue_id}"}


def _handler(fake: FakeJira) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.issues
            pass

        def do_POST(self) -> None:
            if self.path != "/rest/api/3/issue":
                self._answer(404, {"errorMessages": ["not found"]})
                return
            if not fake.authorized(self.headers.get("Authorization")):
                self._answer(401, {"errorMessages": ["Unauthorized"]})
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except json.JSONDecodeError:
                self._answer(400, {"errorMessages": ["Unexpected character in the body"]})
                return
            fake.requests.append(body)
            self._answer(*fake.create(body))

        def do_GET(self) -> None:
            key = self.path.rsplit("/", 1)[-1]
            issue = fake.issues.get(key) or next((i for i in fake.issues.values() if i["id"] == key), None)
            if issue is None or not self.path.startswith(("/rest/api/3/issue/", "/browse/")):
                self._answer(404, {"errorMessages": ["Issue does not exist"]})
                return
            self._answer(200, issue)

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler

"""The local API Gateway: HTTP on 127.0.0.1 turned into REST API proxy events for the very same
handlers, and their proxy responses turned back into HTTP."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from local.stack import LocalStack, Route
from local.template import ACCOUNT, REGION

log = logging.getLogger("signoff.local")

STAGE = "live"
# API Gateway checks SigV4 and hands the handler the caller's IAM identity; locally nothing is
# verified and every call comes from this principal (or the X-Signoff-Local-Caller header's).
LOCAL_CALLER = f"arn:aws:iam::{ACCOUNT}:user/local-developer"
CALLER_HEADER = "x-signoff-local-caller"
MAX_BODY = 10 * 1024 * 1024  # API Gateway's own payload limit


def proxy_event(
    route: Route, params: dict[str, str], method: str, url: str, headers: dict[str, str], body: bytes
) -> dict[str, Any]:
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text: str | None = body.decode() if body else None
        encoded = False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    caller = headers.get(CALLER_HEADER) or LOCAL_CALLER
    return {
        "resource": route.template,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": params or None,
        "stageVariables": None,
        "body": text,
        "isBase64Encoded": encoded,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "local",
            "stage": STAGE,
            "resourcePath": route.template,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "sourceIp": "127.0.0.1",
                "userAgent": headers.get("user-agent"),
                "userArn": caller if route.authorization == "AWS_IAM" else None,
                "caller": caller if route.authorization == "AWS_IAM" else None,
                "accessKey": None,
                "user": None,
            },
        },
    }


class LocalHttpServer(ThreadingHTTPServer):
    """One thread per connection, and a listen backlog that holds a burst: the standard library's
    default of 5 made the kernel drop or reset connections whenever more than five clients
    connected while the handlers kept the accepting thread waiting for the interpreter."""

    request_queue_size = 256
    daemon_threads = True


class LocalApi:
    def __init__(
        self,
        stack: LocalStack,
        host: str = "127.0.0.1",
        port: int = 8080,
    ) -> None:
        self.stack = stack
        self.sandbox: Any = None  # set by LocalSignoff: the /sandbox page and its JSON API
        self.httpd = LocalHttpServer((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalApi:
        # A short poll interval: stop() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="signoff-local-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def dispatch(
        self, method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        path = parts.path
        if path in ("/", ""):
            return _json(200, self.index())
        # ?wait=S on a local watch route answers once the state is there (or after S seconds): a
        # watcher waits here, in-process, instead of polling over HTTP, which would cost the stack
        # a request (and moto calls) each time.
        wait = _wait_seconds(parts.query)
        if path.startswith("/local/"):
            return self._local(method, path, body, wait)
        if path.startswith("/sandbox") and self.sandbox is not None:
            return cast(tuple[int, dict[str, str], bytes], self.sandbox.handle(method, path, body, wait))
        found = self.stack.route(method, path)
        if found is None:
            status = 405 if self.stack.path_exists(path) else 404
            return _json(status, {"message": f"no route {method} {path}"})
        route, params = found
        event = proxy_event(route, params, method, url, headers, body)
        response = self.stack.functions[route.function].invoke(event)
        return _from_proxy(response)

    def _local(self, method: str, path: str, body: bytes, wait: float = 0.0) -> tuple[int, dict[str, str], bytes]:
        """Local-only helpers: run and watch the stack's state machines (e.g. the example workflow).
        GET /local/executions lists them; POST /local/executions {"state_machine", "input", "name"};
        GET /local/executions/{name}?wait=S answers once it is no longer running (or after S s);
        POST /local/sweep {"at"} runs the sweeper as of a moment."""
        if path == "/local/drain" and method == "POST":
            # Wait until the stream mappings delivered everything written so far (the archive).
            drained = self.stack.poller.drain() if self.stack.poller else True
            return _json(200 if drained else 504, {"drained": drained})
        if path == "/local/faults" and method == "POST":
            request = json.loads(body or b"{}")
            names = self.stack.inject_failures(str(request.get("function", "")), int(request.get("failures", 1)))
            return _json(200 if names else 404, {"functions": names})
        if path == "/local/queues":
            return _json(200, {"queues": self._queue_messages()})
        if path == "/local/sweep" and method == "POST":
            return self._sweep(body)
        sfn = self.stack.client("stepfunctions")
        if path.startswith("/local/executions/") and method == "GET":
            name = path.removeprefix("/local/executions/")
            if wait:
                self._until_ended(name, wait)
            return self._execution(sfn, name)
        if path != "/local/executions":
            return _json(404, {"message": f"no local route {path}"})
        if method == "POST":
            request = json.loads(body or b"{}")
            machine = self.stack.state_machines.get(request.get("state_machine", ""))
            if machine is None:
                return _json(404, {"message": "unknown state machine", "known": sorted(self.stack.state_machines)})
            name = request.get("name") or str(uuid.uuid4())
            started = sfn.start_execution(
                stateMachineArn=machine, name=name, input=json.dumps(request.get("input", {}))
            )
            return _json(200, {"executionArn": started["executionArn"], "name": name})
        executions = []
        for machine_name, arn in self.stack.state_machines.items():
            for e in sfn.list_executions(stateMachineArn=arn)["executions"]:
                described = sfn.describe_execution(executionArn=e["executionArn"])
                executions.append(_execution_view(machine_name, e["name"], described))
        return _json(200, {"executions": executions})

    def _sweep(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """POST /local/sweep {"at": ISO time}: run the sweeper now, as EventBridge's tick at `at`
        would (its scheduled event carries the time). How tests reach a deadline without waiting."""
        try:
            at = datetime.fromisoformat(str(json.loads(body or b"{}").get("at") or ""))
        except (ValueError, AttributeError):
            return _json(400, {"message": 'send {"at": "<ISO 8601 time with a zone>"}'})
        if at.tzinfo is None:
            return _json(400, {"message": "at: give a time zone (e.g. ...Z)"})
        name = next((n for n in self.stack.functions.functions if "sweeper" in n.lower()), None)
        if name is None:
            return _json(404, {"message": "the template has no sweeper"})
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [],
            "detail": {},
        }
        return _json(200, self.stack.functions[name].invoke(event))

    def _execution(self, sfn: Any, name: str) -> tuple[int, dict[str, str], bytes]:
        """One execution by name (a checkpoint's approval workflow is named after it), without
        listing every execution there ever was."""
        for machine_name, arn in self.stack.state_machines.items():
            execution_arn = arn.replace(":stateMachine:", ":execution:") + f":{name}"
            try:
                described = sfn.describe_execution(executionArn=execution_arn)
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
            return _json(200, _execution_view(machine_name, name, described))
        return _json(404, {"message": f"no execution named {name}"})

    def _until_ended(self, name: str, wait: float) -> None:
        """Wait up to `wait` seconds for an execution to end, reading its status on moto's own
        object (an attribute read, no API call)."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[ACCOUNT][REGION]
        execution: Any = None  # the interpreter's Execution (its exec_status is not on moto's base type)
        for arn in self.stack.state_machines.values():
            try:
                execution = backend.describe_execution(arn.replace(":stateMachine:", ":execution:") + f":{name}")
                break
            except Exception:  # noqa: BLE001 - not an execution of this state machine
                continue
        deadline = time.monotonic() + wait
        while execution is not None and str(execution.exec_status.value) == "RUNNING" and time.monotonic() < deadline:
            time.sleep(WATCH_INTERVAL_SECONDS)

    def _queue_messages(self) -> dict[str, list[Any]]:
        """Messages waiting in each queue (e.g. the archiver's dead letters), left in place."""
        sqs = self.stack.client("sqs")
        found: dict[str, list[Any]] = {}
        for arn, url in self.stack.queues.items():
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get(
                "Messages", []
            )
            found[arn.rsplit(":", 1)[-1]] = [json.loads(m["Body"]) for m in messages]
        return found

    def index(self) -> dict[str, Any]:
        return {
            "service": "signoff (local stack)",
            "routes": [
                f"{r.method} {r.template}" + (" (IAM)" if r.authorization == "AWS_IAM" else "")
                for r in self.stack.routes
            ],
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "signoff-local"

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {"content-type": "application/json"}, b'{"message":"Request Too Long"}')
                    return
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, out_headers, payload = api.dispatch(self.command, self.path, headers, body)
                except Exception:  # noqa: BLE001 - what API Gateway answers when the function fails
                    log.exception("handler failed")
                    status, out_headers, payload = (
                        502,
                        {"content-type": "application/json"},
                        b'{"message":"Internal server error"}',
                    )
                self._reply(status, out_headers, payload)

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has the headers of a GET and no body
                    self.wfile.write(payload)

            # Every method reaches the route table (API Gateway answers TRACE, OPTIONS and HEAD too).
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = _serve

            def log_message(self, fmt: str, *args: Any) -> None:
                log.info("%s %s", self.address_string(), fmt % args)

        return Handler


def _execution_view(machine_name: str, name: str, described: dict[str, Any]) -> dict[str, Any]:
    return {
        "state_machine": machine_name,
        "name": name,
        "status": described["status"],
        "output": json.loads(described["output"]) if described.get("output") else None,
        "error": described.get("error"),
        "cause": described.get("cause"),
    }


def _json(status: int, body: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"content-type": "application/json"}, json.dumps(body, indent=2).encode()


def _from_proxy(response: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    headers = {k: str(v) for k, v in (response.get("headers") or {}).items()}
    for key, values in (response.get("multiValueHeaders") or {}).items():
        headers[key] = ", ".join(str(v) for v in values)
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
    return int(response.get("statusCode", 502)), headers, payload


WATCH_INTERVAL_SECONDS = 0.01  # an in-process status read: cheap enough to check often
MAX_WAIT_SECONDS = 60.0


def _wait_seconds(query: str) -> float:
    """The `wait` query parameter in seconds, at most a minute (0 when absent or not a number)."""
    try:
        return min(max(float(parse_qs(query).get("wait", ["0"])[-1]), 0.0), MAX_WAIT_SECONDS)
    except ValueError:
        return 0.0

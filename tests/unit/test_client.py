"""The Signoff API client: SigV4 signing with botocore, problem details as typed errors, against a
threaded HTTP server on 127.0.0.1 (the only address these tests may connect to)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from signoff.tools.client import SignoffApiError, SignoffClient, SignoffClientError, SignoffUnreachable, is_loopback_url

pytestmark = pytest.mark.unit

CHECKPOINT_ID = "cp_06dqjvep00wybebthsjj0r7kzg"
PROBLEM = "application/problem+json"

# -- an API on 127.0.0.1 -------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, str, bytes]  # status, content type, body


@dataclass
class FakeApi:
    """Answers every request with `reply` and records what it received."""

    reply: Reply
    received: list[Received] = field(default_factory=list)
    url: str = ""


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            api.received.append(
                Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status, content_type, payload = api.reply
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            if 300 <= status < 400:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve(loopback: None) -> Iterator[Callable[[Reply], FakeApi]]:
    servers: list[ThreadingHTTPServer] = []

    def start(reply: Reply) -> FakeApi:
        api = FakeApi(reply)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(server)
        api.url = f"http://127.0.0.1:{server.server_address[1]}"
        return api

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _json(status: int, body: Any, content_type: str = "application/json") -> Reply:
    return status, content_type, json.dumps(body).encode()


SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def _static_session(token: str | None = None) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=token,
        region_name="us-east-1",
    )


def _sigv4_signature(got: Received, secret_key: str) -> tuple[str, str]:
    """(expected, sent) signatures, the expected one recomputed from the bytes that arrived, as
    API Gateway does: proves the headers urllib sent are the ones botocore signed."""
    fields = dict(part.strip().split("=", 1) for part in got.headers["authorization"].split(" ", 1)[1].split(","))
    signed = fields["SignedHeaders"].split(";")
    scope = fields["Credential"].split("/", 1)[1]
    date, region, service, _ = scope.split("/")
    path, _, query = got.path.partition("?")
    canonical = "\n".join(
        [
            got.method,
            path,
            query,
            "".join(f"{name}:{' '.join(got.headers[name].split())}\n" for name in signed),
            fields["SignedHeaders"],
            hashlib.sha256(got.body).hexdigest(),
        ]
    )
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", got.headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), fields["Signature"]


@dataclass
class CapturingOpener:
    """Stands in for urllib's opener where no server can answer (an execute-api host name)."""

    requests: list[Any] = field(default_factory=list)

    def open(self, fullurl: Any, data: None = None, timeout: float = 0) -> Any:
        self.requests.append(fullurl)
        raise OSError("captured, not sent")


# -- signing --------------------------------------------------------------------------------------


def test_signed_requests_carry_a_sigv4_authorization_for_execute_api(serve: Callable[[Reply], FakeApi]) -> None:
    # Given an API and a client signing with static credentials
    api = serve(_json(202, {"id": CHECKPOINT_ID, "status": "PENDING"}))
    client = SignoffClient(api.url, sign=True, region="eu-west-1", session=_static_session(token="session-token"))

    # When a checkpoint is requested
    status, body = client.create({"action": "deploy"}, idempotency_key="release-42")

    # Then the API's answer is returned
    assert (status, body) == (202, {"id": CHECKPOINT_ID, "status": "PENDING"})
    # And the request was signed with SigV4 for execute-api in that region
    got = api.received[0]
    authorization = got.headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "idempotency-key", "content-type"} <= set(signed)
    assert got.headers["x-amz-security-token"] == "session-token"
    expected, sent = _sigv4_signature(got, SECRET_KEY)
    assert sent == expected
    # And it carried the body, key and content type the API expects
    assert got.method == "POST"
    assert got.path == "/v1/checkpoints"
    assert got.json() == {"action": "deploy"}
    assert got.headers["idempotency-key"] == "release-42"
    assert got.headers["content-type"] == "application/json"


def test_unsigned_requests_carry_no_authorization(serve: Callable[[Reply], FakeApi]) -> None:
    # Given the local stack, which checks no signature
    api = serve(_json(200, {"id": CHECKPOINT_ID, "status": "APPROVED"}))

    # When a checkpoint is read without signing
    body = SignoffClient(api.url, sign=False).get(CHECKPOINT_ID)

    # Then no AWS headers were sent
    assert body["status"] == "APPROVED"
    got = api.received[0]
    assert got.path == f"/v1/checkpoints/{CHECKPOINT_ID}"
    assert "authorization" not in got.headers
    assert "x-amz-date" not in got.headers
    assert got.headers["user-agent"] == "signoff-client/1"


def test_the_region_is_read_from_the_execute_api_host_name() -> None:
    # Given the stack's ApiUrl output, with no region given
    opener = CapturingOpener()
    url = "https://abc123defg.execute-api.ap-southeast-2.amazonaws.com/live/"
    client = SignoffClient(url, sign=True, session=_static_session(), opener=opener)

    # When a request is made (captured: nothing leaves the process)
    with pytest.raises(SignoffUnreachable):
        client.get(CHECKPOINT_ID)

    # Then it went to the stage's path, signed for the host's region rather than the session's
    [request] = opener.requests
    assert (
        request.full_url
        == f"https://abc123defg.execute-api.ap-southeast-2.amazonaws.com/live/v1/checkpoints/{CHECKPOINT_ID}"
    )
    assert "/ap-southeast-2/execute-api/aws4_request" in request.get_header("Authorization")


def test_signing_without_credentials_says_so() -> None:
    class NoCredentials:
        region_name = "us-east-1"

        def get_credentials(self) -> None:
            return None

    client = SignoffClient("https://api.example.com", sign=True, session=NoCredentials(), opener=CapturingOpener())

    with pytest.raises(SignoffClientError, match="no AWS credentials"):
        client.get(CHECKPOINT_ID)


def test_signing_needs_a_region() -> None:
    class NoRegion:
        region_name = None

        def get_credentials(self) -> None:
            return None

    with pytest.raises(SignoffClientError, match="region"):
        SignoffClient("https://signoff.example.com", sign=True, session=NoRegion())


@pytest.mark.parametrize(
    "url", ["http://signoff.example.com", "ftp://127.0.0.1", "127.0.0.1:8080", "https://", "https://[::1"]
)
def test_unsafe_or_malformed_base_urls_are_refused(url: str) -> None:
    # Plain http would carry the session token in clear: only the local stack may use it
    with pytest.raises(SignoffClientError, match="API URL"):
        SignoffClient(url, sign=False)


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8080", True),
        ("http://localhost:8080/", True),
        ("http://[::1]:8080", True),
        ("http://127.8.9.1:8080", True),
        ("http://[::ffff:127.0.0.1]:8080", True),
        ("http://localhost.:8080", True),
        ("http://128.0.0.1:8080", False),
        ("https://abc.execute-api.us-east-1.amazonaws.com/live", False),
        ("https://127.0.0.1.example.com", False),
        ("http://[::1", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


# -- other routes ---------------------------------------------------------------------------------


def test_outcome_posts_the_report_to_the_checkpoint(serve: Callable[[Reply], FakeApi]) -> None:
    api = serve(_json(200, {"id": CHECKPOINT_ID, "outcome": {"outcome": "success"}}))

    body = SignoffClient(api.url + "/", sign=False).outcome(CHECKPOINT_ID, "success", details="deployed in 4m")

    assert body["outcome"] == {"outcome": "success"}
    got = api.received[0]
    assert (got.method, got.path) == ("POST", f"/v1/checkpoints/{CHECKPOINT_ID}/outcome")
    assert got.json() == {"outcome": "success", "details": "deployed in 4m"}


def test_ids_cannot_change_the_path(serve: Callable[[Reply], FakeApi]) -> None:
    api = serve(_json(404, {"title": "Not found", "status": 404, "detail": "checkpoint ../x not found"}, PROBLEM))

    with pytest.raises(SignoffApiError):
        SignoffClient(api.url, sign=False).get("../openapi.json?")

    assert api.received[0].path == "/v1/checkpoints/..%2Fopenapi.json%3F"


# -- errors ---------------------------------------------------------------------------------------


def test_problem_details_become_a_typed_error_naming_each_field(serve: Callable[[Reply], FakeApi]) -> None:
    # Given an API that rejects the request's fields
    errors = [
        {"field": "signals.model_confidence", "message": "Input should be less than or equal to 1"},
        {"field": "target", "message": "Field required"},
    ]
    problem = {"type": "about:blank", "title": "Invalid request", "status": 422, "detail": "2 fields", "errors": errors}
    api = serve(_json(422, problem, PROBLEM))

    # When a checkpoint is requested
    with pytest.raises(SignoffApiError) as caught:
        SignoffClient(api.url, sign=False).create({}, idempotency_key="k")

    # Then the error carries the status and the problem details
    error = caught.value
    assert error.status == 422
    assert error.problem == problem
    assert error.errors == errors
    assert not error.transient
    assert str(error) == "HTTP 422 Invalid request: 2 fields"


@pytest.mark.parametrize(
    ("reply", "title", "detail"),
    [
        (_json(403, {"message": "The security token included in the request is invalid."}), "Forbidden", "invalid."),
        ((502, "text/plain", b"upstream hiccup"), "Bad Gateway", "upstream hiccup"),
        ((503, "text/html", b"<html><body>Service Unavailable</body></html>"), "Service Unavailable", ""),
    ],
    ids=["api-gateway-message", "plain-text", "html-page"],
)
def test_errors_from_api_gateway_or_proxies_get_the_same_shape(
    serve: Callable[[Reply], FakeApi], reply: Reply, title: str, detail: str
) -> None:
    api = serve(reply)

    with pytest.raises(SignoffApiError) as caught:
        SignoffClient(api.url, sign=False).get(CHECKPOINT_ID)

    assert caught.value.status == reply[0]
    assert caught.value.title == title
    assert caught.value.detail.endswith(detail)
    assert caught.value.transient is (reply[0] >= 500)


def test_a_success_that_is_not_json_is_an_error(serve: Callable[[Reply], FakeApi]) -> None:
    api = serve((200, "text/html", b"<html>captive portal</html>"))

    with pytest.raises(SignoffApiError, match="not a JSON object"):
        SignoffClient(api.url, sign=False).get(CHECKPOINT_ID)


def test_redirects_are_not_followed(serve: Callable[[Reply], FakeApi]) -> None:
    # Given an API that redirects (a signed request must not go elsewhere)
    api = serve((302, "text/plain", b""))

    with pytest.raises(SignoffApiError) as caught:
        SignoffClient(api.url, sign=False).get(CHECKPOINT_ID)

    assert caught.value.status == 302
    assert len(api.received) == 1


def test_an_unreachable_api_is_a_transient_error(loopback: None) -> None:
    # Given nothing listening on a local port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # When a checkpoint is read
    with pytest.raises(SignoffUnreachable) as caught:
        SignoffClient(f"http://127.0.0.1:{port}", sign=False).get(CHECKPOINT_ID)

    # Then the error names the URL and the reason
    assert caught.value.url == f"http://127.0.0.1:{port}/v1/checkpoints/{CHECKPOINT_ID}"
    assert "refused" in caught.value.reason.lower()
    assert caught.value.transient

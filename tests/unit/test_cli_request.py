"""`signoff request`: ask the API, wait for the decision, exit 0 / 1 / 2 / 3. Against a threaded
imitation of the API on 127.0.0.1 whose checkpoints come from the real engine, with a fake clock
and sleep so waiting takes no time."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from signoff.domain.models import Checkpoint
from signoff.tools.cli import build_parser, main, request
from tests.helpers import EVENTS_DIR, make_request, memory_service

pytestmark = pytest.mark.unit

HARD_REQUEST = EVENTS_DIR / "api" / "checkpoint-hard.json"
PROBLEM = "application/problem+json"

# -- the API on 127.0.0.1 --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_signoff_url(loopback: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test here talks to its own local API (the conftest's loopback), never SIGNOFF_URL's."""
    monkeypatch.delenv("SIGNOFF_URL", raising=False)


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, Any]]


@dataclass
class FakeApi:
    """POST /v1/checkpoints answers `created`; each GET answers the next of `polls` (the last repeats)."""

    created: Reply
    polls: list[Reply]
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def reply(self, got: Received) -> Reply:
        self.received.append(got)
        if got.method == "POST":
            return self.created
        gets = sum(1 for r in self.received if r.method == "GET")
        return self.polls[min(gets, len(self.polls)) - 1]

    @property
    def gets(self) -> int:
        return sum(1 for r in self.received if r.method == "GET")


def _handler(api: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status, answer = api.reply(got)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if status < 400 else PROBLEM)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve(loopback: None) -> Iterator[Callable[..., FakeApi]]:
    servers: list[ThreadingHTTPServer] = []

    def start(created: Reply, *polls: Reply) -> FakeApi:
        api = FakeApi(created, list(polls) or [created])
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


# -- checkpoints as the API returns them ---------------------------------------------------------


@cache
def _pending_hard() -> str:
    """A hard-gated checkpoint (2 approvals, fail-closed) made by the real engine, as JSON."""
    service = memory_service().service
    checkpoint = service.create(make_request("hard"), caller="arn:aws:iam::123456789012:user/ci", idempotency_key=None)
    return checkpoint.model_dump_json()


def _checkpoint(**changes: Any) -> dict[str, Any]:
    """The pending hard checkpoint with fields changed, checked against the API's model."""
    data = {**json.loads(_pending_hard()), **changes}
    return Checkpoint.model_validate(data).model_dump(mode="json")


def _vote(name: str, kind: str = "approve") -> dict[str, Any]:
    return {"approver": f"U-{name}", "name": name, "kind": kind, "surface": "slack", "at": "2026-01-01T12:05:00Z"}


def _decided(status: str, **changes: Any) -> Reply:
    return 200, _checkpoint(status=status, decided_at="2026-01-01T12:10:00Z", **changes)


PENDING: Reply = (202, _checkpoint())
ONE_VOTE: Reply = (200, _checkpoint(votes=[_vote("carol")]))


@dataclass
class FakeClock:
    """Monotonic time that only moves when the command sleeps."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def time(self) -> float:
        return self.now


def _run(*argv: str, clock: FakeClock | None = None) -> int:
    """`signoff request ...` in-process with the fake clock (main() would really sleep)."""
    clock = clock or FakeClock()
    args = build_parser().parse_args(["request", *argv])
    return request(args, sleep=clock.sleep, clock=clock.time)


# -- deciding -------------------------------------------------------------------------------------


def test_waits_for_approval_printing_votes_once_and_the_conditions(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an API that holds the request for people: one vote, no change, then approved with conditions
    approved = _decided(
        "APPROVED",
        votes=[_vote("carol"), _vote("dave")],
        decided_by="carol, dave",
        decision_reason="2 of 2 approvals",
        conditions={"window": "after 22:00 UTC", "max_batch": 5000},
    )
    api = serve(PENDING, ONE_VOTE, ONE_VOTE, approved)
    clock = FakeClock()

    # When a pipeline requests the hard-gated deploy and waits
    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait", clock=clock)

    # Then it exits 0 and prints the checkpoint, why it was gated, the deadline and what happens then
    out = capsys.readouterr().out
    assert code == 0
    pending = PENDING[1]
    assert f"checkpoint {pending['id']}: PENDING, gate hard, score 50" in out
    for line in pending["assessment"]["explanation"]:
        assert f"  {line}\n" in out
    assert "  needs 2 approval(s)\n" in out
    assert "  deadline 2026-01-01T13:00:00Z: if undecided by then, it is denied (fail-closed)\n" in out
    assert "  escalates to release-managers if undecided after 30m\n" in out
    # And the vote was printed once, although two polls saw it
    assert out.count("1 of 2 approvals: carol\n") == 1
    # And the decision with each condition
    assert "APPROVED by carol, dave: 2 of 2 approvals\n" in out
    assert "conditions:\n  window: after 22:00 UTC\n  max_batch: 5000\n" in out
    # And polling backed off while nothing changed, and started over after the vote
    assert clock.sleeps == [2, 2, 4]
    assert api.gets == 3


def test_the_request_is_sent_as_the_file_says_with_a_printed_idempotency_key(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an API that approves at once
    api = serve(_decided("APPROVED", decided_by="policy"))

    # When a request is made without a key
    code = _run(str(HARD_REQUEST), "--url", api.url)

    # Then the body is the file's, unsigned (loopback), with a fresh key that was printed for retries
    out = capsys.readouterr().out
    assert code == 0
    [post] = api.received
    assert (post.method, post.path) == ("POST", "/v1/checkpoints")
    assert json.loads(post.body) == json.loads(HARD_REQUEST.read_text(encoding="utf-8"))
    key = post.headers["idempotency-key"]
    assert len(key) == 36
    assert f"--idempotency-key {key}" in out
    assert "authorization" not in post.headers


def test_a_given_idempotency_key_is_reused(serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]) -> None:
    api = serve(_decided("APPROVED"))

    code = _run(str(HARD_REQUEST), "--url", api.url, "--idempotency-key", "release-2024-11-21")

    assert code == 0
    assert api.received[0].headers["idempotency-key"] == "release-2024-11-21"
    assert "idempotency key" not in capsys.readouterr().out


def test_denied_exits_1(serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]) -> None:
    # Given an approver who denies
    denied = _decided("DENIED", votes=[_vote("erin", "deny")], decided_by="erin", decision_reason="not during peak")
    api = serve(PENDING, denied)

    # When the pipeline waits
    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait")

    # Then it exits 1 with who denied and why
    assert code == 1
    assert "DENIED by erin: not during peak\n" in capsys.readouterr().out


@pytest.mark.parametrize("status", ["EXPIRED", "CANCELLED"])
def test_expired_or_cancelled_exits_2(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str], status: str
) -> None:
    api = serve(PENDING, ONE_VOTE, _decided(status, decided_by="timeout", decision_reason="nobody decided in time"))

    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait")

    assert code == 2
    assert f"{status} by timeout: nobody decided in time\n" in capsys.readouterr().out


def test_escalation_is_reported(serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]) -> None:
    api = serve(PENDING, (200, _checkpoint(escalated=True)), _decided("APPROVED"))

    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait")

    assert code == 0
    assert capsys.readouterr().out.count("escalated to release-managers\n") == 1


def test_still_pending_at_the_timeout_exits_2(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a checkpoint nobody decides
    api = serve(PENDING, ONE_VOTE)
    clock = FakeClock()

    # When the pipeline waits for 10 seconds
    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait", "--timeout", "10s", clock=clock)

    # Then it stops at the timeout, not after, and exits 2
    assert code == 2
    assert sum(clock.sleeps) == 10
    assert "still PENDING after 10s; stopped waiting" in capsys.readouterr().out


def test_polling_backs_off_from_poll_up_to_15_seconds(serve: Callable[..., FakeApi]) -> None:
    # Given a checkpoint nobody decides
    api = serve(PENDING, PENDING)
    clock = FakeClock()

    # When the pipeline waits two minutes, first polling after 2 s
    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait", "--timeout", "2m", "--poll", "2s", clock=clock)

    # Then the interval doubles up to 15 s, and the last sleep ends at the timeout
    assert code == 2
    assert clock.sleeps[:5] == [2, 4, 8, 15, 15]
    assert max(clock.sleeps) == 15
    assert sum(clock.sleeps) == 120
    assert api.gets == len(clock.sleeps)


def test_without_wait_a_pending_checkpoint_is_not_an_approval(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a request that waits for people
    api = serve(PENDING)

    # When the pipeline does not wait
    code = _run(str(HARD_REQUEST), "--url", api.url)

    # Then it exits 2 (never 0: `signoff request x && deploy` must not deploy) and does not poll
    assert code == 2
    assert api.gets == 0
    assert "use --wait" in capsys.readouterr().out


def test_a_brief_api_outage_while_waiting_is_ridden_out(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    unavailable: Reply = (503, {"title": "Service Unavailable", "status": 503, "detail": "try again"})
    api = serve(PENDING, unavailable, unavailable, _decided("APPROVED"))

    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait")

    assert code == 0
    assert "still waiting: HTTP 503" in capsys.readouterr().err


def test_a_lasting_api_outage_while_waiting_exits_3(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    api = serve(PENDING, (503, {"title": "Service Unavailable", "status": 503, "detail": "down"}))

    code = _run(str(HARD_REQUEST), "--url", api.url, "--wait")

    assert code == 3
    assert api.gets == 3
    assert "error: HTTP 503 Service Unavailable: down" in capsys.readouterr().err


# -- errors -----------------------------------------------------------------------------------------


def test_invalid_fields_exit_3_naming_each_field(
    serve: Callable[..., FakeApi], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an API that rejects the request
    errors = [
        {"field": "signals.model_confidence", "message": "Input should be less than or equal to 1"},
        {"field": "environment", "message": "unknown environment 'qa'"},
    ]
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    api = serve(
        (422, {"type": "about:blank", "title": "Invalid request", "status": 422, "detail": detail, "errors": errors})
    )

    # When a request is made through the command line
    code = main(["request", str(HARD_REQUEST), "--url", api.url])

    # Then it exits 3 with the problem detail and each field
    err = capsys.readouterr().err
    assert code == 3
    assert f"error: HTTP 422 Invalid request: {detail}" in err
    assert "  signals.model_confidence: Input should be less than or equal to 1\n" in err
    assert "  environment: unknown environment 'qa'\n" in err


def test_an_unreachable_api_exits_3_keeping_the_key_for_a_retry(
    loopback: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given nothing listening
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"

    # When a request is made
    code = main(["request", str(HARD_REQUEST), "--url", url])

    # Then it exits 3, saying why, and the key printed before sending lets a retry reuse it
    captured = capsys.readouterr()
    assert code == 3
    assert f"error: cannot reach {url}/v1/checkpoints:" in captured.err
    assert "--idempotency-key " in captured.out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read the file"), ("{", "not valid JSON"), ("[1, 2]", "must be a JSON object")],
    ids=["missing", "malformed", "not-an-object"],
)
def test_an_unusable_file_exits_3_before_sending(
    serve: Callable[..., FakeApi], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    api = serve(PENDING)
    path = tmp_path / "request.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")

    code = main(["request", str(path), "--url", api.url])

    assert code == 3
    assert message in capsys.readouterr().err
    assert api.received == []


def test_bad_arguments_exit_3_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    # 2 means "not decided": a typo must not look like an expired checkpoint
    with pytest.raises(SystemExit) as exited:
        main(["request", str(HARD_REQUEST), "--url", "http://127.0.0.1:1", "--timeout", "soon"])

    assert exited.value.code == 3
    assert "duration 'soon' must look like 45s, 10m, 2h or 1d" in capsys.readouterr().err


def test_the_url_comes_from_signoff_url(
    serve: Callable[..., FakeApi], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    api = serve(_decided("APPROVED"))
    monkeypatch.setenv("SIGNOFF_URL", api.url)

    assert main(["request", str(HARD_REQUEST)]) == 0
    assert len(api.received) == 1


def test_a_missing_url_exits_3(loopback: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["request", str(HARD_REQUEST)]) == 3
    assert "--url or SIGNOFF_URL" in capsys.readouterr().err


# -- signing ----------------------------------------------------------------------------------------


def test_sign_forces_sigv4_even_for_the_local_stack(serve: Callable[..., FakeApi]) -> None:
    api = serve(_decided("APPROVED"))

    assert _run(str(HARD_REQUEST), "--url", api.url, "--sign") == 0

    authorization = api.received[0].headers["authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 ")
    assert "/execute-api/aws4_request" in authorization


@dataclass
class CapturingOpener:
    """Stands in for urllib where no server can answer (an execute-api host name)."""

    requests: list[Any] = field(default_factory=list)

    def open(self, fullurl: Any, data: None = None, timeout: float = 0) -> Any:
        self.requests.append(fullurl)
        raise OSError("captured, not sent")


@pytest.mark.parametrize(("flag", "signed"), [((), True), (("--no-sign",), False)])
def test_requests_to_aws_are_signed_by_default(flag: tuple[str, ...], signed: bool) -> None:
    # Given the deployed API's URL (captured: nothing leaves the process)
    opener = CapturingOpener()
    args = build_parser().parse_args(
        ["request", str(HARD_REQUEST), "--url", "https://abc123.execute-api.eu-west-1.amazonaws.com/live", *flag]
    )

    # When a request is made
    code = request(args, opener=opener)

    # Then it was signed for the API's region unless --no-sign said otherwise
    assert code == 3
    authorization = opener.requests[0].get_header("Authorization")
    assert (authorization is not None) is signed
    if signed:
        assert "/eu-west-1/execute-api/aws4_request" in authorization

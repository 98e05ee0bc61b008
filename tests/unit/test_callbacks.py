"""The requester's webhook: HMAC signatures and the sender's retries, against a threaded HTTP server
on 127.0.0.1 (the only address these tests may connect to)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from signoff import composition
from signoff.adapters import webhook
from signoff.adapters.webhook import WebhookSender, sign, verify
from signoff.settings import SettingsError

pytestmark = pytest.mark.unit

KEY = b"0123456789abcdef-webhook-key"
NOW = 1_767_268_800  # 2026-01-01T12:00:00Z
BODY = {"checkpoint_id": "cp_06dqjvep00wybebthsjj0r7kzg", "status": "APPROVED", "conditions": {"window": "22:00"}}

# -- a receiver on 127.0.0.1 ---------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str]]


@dataclass
class Receiver:
    """Answers with `replies` in turn (the last one repeats) and records what it received."""

    replies: list[Reply]
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def reply(self, request: Received) -> Reply:
        self.received.append(request)
        if self.delay:
            time.sleep(self.delay)
        return self.replies[min(len(self.received), len(self.replies)) - 1]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            request = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            status, headers = receiver.reply(request)
            try:
                self.send_response(status)
                for name, value in {"Content-Length": "0", **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
            except OSError:
                pass  # the sender gave up waiting (timeout test)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve(loopback: None) -> Iterator[Callable[..., Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start(*replies: Reply, delay: float = 0.0) -> Receiver:
        receiver = Receiver(list(replies), delay=delay)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(server)
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/signoff?token=receiver-secret"
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class FakeSleep:
    delays: list[float] = field(default_factory=list)

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _sender(sleep: FakeSleep | None = None, **options: Any) -> WebhookSender:
    options.setdefault("allow_loopback", True)
    return WebhookSender(KEY, sleep=sleep or FakeSleep(), **options)


def _verifies(got: Received) -> bool:
    """The receiver's check, as the module documents it."""
    timestamp = int(got.headers["x-signoff-timestamp"])
    return verify(KEY, timestamp, got.body, got.headers["x-signoff-signature"], now=time.time())


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- sign / verify -------------------------------------------------------------------------------


def test_sign_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Given a key, a timestamp and a body
    import hashlib
    import hmac

    # When the body is signed
    signature = sign(KEY, NOW, b'{"a":1}')

    # Then it is v1= and the hex HMAC-SHA256 of "<timestamp>." + body
    assert signature == "v1=" + hmac.new(KEY, b'1767268800.{"a":1}', hashlib.sha256).hexdigest()


def test_verify_accepts_a_fresh_signature_within_tolerance() -> None:
    signature = sign(KEY, NOW, b"{}")

    assert verify(KEY, NOW, b"{}", signature, now=NOW + 299)
    assert verify(KEY, NOW, b"{}", signature, now=NOW - 299)


@pytest.mark.parametrize(
    ("key", "timestamp", "body", "now"),
    [
        (b"another key", NOW, b"{}", NOW),  # not our key
        (KEY, NOW, b'{"status":"DENIED"}', NOW),  # body altered
        (KEY, NOW + 1, b"{}", NOW),  # timestamp altered
        (KEY, NOW, b"{}", NOW + 301),  # replayed after the tolerance
        (KEY, NOW, b"{}", NOW - 301),  # from too far in the future
    ],
)
def test_verify_refuses_forged_altered_or_stale_requests(key: bytes, timestamp: int, body: bytes, now: int) -> None:
    # Given a genuine signature of "{}" at NOW
    signature = sign(KEY, NOW, b"{}")

    # When anything about it is off, Then it does not verify
    assert not verify(key, timestamp, body, signature, now=now)


@pytest.mark.parametrize("signature", ["", "v1=", "v1=zz", "v1=é" * 20, "garbage"])
def test_verify_refuses_malformed_signatures_without_raising(signature: str) -> None:
    assert not verify(KEY, NOW, b"{}", signature, now=NOW)


# -- delivery ------------------------------------------------------------------------------------


def test_delivery_is_signed_compact_sorted_json_a_receiver_can_verify(serve: Callable[..., Receiver]) -> None:
    # Given a receiver that answers 200
    receiver = serve((200, {}))

    # When a decision is delivered
    delivered, detail = _sender().deliver(receiver.url, BODY)

    # Then it arrived once, as compact sorted JSON with the documented headers
    assert (delivered, detail) == (True, "HTTP 200 on attempt 1")
    [got] = receiver.received
    assert got.method == "POST"
    assert got.body == json.dumps(BODY, sort_keys=True, separators=(",", ":")).encode()
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "signoff-webhook/1"
    assert len(got.headers["x-signoff-delivery"]) == 36
    # And the receiver's own check (documented in the module) accepts it
    assert _verifies(got)


def test_transient_failures_are_retried_with_growing_delays_and_one_delivery_id(
    serve: Callable[..., Receiver],
) -> None:
    # Given a receiver that fails twice with 503, then accepts
    receiver = serve((503, {}), (503, {}), (200, {}))
    sleep = FakeSleep()

    # When a decision is delivered
    delivered, detail = _sender(sleep).deliver(receiver.url, BODY)

    # Then the third attempt delivered it
    assert (delivered, detail) == (True, "HTTP 200 on attempt 3")
    # And every attempt carried the same delivery id, so the receiver can dedupe
    assert len({r.headers["x-signoff-delivery"] for r in receiver.received}) == 1
    # And the sender backed off with jittered, growing delays: [0.25, 0.5] then [0.5, 1]
    first, second = sleep.delays
    assert 0.25 <= first <= 0.5 <= second <= 1.0
    # And each attempt is signed afresh and verifies
    assert all(_verifies(got) for got in receiver.received)


def test_the_delivery_id_is_the_same_when_the_same_decision_is_delivered_again(
    serve: Callable[..., Receiver],
) -> None:
    # Given a receiver, and a Finalize step retried after its first delivery's answer was lost
    receiver = serve((200, {}))

    # When the same decision is delivered twice, by two senders (two Lambda invocations), and another one once
    _sender().deliver(receiver.url, BODY)
    _sender().deliver(receiver.url, dict(BODY))
    _sender().deliver(receiver.url, {**BODY, "status": "DENIED"})

    # Then the receiver can tell the repeat from the other decision
    first, repeat, other = (r.headers["x-signoff-delivery"] for r in receiver.received)
    assert first == repeat != other


def test_gives_up_after_the_configured_attempts(serve: Callable[..., Receiver]) -> None:
    # Given a receiver that always fails
    receiver = serve((500, {}))
    sleep = FakeSleep()

    # When a decision is delivered with 3 attempts
    delivered, detail = _sender(sleep, attempts=3).deliver(receiver.url, BODY)

    # Then it tried 3 times, slept between attempts only, and says why it gave up
    assert not delivered
    assert detail == "gave up after 3 attempts: HTTP 500"
    assert len(receiver.received) == 3
    assert len(sleep.delays) == 2
    assert sleep.delays == sorted(sleep.delays)


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_other_client_errors_are_not_retried(serve: Callable[..., Receiver], status: int) -> None:
    # Given a receiver that rejects the delivery
    receiver = serve((status, {}))
    sleep = FakeSleep()

    # When a decision is delivered
    delivered, detail = _sender(sleep).deliver(receiver.url, BODY)

    # Then it was tried once: resending the same body would be rejected the same way
    assert (delivered, detail) == (False, f"HTTP {status}: not retried")
    assert len(receiver.received) == 1
    assert sleep.delays == []


def test_redirects_are_not_followed(serve: Callable[..., Receiver]) -> None:
    # Given a receiver that redirects elsewhere
    receiver = serve((307, {"Location": "http://127.0.0.1:9/elsewhere"}))

    # When a decision is delivered
    delivered, detail = _sender().deliver(receiver.url, BODY)

    # Then the signed body went nowhere else
    assert not delivered
    assert detail == "HTTP 307 (redirects are not followed): not retried"
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [("7", 7.0), ("120", 30.0), (formatdate(NOW + 12, usegmt=True), 12.0)],
    ids=["seconds", "capped-at-30s", "http-date"],
)
def test_retry_after_is_honoured_up_to_30_seconds(
    serve: Callable[..., Receiver], retry_after: str, expected: float
) -> None:
    # Given a receiver that throttles once, saying when to come back
    receiver = serve((429, {"Retry-After": retry_after}), (200, {}))
    sleep = FakeSleep()

    # When a decision is delivered
    delivered, _ = _sender(sleep, clock=lambda: float(NOW)).deliver(receiver.url, BODY)

    # Then the sender waited as asked (at most 30 s) and then delivered
    assert delivered
    assert sleep.delays == [pytest.approx(expected)]


def test_retries_stop_when_the_time_budget_would_run_out(serve: Callable[..., Receiver]) -> None:
    # Given a receiver that keeps asking for 30 s, and a clock that moves as the sender sleeps
    receiver = serve((503, {"Retry-After": "30"}))
    now = [float(NOW)]
    sleep = FakeSleep()

    def sleep_and_advance(seconds: float) -> None:
        sleep(seconds)
        now[0] += seconds

    sender = WebhookSender(KEY, sleep=sleep_and_advance, allow_loopback=True, budget=45, clock=lambda: now[0])

    # When a decision is delivered
    delivered, detail = sender.deliver(receiver.url, BODY)

    # Then it waited once (30 + 5 s timeout fit in 45 s), not twice, and said why it stopped
    assert not delivered
    assert detail == "gave up after 2 attempts (out of time): HTTP 503"
    assert sleep.delays == [30.0]
    assert len(receiver.received) == 2


def test_connection_failures_are_retried(loopback: None) -> None:
    # Given a receiver that is down
    url = f"http://127.0.0.1:{_closed_port()}/hook"
    sleep = FakeSleep()

    # When a decision is delivered
    delivered, detail = _sender(sleep, attempts=2).deliver(url, BODY)

    # Then both attempts failed to connect
    assert not delivered
    assert detail.startswith("gave up after 2 attempts: connection failed:")
    assert len(sleep.delays) == 1


def test_each_attempt_times_out(serve: Callable[..., Receiver]) -> None:
    # Given a receiver slower than the per-attempt timeout
    receiver = serve((200, {}), delay=0.5)

    # When a decision is delivered with a short timeout
    delivered, detail = _sender(attempts=2, timeout=0.1).deliver(receiver.url, BODY)

    # Then each attempt gave up waiting and was retried
    assert not delivered
    assert "timed out" in detail
    assert len(receiver.received) == 2


# -- which URLs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow_loopback", "reason"),
    [
        ("http://hooks.example.com/signoff", True, "the callback URL must be https://"),
        ("ftp://hooks.example.com/signoff", True, "the callback URL must be https://"),
        ("http://127.0.0.1:8081/hook", False, "loopback callback URLs are not allowed here"),
        ("https://localhost/hook", False, "loopback callback URLs are not allowed here"),
        ("https://LOCALHOST./hook", False, "loopback callback URLs are not allowed here"),
        ("https://127.8.9.1/hook", False, "loopback callback URLs are not allowed here"),
        ("https://[::ffff:127.0.0.1]/hook", False, "loopback callback URLs are not allowed here"),
        ("https://169.254.169.254/latest", True, "link-local callback URLs are not allowed"),
        ("https:///no-host", True, "the callback URL has no host"),
        ("https://[::1/hook", True, "the callback URL is malformed"),
    ],
)
def test_unsafe_urls_are_refused_without_a_request(url: str, allow_loopback: bool, reason: str) -> None:
    # Given a sender (the suite refuses every socket: a request would raise)
    sender = _sender(allow_loopback=allow_loopback)

    # When a decision is delivered to an unsafe URL, Then it is refused, naming why
    assert sender.deliver(url, BODY) == (False, f"refused: {reason}")


@pytest.mark.parametrize(
    ("url", "allow_loopback"),
    [
        ("https://hooks.example.com/signoff", False),
        ("http://127.0.0.1:8081/hook", True),
        ("http://localhost:8081/hook", True),
        ("http://[::1]:8081/hook", True),
    ],
)
def test_https_and_allowed_loopback_urls_are_accepted(url: str, allow_loopback: bool) -> None:
    assert _sender(allow_loopback=allow_loopback).refusal(url) is None


def test_http_loopback_is_refused_unless_allowed(serve: Callable[..., Receiver]) -> None:
    # Given a receiver on http://127.0.0.1
    receiver = serve((200, {}))

    # When the default sender (as in Lambda) delivers to it
    refused = WebhookSender(KEY, sleep=FakeSleep()).deliver(receiver.url, BODY)
    # And the local stack's sender does
    allowed = _sender(allow_loopback=True).deliver(receiver.url, BODY)

    # Then only the local stack's reached it
    assert refused == (False, "refused: loopback callback URLs are not allowed here")
    assert allowed[0]
    assert len(receiver.received) == 1


def test_logs_name_the_host_never_the_key_body_or_path(
    serve: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a recording logger and a receiver that fails once
    lines: list[str] = []

    class RecordingLogger:
        def info(self, msg: str, extra: dict[str, Any]) -> None:
            lines.append(f"{msg} {extra}")

        warning = info

    monkeypatch.setattr(webhook, "logger", RecordingLogger())
    receiver = serve((503, {}), (200, {}))

    # When a decision is delivered
    _sender().deliver(receiver.url, BODY)

    # Then each attempt was logged with host, status and attempt, but no secret or payload
    assert len(lines) == 2
    assert all("127.0.0.1" in line and "'attempt'" in line and "'status'" in line for line in lines)
    logged = " ".join(lines)
    for secret in (KEY.decode(), "receiver-secret", "/hooks/signoff", "cp_06dqjvep00wybebthsjj0r7kzg", "22:00"):
        assert secret not in logged


# -- the factory ----------------------------------------------------------------------------------


@pytest.fixture
def fresh_factory() -> Iterator[None]:
    composition.reset()
    yield
    composition.reset()


def test_factory_reads_the_key_from_the_secret_and_the_loopback_flag(
    fresh_factory: None, serve: Callable[..., Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function's environment and a secret holding the HMAC key
    from aws_lambda_powertools.utilities import parameters

    calls: list[tuple[str, dict[str, Any]]] = []

    def get_secret(name: str, **options: Any) -> dict[str, str]:
        calls.append((name, options))
        return {"hmac_key": KEY.decode()}

    monkeypatch.setattr(parameters, "get_secret", get_secret)
    monkeypatch.setenv("CALLBACK_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:cb")
    monkeypatch.setenv("SIGNOFF_ALLOW_LOOPBACK_CALLBACKS", "true")
    receiver = serve((200, {}))

    # When the factory's sender delivers
    sender = composition.callbacks()
    delivered, _ = sender.deliver(receiver.url, BODY)

    # Then it is cached, read the secret as JSON with a 5-minute cache, and signed with its key
    assert composition.callbacks() is sender
    assert delivered
    assert calls == [("arn:aws:secretsmanager:us-east-1:123456789012:secret:cb", {"transform": "json", "max_age": 300})]
    assert _verifies(receiver.received[0])


def test_factory_refuses_loopback_by_default(fresh_factory: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLBACK_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:cb")
    monkeypatch.delenv("SIGNOFF_ALLOW_LOOPBACK_CALLBACKS", raising=False)

    assert composition.callbacks().refusal("http://127.0.0.1:8081/hook") is not None


def test_factory_names_the_missing_secret_variable(fresh_factory: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLBACK_SECRET_ARN", raising=False)

    with pytest.raises(SettingsError, match="CALLBACK_SECRET_ARN"):
        composition.callbacks()


@pytest.mark.parametrize("secret", [{"signing_secret": "x"}, {"hmac_key": ""}, {"hmac_key": 42}, "plain"])
def test_a_malformed_secret_is_a_settings_error(
    fresh_factory: None, monkeypatch: pytest.MonkeyPatch, secret: Any
) -> None:
    # Given a secret without a usable hmac_key
    from aws_lambda_powertools.utilities import parameters

    monkeypatch.setattr(parameters, "get_secret", lambda *_, **__: secret)
    monkeypatch.setenv("CALLBACK_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:cb")

    # When a delivery needs the key, Then it fails loudly (misconfiguration), before any request
    with pytest.raises(SettingsError, match="hmac_key"):
        composition.callbacks().deliver("https://hooks.example.com/signoff", BODY)


# -- which addresses: at intake (the URL as written) and at delivery (what the name resolves to) -----


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://[::ffff:169.254.169.254]/", "link-local callback URLs are not allowed"),
        ("https://169.254.170.2/v2/credentials", "link-local callback URLs are not allowed"),
        ("https://[fe80::1]/", "link-local callback URLs are not allowed"),
        ("https://[fd00:ec2::254]/", "private addresses are not allowed"),
        ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata hosts are not allowed"),
        ("https://METADATA/", "cloud metadata hosts are not allowed"),
        ("https://0.0.0.0/", "unspecified addresses (0.0.0.0, ::) are not allowed"),
        ("https://[::]/", "unspecified addresses (0.0.0.0, ::) are not allowed"),
        ("https://10.1.2.3/", "private addresses are not allowed"),
        ("https://172.16.0.1/", "private addresses are not allowed"),
        ("https://192.168.1.1/", "private addresses are not allowed"),
        ("https://[::ffff:10.0.0.1]/", "private addresses are not allowed"),
        ("https://100.64.0.1/", "shared (carrier-grade NAT) addresses are not allowed"),
        ("https://100.100.100.200/", "shared (carrier-grade NAT) addresses are not allowed"),
        ("https://[fc00::1]/", "private addresses are not allowed"),
        ("https://224.0.0.1/", "multicast addresses are not allowed"),
        ("https://[ff02::1]/", "multicast addresses are not allowed"),
        ("https://[64:ff9b::a9fe:a9fe]/", "link-local callback URLs are not allowed"),  # NAT64 of 169.254.169.254
        ("https://[2002:a9fe:a9fe::]/", "link-local callback URLs are not allowed"),  # 6to4 of 169.254.169.254
        ("https://2130706433/", "IPv4 addresses in a non-standard form are not allowed"),  # 127.0.0.1
        ("https://0x7f.1/", "IPv4 addresses in a non-standard form are not allowed"),
        ("https://intranet/", "single-label host names are not allowed (not a public host)"),
        ("https://hooks.corp.internal/", "private-use host names are not allowed"),
        ("https://printer.local/", "private-use host names are not allowed"),
        ("https://hooks.example.com:99999/", "the callback URL is malformed"),
    ],
)
def test_private_metadata_and_special_addresses_are_refused_at_intake(url: str, reason: str) -> None:
    # The loopback escape hatch of the local stack allows loopback, and none of these
    assert _sender(allow_loopback=True).refusal(url) == reason


def test_the_loopback_escape_hatch_is_loopback_only() -> None:
    sender = _sender(allow_loopback=True)
    assert sender.refusal("http://[::ffff:127.0.0.1]:8081/hook") is None
    assert sender.refusal("http://0.0.0.0:8081/hook") is not None  # reaches this machine too, but never allowed
    assert sender.refusal("http://10.0.0.1:8081/hook") is not None


def test_public_addresses_and_names_are_accepted() -> None:
    sender = _sender(allow_loopback=False)
    for url in (
        "https://hooks.example.com/x",
        "https://203.0.113.7.nip.io/",
        "https://8.8.8.8/",
        "https://[2606:4700::1]/",
    ):
        assert sender.refusal(url) is None, url


@dataclass
class FakeResolver:
    """getaddrinfo's stand-in: answers in turn (the last repeats) and records each name asked."""

    answers: list[list[str]]
    asked: list[str] = field(default_factory=list)

    def __call__(self, host: str, port: int, *_: Any) -> list[tuple[int, int, int, str, tuple[Any, ...]]]:
        self.asked.append(host)
        addresses = self.answers[min(len(self.asked), len(self.answers)) - 1]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.5"], "private addresses are not allowed"),
        (["169.254.169.254"], "link-local callback URLs are not allowed"),
        (["::ffff:169.254.169.254"], "link-local callback URLs are not allowed"),
        (["fd00:ec2::254"], "private addresses are not allowed"),
        (["93.184.215.14", "127.0.0.1"], "loopback callback URLs are not allowed here"),  # one bad answer is enough
        (["0.0.0.0"], "unspecified addresses (0.0.0.0, ::) are not allowed"),
    ],
)
def test_a_name_resolving_to_a_refused_address_is_refused_at_delivery_without_connecting(
    addresses: list[str], reason: str
) -> None:
    # Given a public-looking name that resolves to an internal address (pytest-socket would raise on a connect)
    resolver = FakeResolver([addresses])
    sender = WebhookSender(KEY, sleep=FakeSleep(), resolve=resolver)

    # When a decision is delivered
    delivered, detail = sender.deliver("https://hooks.example.com/signoff", BODY)

    # Then it is refused once (not retried), naming the reason and the address
    assert not delivered
    assert detail.startswith(f"refused: {reason} (hooks.example.com resolves to ")
    assert resolver.asked == ["hooks.example.com"]


def test_delivery_connects_to_the_address_it_checked(serve: Callable[..., Receiver]) -> None:
    # Given a receiver on 127.0.0.1 and "localhost" resolving there (the local stack)
    receiver = serve((200, {}))
    port = receiver.url.split(":")[2].split("/")[0]
    resolver = FakeResolver([["127.0.0.1"]])
    sender = WebhookSender(KEY, sleep=FakeSleep(), resolve=resolver, allow_loopback=True)

    # When a decision is delivered to the name
    delivered, _ = sender.deliver(f"http://localhost:{port}/hook", BODY)

    # Then the name was resolved by the sender itself and the receiver got it
    assert delivered
    assert resolver.asked == ["localhost"]
    assert len(receiver.received) == 1


def test_an_answer_that_changes_between_attempts_is_checked_again(serve: Callable[..., Receiver]) -> None:
    # Given a receiver that fails once, and DNS that then points the name at the metadata service
    receiver = serve((503, {}), (200, {}))
    port = receiver.url.split(":")[2].split("/")[0]
    resolver = FakeResolver([["127.0.0.1"], ["169.254.169.254"]])
    sender = WebhookSender(KEY, sleep=FakeSleep(), resolve=resolver, allow_loopback=True)

    # When a decision is delivered
    delivered, detail = sender.deliver(f"http://localhost:{port}/hook", BODY)

    # Then the retry was refused before connecting
    assert not delivered
    assert detail == "refused: link-local callback URLs are not allowed (localhost resolves to 169.254.169.254)"
    assert len(receiver.received) == 1 and resolver.asked == ["localhost", "localhost"]


def test_a_resolved_loopback_address_is_refused_unless_allowed(serve: Callable[..., Receiver]) -> None:
    receiver = serve((200, {}))
    port = receiver.url.split(":")[2].split("/")[0]
    sender = WebhookSender(KEY, sleep=FakeSleep(), resolve=FakeResolver([["127.0.0.1"]]))

    # https to a public name that resolves to loopback (the static check cannot know)
    delivered, detail = sender.deliver(f"https://hooks.example.com:{port}/hook", BODY)

    assert not delivered and detail.startswith("refused: loopback callback URLs are not allowed here")
    assert receiver.received == []

"""Outgoing HTTP shared by every sender: redirects refused (against a server on 127.0.0.1, the
only address these tests may connect to), Retry-After, jittered backoff, loopback and allow-list
host checks."""

from __future__ import annotations

import ast
import random
import threading
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import build_opener

import pytest

from signoff.adapters import http_out
from signoff.adapters.http_out import (
    backoff_delay,
    host_matches,
    is_loopback_host,
    no_redirect_opener,
    retry_after_seconds,
)

pytestmark = pytest.mark.unit

NOW = 1_767_268_800.0  # 2026-01-01T12:00:00Z

# -- a redirecting server on 127.0.0.1 -------------------------------------------------------------


def _redirecting(paths: list[str]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            if self.path == "/start":
                self.send_response(302)
                self.send_header("Location", "/elsewhere")
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def serve(loopback: None) -> Iterator[Callable[[], tuple[str, list[str]]]]:
    """Starts a server that answers /start with a 302 to /elsewhere; (its URL, the paths it got)."""
    servers: list[ThreadingHTTPServer] = []

    def start() -> tuple[str, list[str]]:
        paths: list[str] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _redirecting(paths))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", paths

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_plain_opener_follows_the_servers_redirect(serve: Callable[[], tuple[str, list[str]]]) -> None:
    # The control for the test below: this server's 302 is one urllib would follow.
    url, paths = serve()

    with build_opener().open(f"{url}/start", timeout=5) as response:
        assert response.status == 200

    assert paths == ["/start", "/elsewhere"]


def test_the_no_redirect_opener_raises_the_3xx_and_goes_nowhere_else(
    serve: Callable[[], tuple[str, list[str]]],
) -> None:
    # Given a server that redirects
    url, paths = serve()

    # When the shared opener asks it, Then the 302 is raised as the answer
    with pytest.raises(HTTPError) as answered:
        no_redirect_opener().open(f"{url}/start", timeout=5)
    answered.value.close()

    assert answered.value.code == 302
    # And nothing was sent to where it pointed
    assert paths == ["/start"]


# -- Retry-After ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        (formatdate(NOW + 12, usegmt=True), 12.0),
        (formatdate(NOW - 60, usegmt=True), 0.0),  # a date already past: retry now, not in the past
    ],
    ids=["seconds", "padded-seconds", "zero", "http-date", "past-http-date"],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(value: str, expected: float) -> None:
    assert retry_after_seconds(value, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("value", [None, "", "soon", "1.5", "-5", "Mon, 99 Feb 2026 00:00:00 GMT"])
def test_unreadable_or_negative_retry_after_is_ignored(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None


# -- backoff --------------------------------------------------------------------------------------


@pytest.mark.parametrize("attempt", [1, 2, 3, 4, 5])
def test_backoff_is_jittered_within_half_to_all_of_the_doubling_ceiling(attempt: int) -> None:
    # Given a seeded generator and base 0.5: the ceiling is 0.5, 1, 2, 4, 8 seconds
    rng = random.Random(7)
    ceiling = 0.5 * 2 ** (attempt - 1)

    # When many delays are drawn
    delays = [backoff_delay(attempt, None, base=0.5, cap=30.0, rng=rng) for _ in range(200)]

    # Then each lies in [ceiling/2, ceiling], and they are spread out rather than one value
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert max(delays) - min(delays) > ceiling / 4


def test_backoff_never_shrinks_from_one_attempt_to_the_next() -> None:
    rng = random.Random(11)

    for _ in range(200):
        delays = [backoff_delay(attempt, None, base=0.5, cap=30.0, rng=rng) for attempt in (1, 2, 3, 4)]
        assert delays == sorted(delays)


def test_the_same_seed_gives_the_same_delays() -> None:
    first = [backoff_delay(n, None, base=0.5, cap=30.0, rng=random.Random(3)) for n in (1, 2, 3)]
    again = [backoff_delay(n, None, base=0.5, cap=30.0, rng=random.Random(3)) for n in (1, 2, 3)]

    assert first == again


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(7.0, 7.0), (30.0, 30.0), (120.0, 30.0)],
    ids=["as-asked", "at-the-cap", "capped"],
)
def test_a_longer_retry_after_is_honoured_up_to_the_cap(retry_after: float, expected: float) -> None:
    assert backoff_delay(1, retry_after, base=0.5, cap=30.0, rng=random.Random(5)) == expected


def test_a_retry_after_shorter_than_the_backoff_does_not_shorten_it() -> None:
    # Given the backoff a seeded generator gives for attempt 3 (in [1, 2] s)
    backoff = backoff_delay(3, None, base=0.5, cap=30.0, rng=random.Random(5))
    assert backoff >= 1.0

    # When the server asks for less, Then the sender still waits out its backoff
    assert backoff_delay(3, 0.0, base=0.5, cap=30.0, rng=random.Random(5)) == backoff


def test_the_cap_limits_what_retry_after_imposes_not_the_backoff() -> None:
    # The cap keeps a server from holding a sender past its deadline; the sender's own backoff is
    # bounded by how many attempts it makes.
    assert backoff_delay(6, None, base=1.0, cap=10.0, rng=random.Random(5)) >= 16.0


# -- hosts ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost", "LOCALHOST.", "::ffff:127.0.0.1", "127.0.0.1."]
)
def test_loopback_hosts_are_recognised(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host", ["128.0.0.1", "example.com", "localhost.example.com", "127.0.0.1.example.com", "::ffff:128.0.0.1", ""]
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


@pytest.mark.parametrize(
    ("host", "pattern"),
    [
        ("smba.botframework.com", "*.botframework.com"),
        ("europe.webchat.botframework.com", "*.botframework.com"),
        ("SMBA.BotFramework.com", " *.BOTFRAMEWORK.com "),
        ("smba.trafficmanager.net", "smba.trafficmanager.net"),
    ],
)
def test_a_host_matches_its_pattern(host: str, pattern: str) -> None:
    assert host_matches(host, pattern)


@pytest.mark.parametrize(
    ("host", "pattern"),
    [
        ("botframework.com.evil.io", "*.botframework.com"),
        ("evilbotframework.com", "*.botframework.com"),
        ("botframework.com", "*.botframework.com"),  # the wildcard is for subdomains only
        (".botframework.com", "*.botframework.com"),  # an empty label is no subdomain
        ("x.smba.trafficmanager.net", "smba.trafficmanager.net"),  # an exact host has no subdomains
        ("smba.trafficmanager.net.evil.io", "smba.trafficmanager.net"),
    ],
)
def test_a_host_that_only_resembles_the_pattern_does_not_match(host: str, pattern: str) -> None:
    assert not host_matches(host, pattern)


# -- what the Lambda layer may import -------------------------------------------------------------


def test_the_module_imports_nothing_the_layer_does_not_ship() -> None:
    # The layer ships adapters and domain, not tools or testing; surfaces and use cases sit above.
    tree = ast.parse(Path(http_out.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    signoff = {name for name in imported if name.split(".")[0] == "signoff"}

    assert "signoff.domain.urls" in signoff  # the check sees the imports at all
    assert sorted(name for name in signoff if not name.startswith("signoff.domain.")) == []

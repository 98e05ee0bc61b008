"""Unit tests: pure logic and in-memory fakes; no AWS, not even moto, and no network."""

import _socket
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import offline

# Captured at import (collection), before any test's offline() patch replaces them.
_REAL_CREATE_CONNECTION = socket.create_connection
_REAL_CONNECT = _socket.socket.connect


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    # Per test, not per session: a session-wide ban outlives this suite and would refuse the
    # loopback HTTP of end-to-end tests that run later on the same xdist worker.
    with offline():
        yield


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lift the suite's socket ban for 127.0.0.1 only (local test servers): every other address
    is still refused."""
    assert _REAL_CREATE_CONNECTION.__module__ == "socket"

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family == socket.AF_UNIX or address[0] in ("127.0.0.1", "::1"):
            return _REAL_CONNECT(sock, address)
        raise RuntimeError("tests must not open network connections")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", _REAL_CREATE_CONNECTION)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

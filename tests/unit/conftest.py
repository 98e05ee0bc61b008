"""Unit tests: pure logic and in-memory fakes; no AWS, not even moto, and no network."""

import _socket
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import offline

# Captured at import (collection), before the session's offline() patch replaces them.
_REAL_CREATE_CONNECTION = socket.create_connection
_REAL_CONNECT = _socket.socket.connect


@pytest.fixture(scope="session", autouse=True)
def _no_network() -> Iterator[None]:
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

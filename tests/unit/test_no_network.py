"""The network ban every suite runs under (pytest-socket, configured in pyproject's addopts): a test
reaches loopback and Unix sockets, and nothing else."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_socket import SocketConnectBlockedError

# pytest-socket warns as it refuses; here refusing is the expected outcome.
pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:A test tried to use socket:UserWarning")]

# Documentation addresses (RFC 5737, RFC 3849): never routed, so were the ban gone these tests would
# fail on a timeout rather than reach anyone.
FOREIGN = [(socket.AF_INET, ("192.0.2.1", 443)), (socket.AF_INET6, ("2001:db8::1", 443, 0, 0))]


@pytest.mark.parametrize(("family", "address"), FOREIGN, ids=["ipv4", "ipv6"])
def test_a_socket_cannot_connect_beyond_loopback(family: socket.AddressFamily, address: Any) -> None:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        with pytest.raises(SocketConnectBlockedError):
            sock.connect(address)


def test_an_http_request_beyond_loopback_is_refused() -> None:
    # The way the code under test connects (urllib over socket.create_connection); the ban's error
    # is no OSError, so neither urllib nor a retry loop can mistake it for a flaky network.
    with pytest.raises(SocketConnectBlockedError):
        urllib.request.urlopen("http://192.0.2.1/", timeout=1)


@pytest.fixture
def listening() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that accepts connections."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield int(server.getsockname()[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_is_allowed(listening: int, host: str) -> None:
    with socket.create_connection((host, listening), timeout=5) as sock:
        assert sock.getpeername()[:2] == ("127.0.0.1", listening)


def test_ipv6_loopback_is_allowed() -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with server, socket.create_connection(("::1", server.getsockname()[1]), timeout=5) as sock:
        assert sock.getpeername()[0] == "::1"


def test_unix_sockets_are_allowed(tmp_path: Path) -> None:
    # The CDK CLI and jsii talk over pipes and Unix sockets: the ban must leave those alone.
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
        server.bind(path)
        server.listen()
        client.connect(path)
        assert client.getpeername() == path

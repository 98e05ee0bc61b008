"""Unit tests: pure logic and in-memory fakes; no AWS, not even moto. The network ban is pytest-socket's,
for every suite (pyproject's addopts): loopback and Unix sockets only."""

import pytest


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that talk to a local test server on 127.0.0.1. pytest-socket already lets loopback
    through (and nothing else); this keeps a developer's HTTP(S)_PROXY from routing it elsewhere."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")

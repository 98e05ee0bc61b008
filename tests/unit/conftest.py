"""Unit tests: pure logic and in-memory fakes; no AWS, not even moto, and no network."""

from collections.abc import Iterator

import pytest

from tests.helpers import offline


@pytest.fixture(scope="session", autouse=True)
def _no_network() -> Iterator[None]:
    with offline():
        yield

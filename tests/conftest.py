"""Suite-wide settings: quiet Powertools and fake AWS credentials, set before any test imports
a handler, so nothing a test does can reach a real AWS account. The network ban (loopback and Unix
sockets only) is pytest-socket's, configured for every suite in pyproject's addopts."""

import os
from collections import Counter

import pytest

for _name, _value in {
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "signoff",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_name, _value)

# Credentials are forced rather than defaulted: a developer's real profile must never be used.
for _name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"):
    os.environ[_name] = "testing"
os.environ.pop("AWS_PROFILE", None)


def pytest_configure(config: pytest.Config) -> None:
    # Metrics are disabled in tests; Powertools still warns that a handler published none.
    config.addinivalue_line("filterwarnings", "ignore:No application metrics to publish:UserWarning")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test gets its own node id, or `-n 2` silently runs fewer tests than were collected:
    xdist schedules by node id. schemathesis 4 names each API operation's item
    "test[POST /v1/checkpoints]", but under pytest 9 all seven kept the function's node id, and
    `make test` fuzzed one operation of seven. Such items get their name as node id; any other
    duplicate stops the run."""
    for item in items:
        last = item.nodeid.rpartition("::")[2]
        if last != item.name and item.name.startswith(last + "[") and item.name.endswith("]"):
            # pytest 9 builds a function's id from its original name and its callspec, which
            # schemathesis does not give: the operation becomes the id's params, as a callspec would.
            item._id = item._id.with_params(item.name[len(last) + 1 : -1])  # type: ignore[attr-defined]
    duplicates = sorted(nodeid for nodeid, n in Counter(item.nodeid for item in items).items() if n > 1)
    if duplicates:
        raise pytest.UsageError(f"tests share node ids (xdist would run one of each): {duplicates}")

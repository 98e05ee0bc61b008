"""Suite-wide settings: quiet Powertools and fake AWS credentials, set before any test imports
a handler, so nothing a test does can reach a real AWS account. The network ban (loopback and Unix
sockets only) is pytest-socket's, configured for every suite in pyproject's addopts."""

import os

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

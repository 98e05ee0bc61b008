"""One place for Logger, Tracer and Metrics, shared by every function, and the logging policy of
every handler (`log_invocation`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "signoff"
NAMESPACE = "Signoff"

# botocore logs whole response bodies at DEBUG, secret values included: never below INFO.
logging.getLogger("botocore.parsers").setLevel(max(logging.getLogger("botocore.parsers").level, logging.INFO))

logger = Logger(service=SERVICE)
# X-Ray patches only what Signoff calls out through: AWS (botocore) and HTTP (http.client, under
# slack_sdk, the webhooks and the ticketing adapters). Patching everything importable would also
# trace each SQLite query of the helpdesk's retriever and import httpx/requests where present.
tracer = Tracer(service=SERVICE, patch_modules=("botocore", "httplib"))
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def log_invocation(correlation_id_path: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Every handler's logging: the Lambda context (and the request's correlation id) on each line;
    never the event, whatever POWERTOOLS_LOGGER_LOG_EVENT says (events carry task tokens, JWTs and
    chat payloads); and no key appended by an earlier invocation (`clear_state`)."""
    return logger.inject_lambda_context(correlation_id_path=correlation_id_path, log_event=False, clear_state=True)

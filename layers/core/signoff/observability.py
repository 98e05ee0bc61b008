"""One place for Logger, Tracer and Metrics, shared by every function."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "signoff"
NAMESPACE = "Signoff"

# botocore logs whole response bodies at DEBUG, secret values included: never below INFO.
logging.getLogger("botocore.parsers").setLevel(max(logging.getLogger("botocore.parsers").level, logging.INFO))

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

"""The audit archive on S3: one write-once gzip JSON Lines object per audit event."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from signoff.audit.archiver import ArchiveUnavailable

CONTENT_TYPE = "application/x-ndjson"


class S3Archive:
    def __init__(self, bucket: str, client: Any = None) -> None:
        self.bucket = bucket
        self._client = client

    @cached_property
    def client(self) -> Any:
        # Created on first use: no AWS call at import, and tests can start moto first.
        return self._client or boto3.client("s3")

    def put(self, key: str, body: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                # A .gz file, not a gzip-encoded JSON document: with Content-Encoding clients would
                # gunzip on download and Athena/DuckDB would then find plain text named .gz.
                ContentType=CONTENT_TYPE,
                # Write-once: a redelivered event does not add a version (or a locked copy under
                # Object Lock); S3 answers 412 and the event is already archived.
                IfNoneMatch="*",
                # Object Lock buckets require an integrity checksum on every put.
                ChecksumAlgorithm="SHA256",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
                return
            raise ArchiveUnavailable(f"s3://{self.bucket}/{key}: {exc}") from exc

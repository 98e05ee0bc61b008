"""The audit archiver: one DynamoDB stream record in, at most one S3 object out.

Only INSERTs of audit-event items are archived (events are append-only, so an INSERT is the one
moment an event exists in its final form). Each event is re-checked against its own hash before it
is written: a corrupt item raises `CorruptAuditEvent`, the stream record is reported failed and
ends in the archiver's dead-letter queue instead of being archived silently."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError

from signoff.adapters.dynamodb import _unmarshal, event_from_item
from signoff.archive import archive_key, archive_record, encode
from signoff.audit import AuditEvent
from signoff.errors import SignoffError

AUDIT_EVENT = "audit_event"  # item_type of EVT# items (signoff.adapters.dynamodb.event_item)
CONTENT_TYPE = "application/x-ndjson"


class ArchiveError(SignoffError):
    """An audit event could not be archived; the stream record must be retried or dead-lettered."""


class CorruptAuditEvent(ArchiveError):
    """An audit-event item that is malformed or does not match its own hash."""


class ArchiveUnavailable(ArchiveError):
    """The archive refused or failed the write (retried by the stream)."""


class Archive(Protocol):
    """Where archived audit events go: write-once objects by key."""

    def put(self, key: str, body: bytes) -> None:
        """Store body at key. A key that already exists keeps its object (keys and bodies are
        deterministic, so it already holds these bytes): writing again is not an error."""


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


class InMemoryArchive:
    """The archive as a dict, write-once like S3Archive; `puts` counts every write attempt."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put(self, key: str, body: bytes) -> None:
        self.puts += 1
        self.objects.setdefault(key, body)


def _where(image: Mapping[str, Any]) -> str:
    """pk/sk of an item in DynamoDB JSON, for error messages (never the item's data)."""
    return f"{image.get('pk', {}).get('S', '?')} {image.get('sk', {}).get('S', '?')}"


def _verified_event(image: Mapping[str, Any]) -> AuditEvent:
    try:
        event = event_from_item(_unmarshal(dict(image)))
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        # Only the exception's type: validation messages quote the input, i.e. the event's data.
        raise CorruptAuditEvent(f"{_where(image)}: not a valid audit event ({type(exc).__name__})") from None
    if event.hash != event.expected_hash():
        raise CorruptAuditEvent(f"{_where(image)}: content does not match its hash")
    return event


def archive_stream_record(record: Mapping[str, Any], archive: Archive) -> str | None:
    """Archive the audit event a DynamoDB stream record inserts; its key, or None when the record
    is anything else (checkpoint, vote or token items, MODIFY, REMOVE). The event source mapping
    filters those out already; this check keeps the local stack (moto ignores filters) honest."""
    if record.get("eventName") != "INSERT":
        return None
    image: Mapping[str, Any] = (record.get("dynamodb") or {}).get("NewImage") or {}
    if image.get("item_type", {}).get("S") != AUDIT_EVENT:
        return None
    event = _verified_event(image)
    key = archive_key(event)
    archive.put(key, encode([archive_record(event)]))
    return key

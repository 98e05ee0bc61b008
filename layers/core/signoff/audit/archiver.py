"""The audit archiver: one DynamoDB stream record in, at most one S3 object out.

Only INSERTs of audit-event items are archived (events are append-only, so an INSERT is the one
moment an event exists in its final form). Each event is re-checked against its own hash before it
is written: a corrupt item raises `CorruptAuditEvent`, the stream record is reported failed and
ends in the archiver's dead-letter queue instead of being archived silently."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from signoff.adapters.dynamodb import event_from_item
from signoff.audit.events import AuditEvent
from signoff.audit.records import archive_key, archive_record, encode
from signoff.domain.errors import SignoffError
from signoff.ports import Archive

AUDIT_EVENT = "audit_event"  # item_type of EVT# items (signoff.adapters.dynamodb.event_item)


class ArchiveError(SignoffError):
    """An audit event could not be archived; the stream record must be retried or dead-lettered."""


class CorruptAuditEvent(ArchiveError):
    """An audit-event item that is malformed or does not match its own hash."""


class ArchiveUnavailable(ArchiveError):
    """The archive refused or failed the write (retried by the stream)."""


def _where(image: Mapping[str, Any]) -> str:
    """pk/sk of an item, for error messages (never the item's data)."""
    return f"{image.get('pk', '?')} {image.get('sk', '?')}"


def _verified_event(image: Mapping[str, Any]) -> AuditEvent:
    try:
        event = event_from_item(dict(image))
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        # Only the exception's type: validation messages quote the input, i.e. the event's data.
        raise CorruptAuditEvent(f"{_where(image)}: not a valid audit event ({type(exc).__name__})") from None
    if event.hash != event.expected_hash():
        raise CorruptAuditEvent(f"{_where(image)}: content does not match its hash")
    return event


def archive_stream_record(record: DynamoDBRecord, archive: Archive) -> str | None:
    """Archive the audit event a DynamoDB stream record inserts; its key, or None when the record
    is anything else (checkpoint, vote or token items, MODIFY, REMOVE). The event source mapping
    filters those out already; this check keeps the local stack (moto ignores filters) honest.
    Powertools' data class decodes the record's DynamoDB JSON."""
    if record.event_name is not DynamoDBRecordEventName.INSERT or record.dynamodb is None:
        return None
    image = record.dynamodb.new_image
    if image.get("item_type") != AUDIT_EVENT:
        return None
    event = _verified_event(image)
    key = archive_key(event)
    archive.put(key, encode([archive_record(event)]))
    return key

"""The archiver: an INSERT of an audit-event item becomes one gzip JSON Lines object at its
deterministic key, the same bytes however often the stream delivers it; every other item and
change is ignored; a corrupt event is refused, never archived silently.

Stream records are built from the items the DynamoDB adapter really writes (captured from its
client calls), in the DynamoDB JSON a stream carries."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from signoff.adapters.dynamodb import DynamoCheckpointRepository
from signoff.audit.archiver import CorruptAuditEvent, archive_stream_record
from signoff.audit.events import AuditEvent, EventType
from signoff.audit.records import archive_key, archive_record, decode, event_from_record
from signoff.domain.models import Checkpoint, Vote, VoteKind
from signoff.ports import TaskToken
from signoff.testing.memory import InMemoryArchive
from tests.helpers import CALLER_ARN, make_request, memory_service

pytestmark = pytest.mark.unit

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/checkpoints/stream/2026-01-01T00:00:00.000"

# -- builders (also used by tests/integration/test_archiver_s3.py) ------------------------------


class _RecordingDynamoDB:
    """Stands in for the DynamoDB client: keeps every item the repository writes, marshalled."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def transact_write_items(self, TransactItems: list[dict[str, Any]]) -> None:  # noqa: N803 - boto3's names
        self.items += [write["Put"]["Item"] for write in TransactItems]

    def put_item(self, TableName: str, Item: dict[str, Any]) -> None:  # noqa: N803
        self.items.append(Item)


def checkpoint_with_items() -> tuple[Checkpoint, list[AuditEvent], dict[str, dict[str, Any]]]:
    """A real auto-approved checkpoint, its audit events, and the items the DynamoDB adapter writes
    for it (META, EVT#…, TOKEN, VOTE#…) by sort key, in DynamoDB JSON."""
    wired = memory_service()
    cp = wired.service.create(make_request("auto"), caller=CALLER_ARN, idempotency_key=None)
    events = wired.repo.events(cp.id)
    client = _RecordingDynamoDB()
    repo = DynamoCheckpointRepository("checkpoints", client=client)
    repo.create(cp, events)
    repo.put_token(cp.id, TaskToken(token="task-token", phase="initial", expires_at=cp.created_at))
    vote = Vote(approver="alice", name="Alice", kind=VoteKind.APPROVE, surface="slack", at=cp.created_at)
    repo.save(cp, expected=cp, events=[], vote=vote)
    return cp, events, {item["sk"]["S"]: item for item in client.items}


def stream_record(image: dict[str, Any], *, event_name: str = "INSERT", sequence_number: str = "1") -> DynamoDBRecord:
    """One DynamoDB stream record as Lambda receives it (NEW_AND_OLD_IMAGES), in Powertools' data class."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1767268800,
        "Keys": {"pk": image["pk"], "sk": image["sk"]},
        "SequenceNumber": sequence_number,
        "SizeBytes": 512,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if event_name != "REMOVE":
        dynamodb["NewImage"] = image
    if event_name != "INSERT":
        dynamodb["OldImage"] = image
    return DynamoDBRecord(
        {
            "eventID": f"event-{sequence_number}",
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": dynamodb,
            "eventSourceARN": STREAM_ARN,
        }
    )


def tampered(image: dict[str, Any]) -> dict[str, Any]:
    """An event item whose data was changed after it was hashed (the hash kept)."""
    changed = copy.deepcopy(image)
    data = json.loads(changed["data"]["S"])
    data["tampered"] = "rewritten-by-someone"
    changed["data"]["S"] = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return changed


# -- tests -------------------------------------------------------------------------------------


def test_an_inserted_audit_event_is_archived_at_its_key_as_the_event_itself() -> None:
    # Given the stream record of a real checkpoint's first audit event
    cp, events, items = checkpoint_with_items()
    requested = events[0]
    assert requested.type is EventType.REQUESTED
    archive = InMemoryArchive()
    # When it is archived
    key = archive_stream_record(stream_record(items["EVT#00000001"]), archive)
    # Then it lands under its day's partition, named after the checkpoint and sequence number
    day = requested.at.strftime("%Y-%m-%d")
    assert key == archive_key(requested) == f"audit/dt={day}/{cp.id}/00000001.jsonl.gz"
    assert list(archive.objects) == [key]
    # And the object holds exactly that event's record, from which the event and its hash come back
    (record,) = decode(archive.objects[key])
    assert record == archive_record(requested)
    restored = event_from_record(record)
    assert restored == requested and restored.hash == restored.expected_hash()
    assert record["checkpoint_id"] == cp.id and record["environment"] == cp.request.environment


def test_every_audit_event_of_a_checkpoint_gets_its_own_object() -> None:
    cp, events, items = checkpoint_with_items()
    archive = InMemoryArchive()
    keys = [archive_stream_record(stream_record(items[sk]), archive) for sk in sorted(items) if sk.startswith("EVT#")]
    assert keys == [archive_key(e) for e in events] and len(set(keys)) == len(events) >= 2
    assert sorted(archive.objects) == sorted(k for k in keys if k)


def test_a_redelivered_event_gives_the_same_key_and_the_same_bytes() -> None:
    # Given one event record delivered twice (a retried batch), to one archive and to another
    _, _, items = checkpoint_with_items()
    record = stream_record(items["EVT#00000002"])
    first, second, elsewhere = InMemoryArchive(), InMemoryArchive(), InMemoryArchive()
    # When each delivery is archived
    key = archive_stream_record(record, first)
    again = archive_stream_record(record, first)
    archive_stream_record(copy.deepcopy(record), second)
    archive_stream_record(stream_record(items["EVT#00000002"], sequence_number="99"), elsewhere)
    # Then the key and the bytes are identical: the archive holds the event exactly once
    assert key is not None and again == key
    assert first.puts == 2 and list(first.objects) == [key]
    assert first.objects[key] == second.objects[key] == elsewhere.objects[key]


@pytest.mark.parametrize("sort_key", ["META", "TOKEN", "VOTE#alice"])
def test_items_that_are_not_audit_events_are_ignored(sort_key: str) -> None:
    _, _, items = checkpoint_with_items()
    archive = InMemoryArchive()
    assert archive_stream_record(stream_record(items[sort_key]), archive) is None
    assert archive.puts == 0


@pytest.mark.parametrize("event_name", ["MODIFY", "REMOVE"])
def test_changes_to_an_audit_event_item_are_not_archived(event_name: str) -> None:
    # Events are append-only: only the INSERT is the event; the archive keeps what was inserted.
    _, _, items = checkpoint_with_items()
    archive = InMemoryArchive()
    assert archive_stream_record(stream_record(items["EVT#00000001"], event_name=event_name), archive) is None
    assert archive.puts == 0


def test_a_tampered_event_is_refused_and_not_archived() -> None:
    # Given an event item whose data was changed but whose hash was kept
    _, _, items = checkpoint_with_items()
    archive = InMemoryArchive()
    record = stream_record(tampered(items["EVT#00000001"]))
    # When it is archived / Then a typed error names the item (and not its data), and nothing is written
    with pytest.raises(CorruptAuditEvent, match="EVT#00000001: content does not match its hash") as raised:
        archive_stream_record(record, archive)
    assert "rewritten-by-someone" not in str(raised.value)
    assert archive.puts == 0


@pytest.mark.parametrize("broken", ["no hash", "seq not a number", "data not JSON"])
def test_a_malformed_event_item_is_refused(broken: str) -> None:
    _, _, items = checkpoint_with_items()
    image = copy.deepcopy(items["EVT#00000001"])
    if broken == "no hash":
        del image["hash"]
    elif broken == "seq not a number":
        image["seq"] = {"S": "first"}
    else:
        image["data"] = {"S": "{not json"}
    archive = InMemoryArchive()
    with pytest.raises(CorruptAuditEvent, match="not a valid audit event"):
        archive_stream_record(stream_record(image), archive)
    assert archive.puts == 0

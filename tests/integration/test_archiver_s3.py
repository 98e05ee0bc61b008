"""functions/archiver/handler.py as Lambda runs it, on a moto S3 bucket: a stream batch becomes one
object per audit event; a bad record is reported alone (partial batch response) while the others
are archived; redeliveries add nothing; an unavailable archive fails the records so they are
retried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws

from signoff import composition
from signoff.adapters.s3_archive import CONTENT_TYPE
from signoff.audit.records import archive_key, archive_record, encode
from tests.helpers import invoke, load_handler
from tests.unit.test_archiver import checkpoint_with_items, stream_record, tampered

pytestmark = pytest.mark.integration

BUCKET = "signoff-test-archive"


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A versioned archive bucket in moto, the archiver's environment, wiring rebuilt inside moto."""
    monkeypatch.setenv("ARCHIVE_BUCKET", BUCKET)
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        composition.reset()
        yield client
        composition.reset()


@pytest.fixture
def archived_metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """The business metrics the handler adds (Powertools' own output is disabled in tests)."""
    added: list[tuple[str, float]] = []
    metrics = load_handler("archiver").metrics
    monkeypatch.setattr(metrics, "add_metric", lambda name, unit, value: added.append((name, value)))
    return added


def _versions(s3: Any) -> dict[str, int]:
    listing = s3.list_object_versions(Bucket=BUCKET).get("Versions", [])
    counts: dict[str, int] = {}
    for version in listing:
        counts[version["Key"]] = counts.get(version["Key"], 0) + 1
    return counts


def _batch(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def test_a_bad_record_is_reported_alone_and_the_others_are_archived(
    s3: Any, archived_metrics: list[tuple[str, float]], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a batch: two checkpoints' first events, one tampered event, and a META item
    _, first_events, first = checkpoint_with_items()
    _, second_events, second = checkpoint_with_items()
    batch = _batch(
        stream_record(first["EVT#00000001"], sequence_number="100"),
        stream_record(tampered(first["EVT#00000002"]), sequence_number="101"),
        stream_record(first["META"], sequence_number="102"),
        stream_record(second["EVT#00000001"], sequence_number="103"),
    )
    # When the archiver handles it
    response = invoke("archiver", batch)
    # Then exactly the tampered record is reported failed (retried, then dead-lettered)
    assert response == {"batchItemFailures": [{"itemIdentifier": "101"}]}
    # And the two good events are archived, byte for byte, as gzip JSON Lines files
    good = [first_events[0], second_events[0]]
    assert _versions(s3) == {archive_key(e): 1 for e in good}
    for event in good:
        obj = s3.get_object(Bucket=BUCKET, Key=archive_key(event))
        assert obj["Body"].read() == encode([archive_record(event)])
        assert obj["ContentType"] == CONTENT_TYPE
        assert "ContentEncoding" not in obj  # else clients would gunzip the .gz on download
    assert archived_metrics == [("EventsArchived", 1), ("EventsArchived", 1)]
    # And the failure is logged with its reason, never with the record's data
    logged = caplog.text + "".join(str(vars(record)) for record in caplog.records)
    assert "audit event not archived" in logged and "EVT#00000002: content does not match its hash" in logged
    assert "rewritten-by-someone" not in logged


def test_a_redelivered_batch_adds_no_object_and_no_version(s3: Any) -> None:
    # Given a batch already archived
    _, events, items = checkpoint_with_items()
    batch = _batch(*(stream_record(items[f"EVT#{e.seq:08d}"], sequence_number=str(e.seq)) for e in events))
    assert invoke("archiver", batch) == {"batchItemFailures": []}
    # When the stream delivers it again / Then it succeeds and each event is still one object version
    assert invoke("archiver", batch) == {"batchItemFailures": []}
    assert _versions(s3) == {archive_key(e): 1 for e in events}


def test_an_unavailable_archive_fails_every_record_so_the_batch_is_retried(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an archive bucket that does not exist
    monkeypatch.setenv("ARCHIVE_BUCKET", "signoff-test-missing-bucket")
    composition.reset()
    _, _, items = checkpoint_with_items()
    batch = _batch(stream_record(items["EVT#00000001"], sequence_number="7"))
    # When the archiver handles a batch / Then the invocation fails (Lambda retries and bisects it)
    with pytest.raises(BatchProcessingError, match="All records failed"):
        invoke("archiver", batch)
    assert _versions(s3) == {}

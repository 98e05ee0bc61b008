"""DynamoDB stream -> Lambda event source mappings, run the way Lambda runs them.

moto's own mapping re-sends the whole stream on every write and drops a batch whose handler
fails, so the local stack polls the stream itself and applies the mapping's configuration from
the template: FilterCriteria (event patterns), BatchSize, ReportBatchItemFailures (retry from
the first failed record), BisectBatchOnFunctionError, MaximumRetryAttempts, and the on-failure
destination (an SQS message describing the batch, as Lambda sends it)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("signoff.local")

STREAMS_ENDPOINT = "https://streams.dynamodb.{region}.amazonaws.com"  # botocore's default is not mocked


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style pattern matching (the subset Lambda filters use here): a dict matches
    key by key, a list lists the allowed values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(k in value and matches(p, value[k]) for k, p in pattern.items())
    if isinstance(pattern, list):
        return any(matches(p, value) if isinstance(p, dict) else p == value for p in pattern)
    return bool(pattern == value)


@dataclass
class Mapping:
    function: str
    stream_arn: str
    batch_size: int = 100
    filters: list[dict[str, Any]] = field(default_factory=list)
    report_item_failures: bool = False
    bisect: bool = False
    max_retries: int = -1  # -1: until the record expires (Lambda's default)
    on_failure_queue: str | None = None  # queue URL

    def wanted(self, record: dict[str, Any]) -> bool:
        return not self.filters or any(matches(f, record) for f in self.filters)


@dataclass
class StreamPoller:
    """Polls each mapped stream in a background thread; `drain()` waits until all is delivered."""

    mappings: list[Mapping]
    invoke: Callable[[str, dict[str, Any]], Any]  # (function name, event) -> result; raises on error
    client: Any  # dynamodbstreams
    sqs: Any
    region: str
    interval: float = 0.1
    _stop: threading.Event = field(default_factory=threading.Event)
    _idle: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    delivered: int = 0
    dead_lettered: int = 0

    def start(self) -> StreamPoller:
        for mapping in self.mappings:
            thread = threading.Thread(target=self._run, args=(mapping,), name=f"stream-{mapping.function}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every mapping has delivered everything written so far: two full idle
        passes, since the pass running at the call may have read the stream before the last write."""
        deadline = time.monotonic() + timeout
        for _ in range(2):
            self._idle.clear()
            if not self._idle.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    # -- one mapping -----------------------------------------------------------------------------

    def _read(self, mapping: Mapping, positions: dict[str, str | None]) -> list[dict[str, Any]]:
        """New records of every shard since the last one read. The iterator is asked for afresh
        each time, from the last sequence number: moto replaces a table (and its stream shard)
        with a copy when a transaction is cancelled, and an old iterator would keep reading the
        orphaned shard."""
        shards = self.client.describe_stream(StreamArn=mapping.stream_arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            shard_id = shard["ShardId"]
            after = positions.get(shard_id)
            position = (
                {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
                if after
                else {"ShardIteratorType": "TRIM_HORIZON"}
            )
            iterator = self.client.get_shard_iterator(StreamArn=mapping.stream_arn, ShardId=shard_id, **position)
            page = self.client.get_records(ShardIterator=iterator["ShardIterator"], Limit=1000)
            found = page.get("Records", [])
            if found:
                positions[shard_id] = found[-1]["dynamodb"]["SequenceNumber"]
            records += found
        return records

    def _run(self, mapping: Mapping) -> None:
        positions: dict[str, str | None] = {}
        pending: list[dict[str, Any]] = []
        while not self._stop.is_set():
            pending += [self._lambda_record(r, mapping) for r in self._read(mapping, positions)]
            pending = [r for r in pending if mapping.wanted(r)]
            while pending:
                batch, pending = pending[: mapping.batch_size], pending[mapping.batch_size :]
                self._deliver(mapping, batch)
            self._idle.set()
            self._stop.wait(self.interval)

    def _lambda_record(self, record: dict[str, Any], mapping: Mapping) -> dict[str, Any]:
        return {
            "eventID": record.get("eventID", record["dynamodb"].get("SequenceNumber")),
            "eventName": record["eventName"],
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": _jsonable(record["dynamodb"]),
            "eventSourceARN": mapping.stream_arn,
        }

    def _deliver(self, mapping: Mapping, batch: list[dict[str, Any]]) -> None:
        """Deliver one batch with Lambda's retry semantics; give up to the on-failure queue."""
        attempts = 0
        while batch:
            failed_from = self._attempt(mapping, batch)
            if failed_from is None:
                self.delivered += len(batch)
                return
            attempts += 1
            if mapping.bisect and failed_from == 0 and len(batch) > 1:
                half = len(batch) // 2
                self._deliver(mapping, batch[:half])
                self._deliver(mapping, batch[half:])
                return
            batch = batch[failed_from:]  # retry from the first failed record
            if mapping.max_retries >= 0 and attempts > mapping.max_retries:
                self._dead_letter(mapping, batch)
                return
            time.sleep(min(0.05 * attempts, 0.5))

    def _attempt(self, mapping: Mapping, batch: list[dict[str, Any]]) -> int | None:
        """None when the whole batch succeeded, else the index to retry from."""
        try:
            result = self.invoke(mapping.function, {"Records": batch})
        except Exception as exc:  # noqa: BLE001 - a function error fails the whole batch, as in Lambda
            log.warning("stream batch failed in %s: %s", mapping.function, type(exc).__name__)
            return 0
        failures = (result or {}).get("batchItemFailures") if mapping.report_item_failures else None
        if not failures:
            return None
        ids = [r["dynamodb"]["SequenceNumber"] for r in batch]
        failed = [ids.index(f["itemIdentifier"]) for f in failures if f.get("itemIdentifier") in ids]
        return min(failed) if failed else 0

    def _dead_letter(self, mapping: Mapping, batch: list[dict[str, Any]]) -> None:
        self.dead_lettered += len(batch)
        if mapping.on_failure_queue is None:
            log.error("stream batch dropped after retries (no on-failure destination)")
            return
        body = {
            "requestContext": {"condition": "RetryAttemptsExhausted", "functionArn": mapping.function},
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": "local",
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "batchSize": len(batch),
                "streamArn": mapping.stream_arn,
            },
        }
        self.sqs.send_message(QueueUrl=mapping.on_failure_queue, MessageBody=json.dumps(body))


def _jsonable(value: Any) -> Any:
    """Stream records from boto3 carry datetimes and bytes; Lambda receives JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value

"""The local stack's stream poller delivers like Lambda's DynamoDB event source mapping: filters,
batches, partial batch failures retried from the first failure, bisecting, retries, and the
on-failure queue once retries are exhausted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.streams import STREAMS_ENDPOINT, Mapping, StreamPoller, matches

pytestmark = pytest.mark.integration
REGION = "us-east-1"
AUDIT_ONLY = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["audit_event"]}}}}


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        table = ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        sqs = boto3.client("sqs", region_name=REGION)
        yield {
            "ddb": ddb,
            "stream": table["TableDescription"]["LatestStreamArn"],
            "sqs": sqs,
            "dlq": sqs.create_queue(QueueName="dlq")["QueueUrl"],
            "streams": boto3.client(
                "dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT.format(region=REGION)
            ),
        }


def put(aws: dict[str, Any], pk: str, item_type: str = "audit_event") -> None:
    aws["ddb"].put_item(TableName="t", Item={"pk": {"S": pk}, "item_type": {"S": item_type}})


def poller(aws: dict[str, Any], handler: Any, **mapping: Any) -> StreamPoller:
    config = Mapping(function="archiver", stream_arn=aws["stream"], on_failure_queue=aws["dlq"], **mapping)
    return StreamPoller([config], handler, aws["streams"], aws["sqs"], REGION, interval=0.02).start()


def keys(event: dict[str, Any]) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]


def test_patterns_match_like_lambda_filters() -> None:
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": {"item_type": {"S": "audit_event"}}}}
    assert matches(AUDIT_ONLY, record)
    assert not matches(AUDIT_ONLY, {**record, "eventName": "MODIFY"})
    assert not matches(
        AUDIT_ONLY, {"eventName": "INSERT", "dynamodb": {"NewImage": {"item_type": {"S": "checkpoint"}}}}
    )


def test_only_matching_records_are_delivered_in_batches(aws: dict[str, Any]) -> None:
    seen: list[list[str]] = []
    p = poller(aws, lambda fn, event: seen.append(keys(event)), filters=[AUDIT_ONLY], batch_size=2)
    for pk in ("a", "b", "c"):
        put(aws, pk)
    put(aws, "meta", item_type="checkpoint")
    assert p.drain()
    p.stop()
    assert sorted(k for batch in seen for k in batch) == ["a", "b", "c"]
    assert all(len(batch) <= 2 for batch in seen)


def test_a_partial_failure_is_retried_from_the_first_failed_record(aws: dict[str, Any]) -> None:
    calls: list[list[str]] = []
    failed_once: set[str] = set()

    def handler(fn: str, event: dict[str, Any]) -> dict[str, Any]:
        calls.append(keys(event))
        bad = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] == "b" and "b" not in failed_once]
        failed_once.update("b" for _ in bad)
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in bad]}

    for pk in ("a", "b", "c"):  # written before polling starts: one batch
        put(aws, pk)
    p = poller(aws, handler, report_item_failures=True, batch_size=10, max_retries=3)
    assert p.drain()
    p.stop()
    assert calls[0] == ["a", "b", "c"] and calls[1] == ["b", "c"]
    assert p.dead_lettered == 0


def test_exhausted_retries_go_to_the_on_failure_queue(aws: dict[str, Any]) -> None:
    def broken(fn: str, event: dict[str, Any]) -> None:
        raise RuntimeError("S3 is down")

    p = poller(aws, broken, bisect=True, max_retries=1, batch_size=10)
    put(aws, "a")
    put(aws, "b")
    assert p.drain()
    p.stop()
    messages = aws["sqs"].receive_message(QueueUrl=aws["dlq"], MaxNumberOfMessages=10)["Messages"]
    infos = [json.loads(m["Body"])["DDBStreamBatchInfo"] for m in messages]
    assert sum(i["batchSize"] for i in infos) == 2 and p.dead_lettered == 2

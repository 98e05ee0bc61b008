"""The local stack's moto speed-ups answer exactly what moto answers: on real DynamoDB, DynamoDB
Streams and Step Functions responses, every value the serializer's shortcut picks is the value
moto's own picker picks."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize

from local import moto_speed
from local.streams import STREAMS_ENDPOINT

pytestmark = pytest.mark.integration

REGION = "us-east-1"


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Every picker call answers moto's value, checked against the shortcut where it applies."""
    counts = {"shortcut": 0, "moto": 0}

    def checked(self: Any, context: Any) -> Any:
        expected = moto_speed.original_pick(self, context)
        fast = moto_speed.fast_value(self, context)
        if fast is moto_speed.MISSING:
            counts["moto"] += 1
        else:
            counts["shortcut"] += 1
            assert fast == expected, (context.key, fast, expected)
        return expected

    monkeypatch.setattr(serialize.XFormedAttributePicker, "__call__", checked)
    with mock_aws():
        yield counts


def _every_attribute_type() -> dict[str, Any]:
    return {
        "pk": {"S": "CP#1"},
        "sk": {"S": "META"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\x01binary"},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
        "map": {"M": {"inner": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"SS": ["a", "b"]}}}]}}},
        "strings": {"SS": ["s1", "s2"]},
        "numbers": {"NS": ["1", "2"]},
        "blobs": {"BS": [b"a", b"b"]},
        "status_pk": {"S": "STATUS#PENDING"},
        "status_sk": {"S": "2026-11-30T00:00:00+00:00#cp_1"},
        # Attribute names that are also names of shapes or members in DynamoDB's model.
        "Item": {"S": "an attribute named Item"},
        "AttributeMap": {"S": "an attribute named AttributeMap"},
    }


def test_dynamodb_and_its_stream_answer_as_moto_does(compared: dict[str, int]) -> None:
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "status_pk", "status_sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [
                    {"AttributeName": "status_pk", "KeyType": "HASH"},
                    {"AttributeName": "status_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    item = _every_attribute_type()
    ddb.put_item(TableName="t", Item=item)
    got = ddb.get_item(TableName="t", Key={"pk": item["pk"], "sk": item["sk"]}, ConsistentRead=True)["Item"]
    assert got == item
    queried = ddb.query(
        TableName="t",
        IndexName="by-status",
        KeyConditionExpression="status_pk = :p AND status_sk >= :s",
        ExpressionAttributeValues={":p": {"S": "STATUS#PENDING"}, ":s": {"S": "2026"}},
        Limit=1,
    )
    assert queried["Items"] == [item] and queried["Count"] == 1
    updated = ddb.update_item(
        TableName="t",
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET n = n + :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    assert updated["Attributes"]["n"] == {"N": "13.5"}
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "t", "Item": {**item, "sk": {"S": "EVT#00000001"}}}},
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": item["pk"], "sk": item["sk"]},
                    "UpdateExpression": "SET yes = :f",
                    "ExpressionAttributeValues": {":f": {"BOOL": False}},
                }
            },
        ]
    )
    with pytest.raises(ddb.exceptions.TransactionCanceledException) as refused:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "t",
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                }
            ]
        )
    assert refused.value.response["CancellationReasons"][0]["Code"] == "ConditionalCheckFailed"
    assert len(ddb.scan(TableName="t")["Items"]) == 2
    described = ddb.describe_table(TableName="t")["Table"]
    assert described["GlobalSecondaryIndexes"][0]["IndexName"] == "by-status"

    streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT.format(region=REGION))
    shard = streams.describe_stream(StreamArn=described["LatestStreamArn"])["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=described["LatestStreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "INSERT", "MODIFY"]
    assert records[0]["dynamodb"]["NewImage"] == item
    assert compared["shortcut"] > 100  # the shortcut was taken, and agreed every time


def test_step_functions_answer_as_moto_does(compared: dict[str, int]) -> None:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    definition = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "Result": {"ok": True}, "End": True}}}
    arn = sfn.create_state_machine(
        name="m", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=arn, name="e", input='{"x": 1}')
    described = sfn.describe_execution(executionArn=started["executionArn"])
    assert described["name"] == "e" and described["stateMachineArn"] == arn
    assert [m["name"] for m in sfn.list_state_machines()["stateMachines"]] == ["m"]
    assert compared["shortcut"] > 0


def test_the_interpreters_clients_are_kept_per_region_service_and_role() -> None:
    moto_speed.install()
    moto_speed.install()  # idempotent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials

    make = lambda_eval_utils.boto_client_for
    with mock_aws():
        assert make(REGION, "lambda") is make(REGION, "lambda")
        assert make(REGION, "lambda") is not make("eu-west-1", "lambda")
        assert make(REGION, "lambda") is not make(REGION, "sqs")
        credentials = {"AccessKeyId": "a", "SecretAccessKey": "s", "SessionToken": "t"}
        assert make(REGION, "lambda", credentials) is not make(REGION, "lambda", credentials)
        # The interpreter's own credentials (a Lambda task's): one client per role
        role_a, role_b = (StateCredentials(role_arn=f"arn:aws:iam::123456789012:role/{n}") for n in "ab")
        assert make(REGION, "lambda", role_a) is make(REGION, "lambda", StateCredentials(role_arn=role_a.role_arn))
        assert make(REGION, "lambda", role_a) is not make(REGION, "lambda", role_b)
        assert make(REGION, "lambda", role_a) is not make(REGION, "lambda")


def test_the_interpreters_json_paths_are_parsed_once_and_find_what_a_fresh_parse_finds() -> None:
    moto_speed.install()
    from jsonpath_ng.ext import parse as fresh_parse
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    data = {"checkpoint": {"id": "cp_1", "votes": [{"by": "a"}, {"by": "b"}]}, "n": 2}
    for path in ("$.checkpoint.id", "$.checkpoint.votes[*].by", "$.checkpoint.votes[1]", "$"):
        assert json_path.parse(path) is json_path.parse(path)
        found = [m.value for m in json_path.parse(path).find(data)]
        assert found == [m.value for m in fresh_parse(path).find(data)]
        assert json_path.extract_json(path, data) == json_path.extract_json(path, copy.deepcopy(data))
    # ResultPath writes through its parsed path: the shared expression is unchanged by a write
    first, second = {"a": 1}, {"a": 2}
    result_path.parse("$.result").update_or_create(first, {"ok": True})
    result_path.parse("$.result").update_or_create(second, {"ok": False})
    assert first == {"a": 1, "result": {"ok": True}} and second == {"a": 2, "result": {"ok": False}}
    assert str(result_path.parse("$.result")) == "$.result"

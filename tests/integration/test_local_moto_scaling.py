"""The local stack's patches of moto's DynamoDB (infra/local/moto_scaling.py): a cancelled
transaction still rolls back exactly as on AWS, queries answer as before, and the work of a write
or a query no longer grows with what the table holds (counted, not timed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models.dynamo_type import Item
from moto.dynamodb.models.table import Table

from local import moto_scaling
from local.streams import STREAMS_ENDPOINT
from signoff.adapters.dynamodb import STATUS_INDEX
from tests.integration.conftest import TABLE_NAME, create_tables

pytestmark = pytest.mark.integration
REGION = "us-east-1"


@pytest.fixture
def ddb() -> Iterator[Any]:
    moto_scaling.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_tables(client)
        yield client


def meta(n: int, status: str = "PENDING", **extra: str) -> dict[str, Any]:
    item = {"pk": f"CP#{n}", "sk": "META", "status": status, "status_pk": f"STATUS#{status}", "status_sk": f"{n:06d}"}
    return {k: {"S": v} for k, v in {**item, **extra}.items()}


def put(ddb: Any, item: dict[str, Any]) -> None:
    ddb.put_item(TableName=TABLE_NAME, Item=item)


def get(ddb: Any, pk: str, sk: str = "META") -> dict[str, Any] | None:
    found: dict[str, Any] | None = ddb.get_item(
        TableName=TABLE_NAME, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")
    return found


def by_status(ddb: Any, status: str, limit: int = 1000) -> list[str]:
    """Every checkpoint with this status through the index, page by page."""
    found, start = [], None
    while True:
        args: dict[str, Any] = {
            "TableName": TABLE_NAME,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "status_pk = :p",
            "ExpressionAttributeValues": {":p": {"S": f"STATUS#{status}"}},
            "Limit": limit,
        }
        if start:
            args["ExclusiveStartKey"] = start
        page = ddb.query(**args)
        found += [i["pk"]["S"] for i in page["Items"]]
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def stream_records(ddb: Any) -> int:
    streams = boto3.client("dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT.format(region=REGION))
    arn = ddb.describe_table(TableName=TABLE_NAME)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    it = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return len(streams.get_records(ShardIterator=it, Limit=1000)["Records"])


def cancelled(ddb: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(TransactItems=items)
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons: list[dict[str, Any]] = caught.value.response["CancellationReasons"]
    return reasons


def test_a_cancelled_transaction_leaves_nothing_half_written(ddb: Any) -> None:
    # Given a checkpoint, one of its events, and the stream so far
    put(ddb, meta(1))
    put(ddb, {"pk": {"S": "CP#1"}, "sk": {"S": "EVT#1"}, "n": {"N": "1"}})
    before = {sk: get(ddb, "CP#1", sk) for sk in ("META", "EVT#1")}
    records = stream_records(ddb)
    # When a transaction puts a new item, updates and deletes existing ones, then fails a condition
    reasons = cancelled(
        ddb,
        [
            {"Put": {"TableName": TABLE_NAME, "Item": meta(2), "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Put": {"TableName": TABLE_NAME, "Item": meta(1, "APPROVED")}},
            {"Delete": {"TableName": TABLE_NAME, "Key": {"pk": {"S": "CP#1"}, "sk": {"S": "EVT#1"}}}},
            {
                "ConditionCheck": {
                    "TableName": TABLE_NAME,
                    "Key": {"pk": {"S": "CP#9"}, "sk": {"S": "META"}},
                    "ConditionExpression": "attribute_exists(pk)",
                }
            },
        ],
    )
    # Then DynamoDB's reasons name the failed condition only, and nothing changed anywhere
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert get(ddb, "CP#2") is None
    assert {sk: get(ddb, "CP#1", sk) for sk in ("META", "EVT#1")} == before
    assert stream_records(ddb) == records  # no stream record of a cancelled transaction
    assert by_status(ddb, "PENDING") == ["CP#1"] and by_status(ddb, "APPROVED") == []


def test_an_update_in_a_cancelled_transaction_is_undone(ddb: Any) -> None:
    put(ddb, meta(1, audit_seq="1"))
    before = get(ddb, "CP#1")
    reasons = cancelled(
        ddb,
        [
            {
                "Update": {
                    "TableName": TABLE_NAME,
                    "Key": {"pk": {"S": "CP#1"}, "sk": {"S": "META"}},
                    "UpdateExpression": "SET audit_seq = :s, note = :n",
                    "ExpressionAttributeValues": {":s": {"S": "2"}, ":n": {"S": "half"}},
                }
            },
            {"Put": {"TableName": TABLE_NAME, "Item": meta(2), "ConditionExpression": "attribute_exists(pk)"}},
        ],
    )
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert get(ddb, "CP#1") == before


def test_a_failed_condition_returns_the_old_item_when_asked(ddb: Any) -> None:
    put(ddb, meta(1, audit_seq="3"))
    reasons = cancelled(
        ddb,
        [
            {"Put": {"TableName": TABLE_NAME, "Item": meta(2)}},
            {
                "Put": {
                    "TableName": TABLE_NAME,
                    "Item": meta(1, "APPROVED"),
                    "ConditionExpression": "audit_seq = :old",
                    "ExpressionAttributeValues": {":old": {"S": "2"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
        ],
    )
    assert reasons[1]["Code"] == "ConditionalCheckFailed"
    assert reasons[1]["Item"]["audit_seq"] == {"S": "3"}
    assert get(ddb, "CP#2") is None and get(ddb, "CP#1") == meta(1, audit_seq="3")


def test_a_transaction_touching_one_key_twice_is_refused_whole(ddb: Any) -> None:
    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE_NAME, "Item": meta(5)}},
                {"Put": {"TableName": TABLE_NAME, "Item": meta(6)}},
                {"Put": {"TableName": TABLE_NAME, "Item": meta(5, "DENIED")}},
            ]
        )
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert get(ddb, "CP#5") is None and get(ddb, "CP#6") is None


def test_a_committed_transaction_writes_everything_and_streams_it(ddb: Any) -> None:
    put(ddb, meta(1))
    records = stream_records(ddb)
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE_NAME, "Item": meta(1, "APPROVED")}},
            {"Put": {"TableName": TABLE_NAME, "Item": {"pk": {"S": "CP#1"}, "sk": {"S": "EVT#2"}}}},
        ]
    )
    assert get(ddb, "CP#1") == meta(1, "APPROVED") and get(ddb, "CP#1", "EVT#2") is not None
    assert stream_records(ddb) == records + 2
    assert by_status(ddb, "APPROVED") == ["CP#1"] and by_status(ddb, "PENDING") == []


def test_the_status_index_follows_puts_updates_deletes_and_pages_in_order(ddb: Any) -> None:
    for n in range(1, 31):
        put(ddb, meta(n))
    by_status(ddb, "PENDING")  # the index map is built here; what follows must keep it exact
    for n in range(1, 31, 3):
        put(ddb, meta(n, "APPROVED"))
    for n in range(2, 31, 5):
        ddb.update_item(
            TableName=TABLE_NAME,
            Key={"pk": {"S": f"CP#{n}"}, "sk": {"S": "META"}},
            UpdateExpression="SET status_pk = :p",
            ExpressionAttributeValues={":p": {"S": "STATUS#DENIED"}},
        )
    ddb.delete_item(TableName=TABLE_NAME, Key={"pk": {"S": "CP#3"}, "sk": {"S": "META"}})
    ddb.update_item(  # an update that creates the item
        TableName=TABLE_NAME,
        Key={"pk": {"S": "CP#99"}, "sk": {"S": "META"}},
        UpdateExpression="SET status_pk = :p, status_sk = :s",
        ExpressionAttributeValues={":p": {"S": "STATUS#DENIED"}, ":s": {"S": "000099"}},
    )
    denied = [*range(2, 31, 5), 99]  # the update wins over an earlier approval (7, 22)
    approved = [n for n in range(1, 31, 3) if n not in denied]
    pending = [n for n in range(1, 31) if n not in approved and n not in denied and n != 3]
    for status, expected in (("PENDING", pending), ("APPROVED", approved), ("DENIED", denied)):
        want = [f"CP#{n}" for n in sorted(expected)]
        assert by_status(ddb, status) == want
        assert by_status(ddb, status, limit=4) == want  # paging with ExclusiveStartKey


def test_an_item_that_leaves_a_sparse_index_is_no_longer_listed(ddb: Any) -> None:
    # Given items in the index (a helpdesk hand-off awaiting its first response is one)
    for n in range(1, 4):
        put(ddb, meta(n))
    assert by_status(ddb, "PENDING") == ["CP#1", "CP#2", "CP#3"]  # the index map is built here
    # When one is rewritten without the index's attributes, and another loses them by update
    put(ddb, {"pk": {"S": "CP#2"}, "sk": {"S": "META"}, "status": {"S": "CLAIMED"}})
    ddb.update_item(
        TableName=TABLE_NAME, Key={"pk": {"S": "CP#3"}, "sk": {"S": "META"}}, UpdateExpression="REMOVE status_pk"
    )
    # Then the query lists only what is still in it (and does not trip over the stale entries)
    assert by_status(ddb, "PENDING") == ["CP#1"]


def test_a_partition_query_reads_that_partition_in_order(ddb: Any) -> None:
    for n in (1, 2):
        put(ddb, meta(n))
        for seq in (3, 1, 2):
            put(ddb, {"pk": {"S": f"CP#{n}"}, "sk": {"S": f"EVT#{seq}"}})
    found = ddb.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :e)",
        ExpressionAttributeValues={":pk": {"S": "CP#2"}, ":e": {"S": "EVT#"}},
    )["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in found] == [("CP#2", "EVT#1"), ("CP#2", "EVT#2"), ("CP#2", "EVT#3")]


# -- the work no longer grows with the table ----------------------------------------------------------


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts every stored item moto deep-copies and every full-table read (`Table.all_items`)."""
    counts = {"item_copies": 0, "full_reads": 0}
    copy_item, all_items = Item.__deepcopy__, Table.all_items

    def counting_copy(self: Item, memo: dict[int, Any]) -> Item:
        counts["item_copies"] += 1
        return copy_item(self, memo)

    def counting_all_items(self: Table) -> list[Item]:
        counts["full_reads"] += 1
        return all_items(self)

    monkeypatch.setattr(Item, "__deepcopy__", counting_copy)
    monkeypatch.setattr(Table, "all_items", counting_all_items)
    return counts


@pytest.mark.parametrize("stored", [10, 2000])
def test_a_transaction_copies_only_the_items_it_touches(ddb: Any, counted: dict[str, int], stored: int) -> None:
    for n in range(stored):
        put(ddb, meta(n))
    table_before = _table()
    counted["item_copies"] = 0
    # A checkpoint and its first event, as intake writes them; then a conflicting one, cancelled
    ddb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE_NAME, "Item": meta(stored + 1)}},
            {"Put": {"TableName": TABLE_NAME, "Item": {"pk": {"S": f"CP#{stored + 1}"}, "sk": {"S": "EVT#1"}}}},
        ]
    )
    cancelled(
        ddb,
        [
            {"Put": {"TableName": TABLE_NAME, "Item": meta(stored + 2)}},
            {"Put": {"TableName": TABLE_NAME, "Item": meta(0), "ConditionExpression": "attribute_not_exists(pk)"}},
        ],
    )
    # The only copies are the touched items that existed (CP#0, once); the table is never copied
    assert counted["item_copies"] == 1
    assert _table() is table_before
    assert get(ddb, f"CP#{stored + 2}") is None


@pytest.mark.parametrize("stored", [10, 2000])
def test_queries_never_read_the_whole_table(ddb: Any, counted: dict[str, int], stored: int) -> None:
    for n in range(stored):
        put(ddb, meta(n, "PENDING" if n % 100 == 0 else "APPROVED"))
    by_status(ddb, "PENDING")  # builds the index map once
    counted["full_reads"] = 0
    assert len(by_status(ddb, "PENDING")) == (stored + 99) // 100
    ddb.query(
        TableName=TABLE_NAME,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "CP#0"}},
    )
    assert counted["full_reads"] == 0


def _table() -> Table:
    from moto.dynamodb.models import dynamodb_backends

    table: Table = dynamodb_backends["123456789012"][REGION].tables[TABLE_NAME]
    return table

"""DynamoDB adapter of the checkpoint repository (the single table of DESIGN.md)."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from signoff.adapters.keys import (
    META,
    decode_token,
    encode_token,
    event_sk,
    pk,
    status_pk,
    status_since,
    status_sk,
)
from signoff.audit.events import AuditEvent
from signoff.domain.errors import AlreadyExists, DuplicateVote, InvalidPageToken, NotFound, StaleCheckpoint
from signoff.domain.models import Checkpoint, CheckpointPage, Status, Vote
from signoff.ports import TaskToken

STATUS_INDEX = "by-status"
TOKEN = "TOKEN"  # the approval workflow's task token: never in the META document
CALLER_TOKEN = "CALLER_TOKEN"  # an embedding workflow's task token
# A page token is the GSI query's LastEvaluatedKey: the table's and the index's keys, nothing else.
# DynamoDB answers any other ExclusiveStartKey with a ValidationException (a 500), so refuse it here.
_PAGE_KEY = frozenset({"pk", "sk", "status_pk", "status_sk"})
_ser = TypeSerializer()
_de = TypeDeserializer()


def _marshal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _ser.serialize(v) for k, v in item.items() if v is not None}


def _unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _de.deserialize(v) for k, v in item.items()}


def checkpoint_item(cp: Checkpoint) -> dict[str, Any]:
    return {
        "pk": pk(cp.id),
        "sk": META,
        "item_type": "checkpoint",
        "id": cp.id,
        "status": cp.status.value,
        "status_pk": status_pk(cp.status),
        "status_sk": status_sk(cp),
        "audit_seq": cp.audit_seq,
        "doc": cp.model_dump_json(),
    }


def event_item(event: AuditEvent) -> dict[str, Any]:
    return {
        "pk": pk(event.checkpoint_id),
        "sk": event_sk(event.seq),
        "item_type": "audit_event",
        "checkpoint_id": event.checkpoint_id,
        "seq": event.seq,
        "type": event.type.value,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "data": json.dumps(event.data, sort_keys=True, separators=(",", ":")),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def event_from_item(item: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        checkpoint_id=item["checkpoint_id"],
        seq=int(item["seq"]),
        type=item["type"],
        at=item["at"],
        actor=item["actor"],
        data=json.loads(item["data"]),
        prev_hash=item["prev_hash"],
        hash=item["hash"],
    )


def _condition_failed(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons
    return False


class DynamoCheckpointRepository:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @cached_property
    def client(self) -> Any:
        # Created on first use: no AWS call at import, and tests can start moto first.
        return self._client or boto3.client("dynamodb")

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _marshal(item), "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = _marshal(values)
            put["ExpressionAttributeNames"] = {"#status": "status"}
        return {"Put": put}

    def create(self, checkpoint: Checkpoint, events: list[AuditEvent]) -> None:
        writes = [self._put(checkpoint_item(checkpoint), "attribute_not_exists(pk)")]
        writes += [self._put(event_item(e), "attribute_not_exists(pk)") for e in events]
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if _condition_failed(exc):
                raise AlreadyExists(checkpoint.id) from None
            raise

    def get(self, checkpoint_id: str) -> Checkpoint:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=_marshal({"pk": pk(checkpoint_id), "sk": META}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            raise NotFound(checkpoint_id)
        return Checkpoint.model_validate_json(_unmarshal(resp["Item"])["doc"])

    def save(
        self, checkpoint: Checkpoint, *, expected: Checkpoint, events: list[AuditEvent], vote: Vote | None = None
    ) -> None:
        writes = [
            self._put(
                checkpoint_item(checkpoint),
                "#status = :expected_status AND audit_seq = :expected_seq",
                {":expected_status": expected.status.value, ":expected_seq": expected.audit_seq},
            )
        ]
        writes += [self._put(event_item(e), "attribute_not_exists(pk)") for e in events]
        if vote is not None:
            # One vote per person: a replayed or double click fails this condition.
            item = {
                "pk": pk(checkpoint.id),
                "sk": f"VOTE#{vote.approver}",
                "item_type": "vote",
                "vote": vote.model_dump_json(),
            }
            writes.append(self._put(item, "attribute_not_exists(pk)"))
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if (
                vote is not None
                and reasons
                and reasons[-1] == "ConditionalCheckFailed"
                and reasons[0] != "ConditionalCheckFailed"
            ):
                raise DuplicateVote(vote.approver) from None
            if _condition_failed(exc):
                raise StaleCheckpoint(checkpoint.id) from None
            raise

    def list_by_status(
        self, status: Status, *, limit: int, next_token: str | None, since: datetime | None = None
    ) -> CheckpointPage:
        values: dict[str, Any] = {":p": status_pk(status)}
        condition = "status_pk = :p"
        if since is not None:
            condition += " AND status_sk >= :since"
            values[":since"] = status_since(since)
        query: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _marshal(values),
            "Limit": limit,
        }
        if next_token:
            key = decode_token(next_token)
            if set(key) != _PAGE_KEY or key["status_pk"] != status_pk(status):
                raise InvalidPageToken()
            query["ExclusiveStartKey"] = _marshal(key)
        resp = self.client.query(**query)
        items = [Checkpoint.model_validate_json(_unmarshal(i)["doc"]) for i in resp.get("Items", [])]
        last = resp.get("LastEvaluatedKey")
        return CheckpointPage(items=items, next_token=encode_token(_unmarshal(last)) if last else None)

    def _put_plain(self, item: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.table_name, Item=_marshal(item))

    def _get_plain(self, checkpoint_id: str, sk: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table_name, Key=_marshal({"pk": pk(checkpoint_id), "sk": sk}), ConsistentRead=True
        )
        return _unmarshal(resp["Item"]) if "Item" in resp else None

    def put_token(self, checkpoint_id: str, token: TaskToken) -> None:
        self._put_plain(
            {"pk": pk(checkpoint_id), "sk": TOKEN, "item_type": "task_token", "token": token.model_dump_json()}
        )

    def get_token(self, checkpoint_id: str) -> TaskToken | None:
        item = self._get_plain(checkpoint_id, TOKEN)
        return TaskToken.model_validate_json(item["token"]) if item else None

    def put_caller_token(self, checkpoint_id: str, token: str) -> None:
        self._put_plain({"pk": pk(checkpoint_id), "sk": CALLER_TOKEN, "item_type": "caller_token", "token": token})

    def get_caller_token(self, checkpoint_id: str) -> str | None:
        item = self._get_plain(checkpoint_id, CALLER_TOKEN)
        return str(item["token"]) if item else None

    def events(self, checkpoint_id: str) -> list[AuditEvent]:
        paginator = self.client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :evt)",
            ExpressionAttributeValues=_marshal({":pk": pk(checkpoint_id), ":evt": "EVT#"}),
            ConsistentRead=True,
        )
        return [event_from_item(_unmarshal(i)) for page in pages for i in page.get("Items", [])]

"""Helpdesk conversations on the single table, beside the checkpoints.

A conversation is `pk = HD#<hd_id>`, `sk = META` (item_type helpdesk_conversation) and its audit events
`sk = EVT#<seq>` with item_type `audit_event`: the same item shape as a checkpoint's events, so the
stream filter and the archiver archive them unchanged, and `audit verify` checks their chain the same
way. Events are chained per conversation (not on one global chain): a conversation is written by one
Slack thread at a time, and a per-id chain needs no hot item every request would contend on.

The repeat index (`pk = HDQ#<channel>#<question key>`, `sk = LAST`) points at the latest answer to a
question in a channel; it is not an audit event and is never archived.

A conversation awaiting its first response carries `status_pk = HD#AWAITING` and `status_sk =
<deadline>#<id>`, so it sits in the table's status index (sparse: the attributes go when it is claimed,
resolved, sent back or escalated) and the sweep reads the overdue ones in deadline order, without a
scan and without a second index. An open incident is `pk = HDI#<symptom signature>`, `sk = OPEN`:
`conversation_id` and `open_until` (epoch seconds), written with a condition so two reports at once
open one incident."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from signoff.adapters.dynamodb import (
    STATUS_INDEX,
    _condition_failed,
    _marshal,
    _unmarshal,
    event_from_item,
    event_item,
)
from signoff.adapters.keys import META, event_sk
from signoff.audit.events import AuditEvent
from signoff.domain.errors import AlreadyExists, NotFound, StaleCheckpoint
from signoff.domain.helpdesk.conversation import Conversation, awaiting_first_response

CONVERSATION_ITEM = "helpdesk_conversation"
QUESTION_ITEM = "helpdesk_question"
INCIDENT_ITEM = "helpdesk_incident"
AWAITING_PK = "HD#AWAITING"  # the status index's partition of conversations awaiting a first response


def conversation_pk(conversation_id: str) -> str:
    return f"HD#{conversation_id}"


def question_pk(channel: str, key: str) -> str:
    return f"HDQ#{channel}#{key}"


def incident_pk(key: str) -> str:
    return f"HDI#{key}"


def conversation_item(conversation: Conversation) -> dict[str, Any]:
    item = {
        "pk": conversation_pk(conversation.id),
        "sk": META,
        "item_type": CONVERSATION_ITEM,
        "id": conversation.id,
        "audit_seq": conversation.audit_seq,
        "doc": conversation.model_dump_json(),
    }
    if awaiting_first_response(conversation) and conversation.first_response_due is not None:
        item["status_pk"] = AWAITING_PK
        item["status_sk"] = f"{_utc(conversation.first_response_due)}#{conversation.id}"
    return item


def _utc(at: datetime) -> str:
    """One fixed-width form, so index keys sort as times do."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def conversation_event_item(event: AuditEvent) -> dict[str, Any]:
    return {**event_item(event), "pk": conversation_pk(event.checkpoint_id), "sk": event_sk(event.seq)}


class DynamoConversationRepository:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("dynamodb")

    def _put(self, item: dict[str, Any], condition: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": _marshal(item), "ConditionExpression": condition}
        if values:
            put["ExpressionAttributeValues"] = _marshal(values)
        return {"Put": put}

    def create(self, conversation: Conversation, events: list[AuditEvent]) -> None:
        writes = [self._put(conversation_item(conversation), "attribute_not_exists(pk)")]
        writes += [self._put(conversation_event_item(e), "attribute_not_exists(pk)") for e in events]
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if _condition_failed(exc):
                raise AlreadyExists(conversation.id) from None
            raise

    def get(self, conversation_id: str) -> Conversation:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=_marshal({"pk": conversation_pk(conversation_id), "sk": META}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            raise NotFound(conversation_id)
        return Conversation.model_validate_json(_unmarshal(resp["Item"])["doc"])

    def save(self, conversation: Conversation, *, expected: Conversation, events: list[AuditEvent]) -> None:
        writes = [
            self._put(
                conversation_item(conversation), "audit_seq = :expected_seq", {":expected_seq": expected.audit_seq}
            )
        ]
        writes += [self._put(conversation_event_item(e), "attribute_not_exists(pk)") for e in events]
        try:
            self.client.transact_write_items(TransactItems=writes)
        except ClientError as exc:
            if _condition_failed(exc):
                raise StaleCheckpoint(conversation.id) from None
            raise

    def events(self, conversation_id: str) -> list[AuditEvent]:
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :evt)",
            ExpressionAttributeValues=_marshal({":pk": conversation_pk(conversation_id), ":evt": "EVT#"}),
            ConsistentRead=True,
        )
        return [event_from_item(_unmarshal(i)) for page in pages for i in page.get("Items", [])]

    def remember_question(self, channel: str, key: str, conversation_id: str, at: datetime) -> None:
        item = {
            "pk": question_pk(channel, key),
            "sk": "LAST",
            "item_type": QUESTION_ITEM,
            "conversation_id": conversation_id,
            "at": at.isoformat(),
        }
        self.client.put_item(TableName=self.table_name, Item=_marshal(item))

    def recent_question(self, channel: str, key: str) -> tuple[str, datetime] | None:
        resp = self.client.get_item(
            TableName=self.table_name,
            Key=_marshal({"pk": question_pk(channel, key), "sk": "LAST"}),
            ConsistentRead=True,
        )
        if "Item" not in resp:
            return None
        item = _unmarshal(resp["Item"])
        return str(item["conversation_id"]), datetime.fromisoformat(str(item["at"]))

    def due_first_response(self, until: datetime, *, limit: int) -> list[Conversation]:
        # '~' sorts after '#': a deadline of exactly `until` is due.
        resp = self.client.query(
            TableName=self.table_name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="status_pk = :p AND status_sk <= :until",
            ExpressionAttributeValues=_marshal({":p": AWAITING_PK, ":until": f"{_utc(until)}~"}),
            Limit=limit,
        )
        return [Conversation.model_validate_json(_unmarshal(i)["doc"]) for i in resp.get("Items", [])]

    def claim_incident(
        self, key: str, conversation_id: str, at: datetime, until: datetime, *, replacing: str | None = None
    ) -> str | None:
        condition = "attribute_not_exists(pk) OR open_until < :at OR conversation_id = :me"
        values: dict[str, Any] = {":at": int(at.timestamp()), ":me": conversation_id}
        if replacing is not None:
            condition += " OR conversation_id = :replacing"
            values[":replacing"] = replacing
        item = {
            "pk": incident_pk(key),
            "sk": "OPEN",
            "item_type": INCIDENT_ITEM,
            "conversation_id": conversation_id,
            "open_until": int(until.timestamp()),
        }
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_marshal(item),
                ConditionExpression=condition,
                ExpressionAttributeValues=_marshal(values),
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise
            held = self.client.get_item(
                TableName=self.table_name, Key=_marshal({"pk": incident_pk(key), "sk": "OPEN"}), ConsistentRead=True
            ).get("Item")
            # Gone between the two calls (it has no TTL, so only by hand): the next report claims it.
            return str(_unmarshal(held)["conversation_id"]) if held else None
        return None

    def extend_incident(self, key: str, conversation_id: str, until: datetime) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_marshal({"pk": incident_pk(key), "sk": "OPEN"}),
                UpdateExpression="SET open_until = :until",
                ConditionExpression="conversation_id = :me AND open_until < :until",
                ExpressionAttributeValues=_marshal({":me": conversation_id, ":until": int(until.timestamp())}),
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise

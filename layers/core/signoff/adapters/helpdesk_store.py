"""Helpdesk conversations on the single table, beside the checkpoints.

A conversation is `pk = HD#<hd_id>`, `sk = META` (item_type helpdesk_conversation) and its audit events
`sk = EVT#<seq>` with item_type `audit_event`: the same item shape as a checkpoint's events, so the
stream filter and the archiver archive them unchanged, and `audit verify` checks their chain the same
way. Events are chained per conversation (not on one global chain): a conversation is written by one
Slack thread at a time, and a per-id chain needs no hot item every request would contend on.

The repeat index (`pk = HDQ#<channel>#<question key>`, `sk = LAST`) points at the latest answer to a
question in a channel; it is not an audit event and is never archived."""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from signoff.adapters.dynamodb import _condition_failed, _marshal, _unmarshal, event_from_item, event_item
from signoff.adapters.keys import META, event_sk
from signoff.audit.events import AuditEvent
from signoff.domain.errors import AlreadyExists, NotFound, StaleCheckpoint
from signoff.domain.helpdesk.conversation import Conversation

CONVERSATION_ITEM = "helpdesk_conversation"
QUESTION_ITEM = "helpdesk_question"


def conversation_pk(conversation_id: str) -> str:
    return f"HD#{conversation_id}"


def question_pk(channel: str, key: str) -> str:
    return f"HDQ#{channel}#{key}"


def conversation_item(conversation: Conversation) -> dict[str, Any]:
    return {
        "pk": conversation_pk(conversation.id),
        "sk": META,
        "item_type": CONVERSATION_ITEM,
        "id": conversation.id,
        "audit_seq": conversation.audit_seq,
        "doc": conversation.model_dump_json(),
    }


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

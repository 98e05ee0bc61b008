"""What the Teams surface remembers between requests.

Conversation references: where the bot may post (a channel, a group chat, someone's 1:1 chat)
and through which Bot Connector service URL, learned when the bot is installed or added to a
conversation. Kept on the single table (pk `TEAMS#<conversation id>`, sk `REF`; the archiver
ignores them: they are not audit events).

Seen activities: the connector retries an invoke it got no answer to within ~15 s, with the same
activity id. The first delivery claims the id (a conditional put on the idempotency table, which
expires it after a day); a retry finds it claimed and changes nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

SEEN_TTL_SECONDS = 24 * 3600
REFERENCE_SK = "REF"
REFERENCE_ITEM = "teams_reference"


class ConversationReference(BaseModel):
    """Where and how to reach one Teams conversation."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str  # 19:…@thread.tacv2 (channel), a:… (1:1), 19:…@thread.v2 (group chat)
    service_url: str
    tenant_id: str
    kind: str = "channel"  # channel | personal | groupChat
    team_id: str | None = None
    user_aad: str | None = None  # the person of a 1:1 chat
    active: bool = True  # False once the bot was removed from the conversation
    updated_at: datetime


class ReferenceStore(Protocol):
    def put_reference(self, reference: ConversationReference) -> None:
        """Store (or replace) the reference of its conversation."""

    def get_reference(self, conversation_id: str) -> ConversationReference | None: ...


class ActivityLog(Protocol):
    def claim(self, activity_key: str) -> bool:
        """True the first time a key is seen (within a day); False for a retry."""

    def release(self, activity_key: str) -> None:
        """Forget a claim whose processing failed, so the connector's retry is processed."""


def reference_pk(conversation_id: str) -> str:
    return f"TEAMS#{conversation_id}"


class InMemoryReferenceStore:
    def __init__(self) -> None:
        self.references: dict[str, ConversationReference] = {}

    def put_reference(self, reference: ConversationReference) -> None:
        self.references[reference.conversation_id] = reference

    def get_reference(self, conversation_id: str) -> ConversationReference | None:
        return self.references.get(conversation_id)


class InMemoryActivityLog:
    """Claims with the DynamoDB adapter's condition: absent or expired."""

    def __init__(self, clock: Callable[[], float] = time.time, ttl_seconds: int = SEEN_TTL_SECONDS) -> None:
        self.claims: dict[str, float] = {}  # key -> expires at (Unix seconds)
        self._clock = clock
        self._ttl = ttl_seconds
        self._lock = threading.Lock()

    def claim(self, activity_key: str) -> bool:
        now = self._clock()
        with self._lock:
            if self.claims.get(activity_key, 0) > now:
                return False
            self.claims[activity_key] = now + self._ttl
            return True

    def release(self, activity_key: str) -> None:
        with self._lock:
            self.claims.pop(activity_key, None)


class _Dynamo:
    def __init__(self, table_name: str, client: Any = None) -> None:
        self.table_name = table_name
        self._client = client

    @cached_property
    def client(self) -> Any:
        # Created on first use: no AWS call at import, and tests can start moto first.
        return self._client or boto3.client("dynamodb")


class DynamoReferenceStore(_Dynamo):
    """References on the single table."""

    def put_reference(self, reference: ConversationReference) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": reference_pk(reference.conversation_id)},
                "sk": {"S": REFERENCE_SK},
                "item_type": {"S": REFERENCE_ITEM},
                "doc": {"S": reference.model_dump_json()},
            },
        )

    def get_reference(self, conversation_id: str) -> ConversationReference | None:
        found = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": reference_pk(conversation_id)}, "sk": {"S": REFERENCE_SK}},
            ConsistentRead=True,
        ).get("Item")
        return ConversationReference.model_validate_json(found["doc"]["S"]) if found else None


class DynamoActivityLog(_Dynamo):
    """Claims on the idempotency table (key `id`, TTL attribute `expiration`), beside Powertools'
    records; the `teams-activity#` prefix keeps the two apart."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        ttl_seconds: int = SEEN_TTL_SECONDS,
    ) -> None:
        super().__init__(table_name, client)
        self._clock = clock
        self._ttl = ttl_seconds

    @staticmethod
    def _id(activity_key: str) -> str:
        return f"teams-activity#{activity_key}"

    def claim(self, activity_key: str) -> bool:
        now = int(self._clock())
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"id": {"S": self._id(activity_key)}, "expiration": {"N": str(now + self._ttl)}},
                # TTL deletion lags by up to days: an expired claim counts as absent.
                ConditionExpression="attribute_not_exists(#id) OR #expiration < :now",
                ExpressionAttributeNames={"#id": "id", "#expiration": "expiration"},
                ExpressionAttributeValues={":now": {"N": str(now)}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, activity_key: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key={"id": {"S": self._id(activity_key)}})

"""What the Teams surface remembers between requests, on DynamoDB.

Conversation references: where the bot may post (a channel, a group chat, someone's 1:1 chat)
and through which Bot Connector service URL. Kept on the single table (pk `TEAMS#<conversation id>`,
sk `REF`; the archiver ignores them: they are not audit events).

Seen activities: the connector retries an invoke it got no answer to within ~15 s, with the same
activity id. The first delivery claims the id (a conditional put on the idempotency table, which
expires it after a day); a retry finds it claimed and changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from signoff.ports import ConversationReference

SEEN_TTL_SECONDS = 24 * 3600
REFERENCE_SK = "REF"
REFERENCE_ITEM = "teams_reference"


def reference_pk(conversation_id: str) -> str:
    return f"TEAMS#{conversation_id}"


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
    records; the prefix (`teams-activity#`, `slack-event#` for the helpdesk's Events API
    deliveries) keeps each kind apart."""

    def __init__(
        self,
        table_name: str,
        client: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        ttl_seconds: int = SEEN_TTL_SECONDS,
        prefix: str = "teams-activity#",
    ) -> None:
        super().__init__(table_name, client)
        self._clock = clock
        self._ttl = ttl_seconds
        self._prefix = prefix

    def _id(self, activity_key: str) -> str:
        return f"{self._prefix}{activity_key}"

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

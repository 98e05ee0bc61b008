"""Conversation references and seen activities on DynamoDB (moto, the tables the CDK stack
defines), and the in-memory fakes honouring the same conditions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from signoff.adapters.teams_store import DynamoActivityLog, DynamoReferenceStore
from signoff.ports import ConversationReference, ReferenceStore
from signoff.testing.memory import InMemoryActivityLog, InMemoryReferenceStore
from tests.helpers import Tables

pytestmark = pytest.mark.integration

REFERENCE = ConversationReference(
    conversation_id="19:release@thread.tacv2",
    service_url="https://smba.trafficmanager.net/amer/",
    tenant_id="5160ff00-0000-4000-8000-00000000c0de",
    team_id="19:signoff-team@thread.tacv2",
    updated_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_268_800.0

    def __call__(self) -> float:
        return self.now


def _round_trip(store: ReferenceStore) -> None:
    assert store.get_reference(REFERENCE.conversation_id) is None
    store.put_reference(REFERENCE)
    assert store.get_reference(REFERENCE.conversation_id) == REFERENCE
    removed = REFERENCE.model_copy(update={"active": False})
    store.put_reference(removed)
    assert store.get_reference(REFERENCE.conversation_id) == removed


def test_references_round_trip_in_memory() -> None:
    _round_trip(InMemoryReferenceStore())


def test_references_round_trip_on_the_single_table(tables: Tables) -> None:
    _round_trip(DynamoReferenceStore(tables.table_name))

    (item,) = tables.items()
    assert (item["pk"]["S"], item["sk"]["S"], item["item_type"]["S"]) == (
        "TEAMS#19:release@thread.tacv2", "REF", "teams_reference",
    )  # fmt: skip


@pytest.mark.parametrize("backend", ["memory", "dynamodb"])
def test_an_activity_is_claimed_once_a_day_and_a_released_claim_is_free_again(
    backend: str, request: pytest.FixtureRequest
) -> None:
    clock = Clock()
    if backend == "memory":
        log: InMemoryActivityLog | DynamoActivityLog = InMemoryActivityLog(clock)
    else:
        tables: Tables = request.getfixturevalue("tables")
        log = DynamoActivityLog(tables.idempotency_table_name, clock=clock)

    assert log.claim("19:release@thread.tacv2|f:1") is True
    assert log.claim("19:release@thread.tacv2|f:1") is False  # the connector's retry
    assert log.claim("19:release@thread.tacv2|f:2") is True

    log.release("19:release@thread.tacv2|f:2")
    assert log.claim("19:release@thread.tacv2|f:2") is True

    clock.now += 24 * 3600 + 1  # expired, even if TTL has not deleted it yet
    assert log.claim("19:release@thread.tacv2|f:1") is True

    if backend == "dynamodb":
        ids = sorted(item["id"]["S"] for item in tables.items(tables.idempotency_table_name))
        assert ids == ["teams-activity#19:release@thread.tacv2|f:1", "teams-activity#19:release@thread.tacv2|f:2"]

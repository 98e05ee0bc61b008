"""The DynamoDB repository against moto: item layout, conditional writes, paging on the GSI."""

from __future__ import annotations

import pytest

from signoff.adapters.dynamodb import DynamoCheckpointRepository
from signoff.adapters.keys import encode_token
from signoff.audit.events import EventType, verify_chain
from signoff.domain.errors import AlreadyExists, InvalidPageToken, NotFound, StaleCheckpoint
from signoff.domain.models import Checkpoint, OutcomeKind, OutcomeRequest, Status
from tests.helpers import CALLER_ARN, MemoryWiring, Tables, make_request, memory_service, next_change

pytestmark = pytest.mark.integration


@pytest.fixture
def service(repo: DynamoCheckpointRepository) -> MemoryWiring:
    """The real service over the DynamoDB repository (no idempotency store: not under test here)."""
    return memory_service(repo=repo)


def _create(service: MemoryWiring, gate: str) -> Checkpoint:
    return service.service.create(make_request(gate), caller=CALLER_ARN, idempotency_key=None)


def test_created_checkpoint_reads_back_with_its_events_in_order(
    service: MemoryWiring, repo: DynamoCheckpointRepository, tables: Tables
) -> None:
    # Given an auto checkpoint created through the service
    cp = _create(service, "auto")
    # When it is read back
    # Then the checkpoint is identical and its events come in order with an intact chain
    assert repo.get(cp.id) == cp
    events = repo.events(cp.id)
    assert [(e.seq, e.type) for e in events] == [(1, EventType.REQUESTED), (2, EventType.DECIDED)]
    assert verify_chain(events) == []
    # And the items follow the single-table layout
    assert tables.sort_keys() == ["EVT#00000001", "EVT#00000002", "META"]
    meta = next(i for i in tables.items() if i["sk"]["S"] == "META")
    assert meta["pk"]["S"] == f"CP#{cp.id}"
    assert meta["status_pk"]["S"] == "STATUS#APPROVED"


def test_get_unknown_checkpoint_is_not_found(repo: DynamoCheckpointRepository) -> None:
    with pytest.raises(NotFound):
        repo.get("cp_00000000000000000000000000")


def test_creating_the_same_checkpoint_twice_is_refused(
    service: MemoryWiring, repo: DynamoCheckpointRepository, tables: Tables
) -> None:
    # Given a stored checkpoint
    cp = _create(service, "soft")
    before = tables.items()
    # When the same id is created again / Then it is refused and nothing changes
    with pytest.raises(AlreadyExists):
        repo.create(cp.model_copy(update={"caller": "someone-else"}), repo.events(cp.id))
    assert tables.items() == before
    assert repo.get(cp.id) == cp


def test_save_with_the_current_checkpoint_writes_the_update_and_the_event(
    service: MemoryWiring, repo: DynamoCheckpointRepository
) -> None:
    cp = _create(service, "auto")
    updated, event = next_change(cp)
    repo.save(updated, expected=cp, events=[event])
    assert repo.get(cp.id) == updated
    events = repo.events(cp.id)
    assert [e.seq for e in events] == [1, 2, 3]
    assert verify_chain(events) == []


@pytest.mark.parametrize("after_seq", [None, 10], ids=["event-clashes-too", "only-the-checkpoint-is-stale"])
def test_save_with_a_stale_checkpoint_raises_and_writes_nothing(
    service: MemoryWiring, repo: DynamoCheckpointRepository, tables: Tables, after_seq: int | None
) -> None:
    # Given a checkpoint that someone else has already changed since we read it
    stale = _create(service, "auto")
    service.service.report_outcome(stale.id, OutcomeRequest(outcome=OutcomeKind.SUCCESS), caller="rival")
    before = tables.items()
    # When we save our change against the copy we read (its event at a free seq or not)
    updated, event = next_change(stale, after_seq=after_seq)
    with pytest.raises(StaleCheckpoint):
        repo.save(updated, expected=stale, events=[event])
    # Then neither the checkpoint nor an event was written
    assert tables.items() == before


def test_save_whose_event_already_exists_writes_nothing(
    service: MemoryWiring, repo: DynamoCheckpointRepository, tables: Tables
) -> None:
    # Given an event whose sequence number is already taken (the checkpoint itself matches)
    cp = _create(service, "auto")
    updated, clash = next_change(cp, after_seq=1)
    before = tables.items()
    # When it is saved / Then the whole transaction is refused
    with pytest.raises(StaleCheckpoint):
        repo.save(updated, expected=cp, events=[clash])
    assert tables.items() == before


def test_status_listing_pages_through_the_gsi_in_deadline_order(
    service: MemoryWiring, repo: DynamoCheckpointRepository
) -> None:
    # Given five pending checkpoints a minute apart and an approved one
    pending = []
    for _ in range(5):
        pending.append(_create(service, "soft").id)
        service.clock.advance(60)
    approved = _create(service, "auto").id
    # When the pending ones are listed two at a time
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        page = repo.list_by_status(Status.PENDING, limit=2, next_token=token)
        assert len(page.items) <= 2
        seen += [cp.id for cp in page.items]
        token = page.next_token
        if token is None:
            break
    # Then each comes once, soonest deadline first, and the approved one is not among them
    assert seen == pending
    assert [cp.id for cp in repo.list_by_status(Status.APPROVED, limit=10, next_token=None).items] == [approved]


def test_decided_checkpoints_are_listed_by_decision_time_and_since_is_one_key_range(
    service: MemoryWiring, repo: DynamoCheckpointRepository
) -> None:
    # Given three pending checkpoints a minute apart, cancelled newest first, a minute apart
    created = []
    for _ in range(3):
        created.append(_create(service, "soft").id)
        service.clock.advance(60)
    decided_at = {}
    for checkpoint_id in reversed(created):
        decided_at[checkpoint_id] = service.clock.now()
        service.service.cancel(checkpoint_id, actor=CALLER_ARN, reason="not needed")
        service.clock.advance(60)
    # When the cancelled ones are listed, all of them and only those decided since the second
    listed = repo.list_by_status(Status.CANCELLED, limit=10, next_token=None).items
    middle = created[1]
    since = repo.list_by_status(Status.CANCELLED, limit=10, next_token=None, since=decided_at[middle]).items
    # Then they come in decision order (not creation order), and `since` starts at the decision
    assert [cp.id for cp in listed] == list(reversed(created))
    assert [cp.id for cp in since] == [middle, created[0]]


def test_a_page_token_is_only_good_for_its_own_status(service: MemoryWiring, repo: DynamoCheckpointRepository) -> None:
    for _ in range(3):
        _create(service, "soft")
    token = repo.list_by_status(Status.PENDING, limit=1, next_token=None).next_token
    assert token is not None
    with pytest.raises(InvalidPageToken):
        repo.list_by_status(Status.APPROVED, limit=1, next_token=token)
    with pytest.raises(InvalidPageToken):
        repo.list_by_status(Status.PENDING, limit=1, next_token="%%% garbage %%%")


@pytest.mark.parametrize(
    "key",
    [
        {"status_pk": "STATUS#PENDING"},
        {"status_pk": "STATUS#PENDING", "status_sk": "2026-01-01T12:10:00+00:00#cp_x"},
        {"status_pk": "STATUS#PENDING", "status_sk": "s", "pk": "CP#cp_x", "sk": "META", "doc": "{}"},
    ],
    ids=["status-only", "no-table-keys", "extra-attribute"],
)
def test_a_tampered_page_token_is_refused_before_it_reaches_dynamodb(
    repo: DynamoCheckpointRepository, key: dict[str, str]
) -> None:
    # Given a token naming the right status but not shaped like the GSI's LastEvaluatedKey
    # (DynamoDB answers such an ExclusiveStartKey with a ValidationException; moto does not check)
    token = encode_token(key)
    # When it is used / Then it is an invalid page token (422), not a server error
    with pytest.raises(InvalidPageToken):
        repo.list_by_status(Status.PENDING, limit=1, next_token=token)

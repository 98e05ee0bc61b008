"""The hash-chained audit trail: an intact chain verifies; altering, dropping or re-linking any
event is reported with the checkpoint and the event's sequence number."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff.audit.events import GENESIS, AuditEvent, EventType, chain_event, verify_chain

pytestmark = pytest.mark.unit

CHECKPOINT = "cp_01jd5x4s7v9q0m3k2h8w6t1r0a"
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _chain(length: int = 4) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    kinds = [EventType.REQUESTED, EventType.DECIDED, EventType.OUTCOME_REPORTED]
    for i in range(length):
        events.append(
            chain_event(
                checkpoint_id=CHECKPOINT,
                prev=(events[-1].seq, events[-1].hash) if events else None,
                type=kinds[min(i, 2)],
                at=START + timedelta(minutes=i),
                actor=f"actor-{i}",
                data={"step": i, "note": "ok"},
            )
        )
    return events


def test_chain_starts_at_genesis_and_links_each_event_to_the_previous() -> None:
    events = _chain()
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert len({e.hash for e in events}) == 4


def test_intact_chain_verifies_in_any_order() -> None:
    events = _chain()
    assert verify_chain(events) == []
    assert verify_chain(list(reversed(events))) == []


def test_altered_event_data_is_reported_with_checkpoint_and_seq() -> None:
    # Given an intact chain whose second event's data is then changed
    events = _chain()
    events[1] = events[1].model_copy(update={"data": {"step": 1, "note": "approved by mallory"}})
    # When the chain is verified
    problems = verify_chain(events)
    # Then exactly that event is reported as altered
    assert problems == [f"{CHECKPOINT} event 2: content does not match its hash (altered)"]


def test_altered_actor_is_reported() -> None:
    events = _chain()
    events[2] = events[2].model_copy(update={"actor": "someone-else"})
    assert verify_chain(events) == [f"{CHECKPOINT} event 3: content does not match its hash (altered)"]


@pytest.mark.parametrize(("dropped", "reported_at", "gap"), [(1, 3, "2..2"), (0, 2, "1..1")])
def test_deleted_event_is_reported_with_checkpoint_and_seq(dropped: int, reported_at: int, gap: str) -> None:
    # Given an intact chain with one event deleted
    events = _chain()
    del events[dropped]
    # When verified / Then the event after the gap names the missing sequence numbers
    problems = verify_chain(events)
    assert problems == [f"{CHECKPOINT} event {reported_at}: events {gap} are missing"]


def test_relinked_prev_hash_is_reported_even_when_the_event_hash_is_recomputed() -> None:
    # Given a chain where event 3 was rebuilt, with a valid own hash, to follow event 1 instead of 2
    events = _chain()
    events[2] = chain_event(
        checkpoint_id=CHECKPOINT,
        prev=(2, events[0].hash),
        type=events[2].type,
        at=events[2].at,
        actor=events[2].actor,
        data=events[2].data,
    )
    assert events[2].hash == events[2].expected_hash()
    # When verified / Then the broken link is reported at event 3, and event 4 no longer follows it
    assert verify_chain(events) == [
        f"{CHECKPOINT} event 3: prev_hash does not match the previous event",
        f"{CHECKPOINT} event 4: prev_hash does not match the previous event",
    ]


def test_swapped_prev_hashes_are_reported_for_both_events() -> None:
    events = _chain()
    events[1], events[2] = (
        events[1].model_copy(update={"prev_hash": events[2].prev_hash}),
        events[2].model_copy(update={"prev_hash": events[1].prev_hash}),
    )
    problems = verify_chain(events)
    assert f"{CHECKPOINT} event 2: prev_hash does not match the previous event" in problems
    assert f"{CHECKPOINT} event 3: prev_hash does not match the previous event" in problems
    assert f"{CHECKPOINT} event 2: content does not match its hash (altered)" in problems


def test_hash_covers_everything_but_itself() -> None:
    event = _chain(1)[0]
    assert set(event.content()) == set(AuditEvent.model_fields) - {"hash"}
    assert event.hash == event.expected_hash()

"""The ledger: every change is decided from the current state and saved conditionally on it with
its audit events chained to the existing head; a concurrent writer makes the save stale and the
change is decided again, and a checkpoint that keeps changing ends in a Conflict."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from signoff.audit import changes
from signoff.audit.changes import SAVE_ATTEMPTS, Change, Entry, apply_change, chain, decision_data
from signoff.audit.events import GENESIS, AuditEvent, EventType, verify_chain
from signoff.domain.acts import Act, Actor, Refusal
from signoff.domain.errors import Conflict, StaleCheckpoint
from signoff.domain.models import Checkpoint, Status
from signoff.usecases.decisions import ActResult
from tests.gates import BOB, CAROL, MALLORY, Gates, InterleavingRepository, actor, gates, stranger

pytestmark = pytest.mark.unit


@pytest.fixture
def g() -> Iterator[Gates]:
    wired = gates()
    yield wired
    wired.assert_chains()


class StaleRepository(InterleavingRepository):
    """Every save (or the first `stale` saves) finds the checkpoint changed."""

    def __init__(self, inner: Any, stale: int | None = None) -> None:
        super().__init__(inner)
        self.stale = stale

    def save(self, checkpoint: Checkpoint, *, expected: Checkpoint, events: list[AuditEvent], vote: Any = None) -> None:
        self.saves += 1
        if self.stale is None or self.saves <= self.stale:
            raise StaleCheckpoint(checkpoint.id)
        self.inner.save(checkpoint, expected=expected, events=events, vote=vote)


def _note(text: str) -> Entry:
    return Entry(EventType.INFO_REQUESTED, "tester", {"note": text})


# -- chain -------------------------------------------------------------------------------------


def test_chain_links_new_events_to_the_existing_head(g: Gates) -> None:
    # Given a checkpoint with two recorded events
    cp = g.create("hard")
    existing = g.events(cp.id)
    assert cp.audit_seq == 2 and cp.audit_head == existing[-1].hash
    # When two more entries are chained
    new = chain(cp, [_note("a"), _note("b")], g.clock.now())
    # Then they continue the sequence from the head, each linked to the one before
    assert [e.seq for e in new] == [3, 4]
    assert new[0].prev_hash == cp.audit_head
    assert new[1].prev_hash == new[0].hash
    assert all(e.checkpoint_id == cp.id and e.at == g.clock.now() for e in new)
    assert verify_chain(existing + new) == []


def test_chain_of_a_new_checkpoint_starts_at_genesis(g: Gates) -> None:
    cp = g.create("hard").model_copy(update={"audit_seq": 0, "audit_head": None})
    [first] = chain(cp, [_note("first")], g.clock.now())
    assert (first.seq, first.prev_hash) == (1, GENESIS)


def test_chain_of_nothing_is_nothing(g: Gates) -> None:
    assert chain(g.create("hard"), [], g.clock.now()) == []


# -- apply_change ------------------------------------------------------------------------------


def test_apply_change_saves_updates_and_events_and_moves_the_head(g: Gates) -> None:
    cp = g.create("hard")
    updated = apply_change(g.repo, g.clock, cp.id, lambda current: Change({"escalated": True}, [_note("x")]))
    assert updated == g.repo.get(cp.id)
    assert updated.escalated
    events = g.events(cp.id)
    assert (updated.audit_seq, updated.audit_head) == (3, events[-1].hash)
    assert events[-1].data == {"note": "x"}


def test_apply_change_without_events_keeps_the_head(g: Gates) -> None:
    cp = g.create("hard")
    updated = apply_change(g.repo, g.clock, cp.id, lambda current: Change({"escalated": True}))
    assert updated.escalated and (updated.audit_seq, updated.audit_head) == (cp.audit_seq, cp.audit_head)


def test_apply_change_retries_a_stale_save_from_the_fresh_state(g: Gates) -> None:
    # Given a store whose first three saves find the checkpoint changed
    cp = g.create("hard")
    repo = StaleRepository(g.repo, stale=3)
    seen: list[int] = []

    def decide(current: Checkpoint) -> Change:
        seen.append(current.audit_seq)
        return Change(entries=[_note("retried")])

    # When a change is applied
    updated = apply_change(repo, g.clock, cp.id, decide)  # type: ignore[arg-type]
    # Then it was decided again each time and saved once
    assert repo.saves == 4 and len(seen) == 4
    assert updated.audit_seq == cp.audit_seq + 1
    assert len(g.events(cp.id)) == cp.audit_seq + 1


def test_a_change_decided_again_after_a_concurrent_write_chains_after_it(g: Gates) -> None:
    # Given another writer that records an event while our change is being saved
    cp = g.create("hard")
    other = lambda: apply_change(g.repo, g.clock, cp.id, lambda c: Change(entries=[_note("other")]))  # noqa: E731
    repo = InterleavingRepository(g.repo, other)
    seen: list[int] = []

    def decide(current: Checkpoint) -> Change:
        seen.append(current.audit_seq)
        return Change({"escalated": True}, [_note("mine")])

    # When our change is applied
    updated = apply_change(repo, g.clock, cp.id, decide)  # type: ignore[arg-type]
    # Then it was decided from the state the other writer left, and both events are kept, chained
    assert seen == [2, 3]
    assert [e.data.get("note") for e in g.events(cp.id)][-2:] == ["other", "mine"]
    assert updated.audit_seq == 4 and updated.escalated


def test_apply_change_gives_up_with_a_conflict_after_save_attempts(g: Gates) -> None:
    # Given a checkpoint that changes under every save
    cp = g.create("hard")
    repo = StaleRepository(g.repo)
    calls: list[int] = []

    def decide(current: Checkpoint) -> Change:
        calls.append(1)
        return Change(entries=[_note("never")])

    # When a change is applied
    with pytest.raises(Conflict) as caught:
        apply_change(repo, g.clock, cp.id, decide)  # type: ignore[arg-type]
    # Then it gave up after SAVE_ATTEMPTS with a plain Conflict (a 409 the client may retry)
    assert type(caught.value) is Conflict
    assert "kept changing" in str(caught.value)
    assert repo.saves == len(calls) == SAVE_ATTEMPTS
    assert g.repo.get(cp.id) == cp


def test_a_refusing_decide_saves_nothing(g: Gates) -> None:
    cp = g.create("hard")

    def refuse(current: Checkpoint) -> Change:
        raise ValueError("not allowed")

    with pytest.raises(ValueError, match="not allowed"):
        apply_change(g.repo, g.clock, cp.id, refuse)
    assert g.repo.get(cp.id) == cp and len(g.events(cp.id)) == cp.audit_seq


# -- decision data -----------------------------------------------------------------------------


def test_decision_data_carries_every_field_the_audit_sli_checks(g: Gates) -> None:
    cp = g.create("hard")
    at = cp.created_at + timedelta(minutes=12, seconds=30)
    data = decision_data(cp, Status.EXPIRED, "policy (fail-closed)", "timeout", at)
    assert data == {
        "status": "EXPIRED",
        "decided_by": "policy (fail-closed)",
        "reason": "timeout",
        "gate": "hard",
        "risk": "high",
        "score": 50.0,
        "environment": "production",
        "policy_version": cp.assessment.policy_version,
        "requested_at": cp.created_at.isoformat(),
        "latency_seconds": 750.0,
        "approvers": [],
        "conditions": None,
    }


# -- contention ----------------------------------------------------------------------------------


def test_a_writer_outlasts_as_many_rivals_as_the_bound_allows(g: Gates) -> None:
    # Given a checkpoint on which SAVE_ATTEMPTS - 1 other writers commit before ours, one by one
    cp = g.create("hard")
    repo = StaleRepository(g.repo, stale=SAVE_ATTEMPTS - 1)
    # When our change is applied / Then it still lands, on its last attempt
    updated = apply_change(repo, g.clock, cp.id, lambda current: Change(entries=[_note("mine")]))  # type: ignore[arg-type]
    assert repo.saves == SAVE_ATTEMPTS
    assert updated.audit_seq == cp.audit_seq + 1
    assert SAVE_ATTEMPTS > 50  # the writers per checkpoint the design absorbs


class YieldingRepository(InterleavingRepository):
    """Hands the interpreter to other threads between reading and saving, so concurrent writers
    really do read the same head and collide."""

    def get(self, checkpoint_id: str) -> Checkpoint:
        found: Checkpoint = self.inner.get(checkpoint_id)
        time.sleep(0.0005)
        return found


def test_fifty_concurrent_refused_clicks_are_all_recorded(g: Gates, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a card and 50 clicks at once by people who may not approve it (and two real votes),
    # with no pause between attempts: the bound alone must carry every writer through
    monkeypatch.setattr(changes, "pause", lambda _: None)
    cp = g.create("hard")
    g.decisions.repo = YieldingRepository(g.repo)
    barrier = threading.Barrier(52)
    clickers = [stranger() for _ in range(25)] + [actor(MALLORY)] * 25 + [actor(BOB), actor(CAROL)]

    def click(who: Actor) -> ActResult:
        barrier.wait()
        return g.decisions.act(cp.id, who, Act.APPROVE, comment="ok")

    # When they all land together
    with ThreadPoolExecutor(52) as pool:
        results = list(pool.map(click, clickers))
    # Then nobody got an error, every refusal is in the trail and both votes count, chained
    refused = [r for r in results if not r.ok]
    assert len(refused) == 50 and all(r.refusal is Refusal.UNAUTHORIZED for r in refused)
    events = g.events(cp.id)
    assert sum(1 for e in events if e.type is EventType.REFUSED) == 50
    assert sum(1 for e in events if e.type is EventType.VOTED) == 2
    assert verify_chain(events) == []

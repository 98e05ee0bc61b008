"""The checkpoint service on in-memory fakes: creation by gate, idempotency, outcomes, paging and
optimistic concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from signoff.audit.events import EventType, verify_chain
from signoff.domain.errors import Conflict, InvalidPageToken, InvalidRequest, NotFound, StaleCheckpoint
from signoff.domain.models import Checkpoint, OutcomeKind, OutcomeRequest, Status
from signoff.testing.memory import InMemoryCheckpointRepository
from signoff.usecases.intake import IdempotencyKeyReused
from tests.gates import gates
from tests.helpers import CALLER_ARN, MemoryWiring, make_request, memory_service, next_change, stored_checkpoints

pytestmark = pytest.mark.unit

SUCCESS = OutcomeRequest(outcome=OutcomeKind.SUCCESS, details="deployed, canary green")


@pytest.fixture
def wired() -> MemoryWiring:
    return memory_service()


def _create(wired: MemoryWiring, gate: str, key: str | None = None, caller: str = CALLER_ARN) -> Checkpoint:
    return wired.service.create(make_request(gate), caller=caller, idempotency_key=key)


# -- creation ----------------------------------------------------------------------------------


def test_auto_gate_is_approved_at_once_with_a_decided_event(wired: MemoryWiring) -> None:
    # Given the auto sample / When it is created
    cp = _create(wired, "auto")
    # Then it is approved by the policy, with no deadline, and stored with two chained events
    assert cp.status is Status.APPROVED
    assert (cp.decided_by, cp.decided_at, cp.deadline) == ("policy", wired.clock.now(), None)
    assert wired.repo.get(cp.id) == cp
    events = wired.repo.events(cp.id)
    assert [e.type for e in events] == [EventType.REQUESTED, EventType.DECIDED]
    assert events[1].data["status"] == "APPROVED"
    assert events[1].data["policy_version"] == cp.assessment.policy_version
    assert (cp.audit_seq, cp.audit_head) == (2, events[-1].hash)
    assert verify_chain(events) == []


@pytest.mark.parametrize(
    ("gate", "wait"),
    [("soft", timedelta(minutes=10)), ("hard", timedelta(minutes=30) + timedelta(minutes=30))],
    ids=["soft-veto-window", "hard-deadline-plus-escalation"],
)
def test_waiting_gate_is_pending_until_its_deadline(wired: MemoryWiring, gate: str, wait: timedelta) -> None:
    # Given a sample that needs people / When it is created
    cp = _create(wired, gate)
    # Then it waits, with the deadline the gate profile sets, and one requested event
    assert cp.status is Status.PENDING
    assert cp.deadline == wired.clock.now() + wait
    assert cp.decided_at is None and cp.decided_by is None
    events = wired.repo.events(cp.id)
    assert [e.type for e in events] == [EventType.REQUESTED]
    assert events[0].data["deadline"] == cp.deadline.isoformat()
    assert events[0].data["caller"] == CALLER_ARN
    assert (cp.audit_seq, cp.audit_head) == (1, events[0].hash)


def test_unknown_environment_is_refused_and_nothing_is_stored(wired: MemoryWiring) -> None:
    # Given a request for an environment the policy does not know
    request = make_request("auto", {"environment": "moon"})
    # When it is created, with or without an idempotency key
    for key in (None, "k-moon"):
        with pytest.raises(InvalidRequest) as caught:
            wired.service.create(request, caller=CALLER_ARN, idempotency_key=key)
        # Then the error names the field and nothing is stored
        assert caught.value.field == "environment"
        assert "moon" in caught.value.message
    assert stored_checkpoints(wired.repo) == []


def test_score_is_a_dry_run(wired: MemoryWiring) -> None:
    assessment = wired.service.score(make_request("hard"))
    assert assessment.gate.kind.value == "hard"
    assert stored_checkpoints(wired.repo) == []


def test_requests_without_a_key_get_distinct_checkpoints(wired: MemoryWiring) -> None:
    first, second = _create(wired, "soft"), _create(wired, "soft")
    assert first.id != second.id
    assert len(stored_checkpoints(wired.repo)) == 2


# -- idempotency -------------------------------------------------------------------------------


@pytest.mark.parametrize(("gate", "events"), [("auto", 2), ("soft", 1)])
def test_same_key_and_body_returns_the_same_checkpoint_and_one_audit_trail(
    wired: MemoryWiring, gate: str, events: int
) -> None:
    # Given a checkpoint created with an Idempotency-Key
    first = _create(wired, gate, key="deploy-8812")
    # When the caller retries with the same key and body
    retry = _create(wired, gate, key="deploy-8812")
    # Then it gets the same checkpoint, and still exactly one checkpoint and one set of events exist
    assert retry == first
    assert [cp.id for cp in stored_checkpoints(wired.repo)] == [first.id]
    assert len(wired.repo.events(first.id)) == events


def test_same_key_with_another_body_is_a_conflict(wired: MemoryWiring) -> None:
    first = _create(wired, "auto", key="deploy-8812")
    other = make_request("auto", {"summary": "something else entirely"})
    with pytest.raises(IdempotencyKeyReused):
        wired.service.create(other, caller=CALLER_ARN, idempotency_key="deploy-8812")
    assert [cp.id for cp in stored_checkpoints(wired.repo)] == [first.id]
    assert len(wired.repo.events(first.id)) == 2


def test_the_same_key_from_another_caller_is_another_checkpoint(wired: MemoryWiring) -> None:
    mine = _create(wired, "soft", key="k1")
    theirs = _create(wired, "soft", key="k1", caller="arn:aws:iam::123456789012:role/other")
    assert mine.id != theirs.id
    assert len(stored_checkpoints(wired.repo)) == 2


def test_the_key_protects_for_as_long_as_its_checkpoint_exists(wired: MemoryWiring) -> None:
    # Given a checkpoint created with a key a month ago (no record expires: the key names the checkpoint)
    first = _create(wired, "auto", key="deploy-8812")
    wired.clock.advance(30 * 24 * 3600)
    # When the same key and body arrive again / Then the existing checkpoint comes back
    assert _create(wired, "auto", key="deploy-8812") == first
    assert len(stored_checkpoints(wired.repo)) == 1
    assert len(wired.repo.events(first.id)) == 2
    # And the same key with another body is refused as a reused key
    with pytest.raises(IdempotencyKeyReused) as caught:
        wired.service.create(make_request("soft"), caller=CALLER_ARN, idempotency_key="deploy-8812")
    assert isinstance(caught.value, Conflict)
    assert len(stored_checkpoints(wired.repo)) == 1


# -- reading -----------------------------------------------------------------------------------


def test_unknown_checkpoint_is_not_found(wired: MemoryWiring) -> None:
    with pytest.raises(NotFound):
        wired.service.get("cp_00000000000000000000000000")
    with pytest.raises(NotFound):
        wired.service.events("cp_00000000000000000000000000")


def test_pending_checkpoints_are_paged_soonest_deadline_first(wired: MemoryWiring) -> None:
    # Given five pending checkpoints created a minute apart, and one approved
    created = []
    for _ in range(5):
        created.append(_create(wired, "soft").id)
        wired.clock.advance(60)
    _create(wired, "auto")
    # When the pending ones are listed two at a time
    pages, token = [], None
    while True:
        page = wired.service.list_by_status(Status.PENDING, limit=2, next_token=token)
        pages.append([cp.id for cp in page.items])
        token = page.next_token
        if token is None:
            break
    # Then every pending checkpoint comes once, in deadline order, and the last page has no token
    assert pages == [created[0:2], created[2:4], created[4:5]]


@pytest.mark.parametrize(
    "token", ["%%% not a token %%%", "bm90IGpzb24", "eyJ4IjogMX0"], ids=["garbage", "not-json", "no-key"]
)
def test_garbage_page_token_is_an_invalid_request(wired: MemoryWiring, token: str) -> None:
    _create(wired, "soft")
    with pytest.raises(InvalidPageToken) as caught:
        wired.service.list_by_status(Status.PENDING, limit=2, next_token=token)
    assert isinstance(caught.value, InvalidRequest)
    assert caught.value.field == "next_token"


# -- outcome -----------------------------------------------------------------------------------


def test_outcome_is_recorded_once_with_a_chained_event(wired: MemoryWiring) -> None:
    # Given an approved checkpoint
    cp = _create(wired, "auto")
    wired.clock.advance(300)
    # When its outcome is reported
    updated = wired.service.report_outcome(cp.id, SUCCESS, caller=CALLER_ARN)
    # Then it is stored with who and when, and a third event extends the chain
    assert updated.outcome is not None
    assert (updated.outcome.outcome, updated.outcome.reported_by) == (OutcomeKind.SUCCESS, CALLER_ARN)
    assert updated.outcome.reported_at == wired.clock.now()
    assert wired.repo.get(cp.id) == updated
    events = wired.repo.events(cp.id)
    assert [e.type for e in events] == [EventType.REQUESTED, EventType.DECIDED, EventType.OUTCOME_REPORTED]
    assert (updated.audit_seq, updated.audit_head) == (3, events[-1].hash)
    assert verify_chain(events) == []
    # And a second report is a conflict that changes nothing
    with pytest.raises(Conflict, match="already has an outcome"):
        wired.service.report_outcome(cp.id, SUCCESS, caller=CALLER_ARN)
    assert len(wired.repo.events(cp.id)) == 3
    assert wired.repo.get(cp.id) == updated


def test_outcome_names_the_reporter_when_given(wired: MemoryWiring) -> None:
    cp = _create(wired, "auto")
    body = OutcomeRequest(outcome=OutcomeKind.ROLLED_BACK, reported_by="oncall@example.com")
    assert wired.service.report_outcome(cp.id, body, caller=CALLER_ARN).outcome.reported_by == "oncall@example.com"  # type: ignore[union-attr]


def test_outcome_of_a_pending_checkpoint_is_a_conflict(wired: MemoryWiring) -> None:
    cp = _create(wired, "soft")
    with pytest.raises(Conflict, match="only an approved action has an outcome"):
        wired.service.report_outcome(cp.id, SUCCESS, caller=CALLER_ARN)
    assert wired.repo.get(cp.id) == cp
    assert len(wired.repo.events(cp.id)) == 1


def test_outcome_of_an_unknown_checkpoint_is_not_found(wired: MemoryWiring) -> None:
    with pytest.raises(NotFound):
        wired.service.report_outcome("cp_00000000000000000000000000", SUCCESS, caller=CALLER_ARN)


# -- concurrency -------------------------------------------------------------------------------


class RacingRepository(InMemoryCheckpointRepository):
    """Before each of the first `races` saves, lets `concurrent` run, then reports the save stale."""

    def __init__(
        self, races: int, concurrent: Callable[[InMemoryCheckpointRepository, Checkpoint], None] | None = None
    ):
        super().__init__()
        self.races = races
        self.concurrent = concurrent
        self.saves = 0

    def save(self, checkpoint: Checkpoint, **kwargs: Any) -> None:
        self.saves += 1
        if self.saves <= self.races:
            if self.concurrent is not None:
                self.concurrent(self, kwargs["expected"])
            raise StaleCheckpoint(checkpoint.id)
        super().save(checkpoint, **kwargs)


def _racing(
    races: int, concurrent: Callable[[InMemoryCheckpointRepository, Checkpoint], None] | None = None
) -> tuple[MemoryWiring, RacingRepository]:
    repo = RacingRepository(races, concurrent)
    return memory_service(repo=repo), repo


def test_a_stale_save_is_retried() -> None:
    # Given a repository whose first save loses a race
    racing, repo = _racing(races=1)
    cp = racing.service.create(make_request("auto"), caller=CALLER_ARN, idempotency_key=None)
    # When an outcome is reported
    updated = racing.service.report_outcome(cp.id, SUCCESS, caller=CALLER_ARN)
    # Then the service re-reads and saves again, appending exactly one event
    assert repo.saves == 2
    assert repo.get(cp.id) == updated
    assert len(repo.events(cp.id)) == 3
    assert verify_chain(repo.events(cp.id)) == []


def test_a_retry_re_decides_on_what_the_other_writer_stored() -> None:
    # Given another writer that records an outcome while our save is in flight
    def other_writer(repo: InMemoryCheckpointRepository, current: Checkpoint) -> None:
        rival = memory_service(repo=repo)
        rival.service.report_outcome(current.id, OutcomeRequest(outcome=OutcomeKind.FAILURE), caller="rival")

    racing, repo = _racing(races=1, concurrent=other_writer)
    cp = racing.service.create(make_request("auto"), caller=CALLER_ARN, idempotency_key=None)
    # When we report ours / Then the retry sees theirs and refuses rather than overwrite it
    with pytest.raises(Conflict, match="already has an outcome"):
        racing.service.report_outcome(cp.id, SUCCESS, caller=CALLER_ARN)
    stored = repo.get(cp.id)
    assert stored.outcome is not None and stored.outcome.outcome is OutcomeKind.FAILURE
    assert len(repo.events(cp.id)) == 3


def test_the_in_memory_repository_refuses_a_stale_save(wired: MemoryWiring) -> None:
    # Given a checkpoint read before another writer reported its outcome
    stale = _create(wired, "auto")
    current = wired.service.report_outcome(stale.id, SUCCESS, caller="rival")
    # When a change based on the stale copy is saved (its event at a free seq)
    updated, event = next_change(stale, after_seq=10)
    # Then the fake refuses it like DynamoDB's condition would, and keeps what is there
    with pytest.raises(StaleCheckpoint):
        wired.repo.save(updated, expected=stale, events=[event])
    assert wired.repo.get(stale.id) == current
    assert [e.seq for e in wired.repo.events(stale.id)] == [1, 2, 3]


def test_a_checkpoint_that_keeps_changing_is_a_conflict() -> None:
    racing, repo = _racing(races=100)
    cp = racing.service.create(make_request("auto"), caller=CALLER_ARN, idempotency_key=None)
    with pytest.raises(Conflict, match="kept changing"):
        racing.service.report_outcome(cp.id, SUCCESS, caller=CALLER_ARN)
    assert 1 < repo.saves < 100  # retried, but not for ever
    assert repo.get(cp.id) == cp
    assert len(repo.events(cp.id)) == 2


def test_concurrent_requests_with_one_key_make_one_checkpoint_and_open_its_gate_once() -> None:
    # Given ten callers sending the same request with the same key at the same moment
    g = gates()
    barrier = threading.Barrier(10)

    def ask() -> Checkpoint:
        barrier.wait()
        return g.service.create(make_request("hard"), caller=CALLER_ARN, idempotency_key="deploy-8812")

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: ask(), range(10)))
    # Then every caller gets the one checkpoint (no "still in progress"), whose gate opened once
    assert {cp.id for cp in answers} == {answers[0].id}
    assert [cp.id for cp in stored_checkpoints(g.repo)] == [answers[0].id]
    types = [e.type for e in g.repo.events(answers[0].id)]
    assert types == [EventType.REQUESTED, EventType.GATE_OPENED]
    assert list(g.workflow.started) == [answers[0].id]
    assert verify_chain(g.repo.events(answers[0].id)) == []

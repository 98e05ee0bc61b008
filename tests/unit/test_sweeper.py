"""The pending-checkpoint sweep: PendingApprovals counts every pending checkpoint, StalledApprovals
the ones still pending more than the grace period past their deadline (a broken workflow), on every
sweep, zeros included; the stalled ids are logged; paging and its bound. Driven through the
production service on in-memory fakes and a fixed clock, and once through the Lambda handler."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from signoff import composition
from signoff.domain.acts import Act
from signoff.domain.models import CheckpointPage, Status
from signoff.observability import metrics
from signoff.testing.memory import InMemoryCheckpointRepository
from signoff.usecases import sweeper as sweeper_module
from signoff.usecases.sweeper import (
    ANSWER_GRACE,
    GRACE,
    LOOKBACK,
    PENDING_METRIC,
    STALLED_METRIC,
    UNANSWERED_METRIC,
    sweep,
)
from tests.gates import CAROL, Gates, actor, gates
from tests.helpers import CALLER_ARN, invoke

pytestmark = pytest.mark.unit

SCHEDULED_EVENT = {
    "version": "0",
    "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-01-01T12:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/Signoff-SweepSchedule"],
    "detail": {},
}


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    # Metrics is process-wide and, while disabled, never flushes: start and end each test empty.
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def emitted(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


class CountingRepository:
    """Delegates to the in-memory repository and counts the pages read, per status."""

    def __init__(self, inner: InMemoryCheckpointRepository) -> None:
        self.inner = inner
        self.pages: Counter[Status] = Counter()

    def list_by_status(
        self, status: Status, *, limit: int, next_token: str | None, since: datetime | None = None
    ) -> CheckpointPage:
        self.pages[status] += 1
        return self.inner.list_by_status(status, limit=limit, next_token=next_token, since=since)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RecordingLogger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def _record(self, level: str) -> Any:
        def log(message: str, extra: dict[str, Any] | None = None) -> None:
            self.lines.append((level, message, extra or {}))

        return log

    def __getattr__(self, level: str) -> Any:
        return self._record(level)


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> RecordingLogger:
    recorder = RecordingLogger()
    monkeypatch.setattr(sweeper_module, "logger", recorder)
    return recorder


def _staggered(g: Gates, count: int, gate: str = "soft") -> list[str]:
    """`count` pending checkpoints created a minute apart (so their deadlines are a minute apart)."""
    ids = []
    for _ in range(count):
        ids.append(g.create(gate).id)
        g.clock.advance(60)
    return ids


# -- counting ------------------------------------------------------------------------------------


def test_nothing_pending_still_reports_zeros() -> None:
    # Given no checkpoints / When the sweep runs
    g = gates()
    result = sweep(g.repo, g.clock)
    # Then both gauges are emitted as 0: silence would look like a sweep that did not run
    assert (result.pending, result.stalled, result.complete) == (0, [], True)
    assert emitted(PENDING_METRIC) == [0.0]
    assert emitted(STALLED_METRIC) == [0.0]
    assert metrics.metric_set[PENDING_METRIC]["Unit"] == "Count"


def test_pending_checkpoints_are_counted_and_decided_ones_are_not() -> None:
    # Given a soft and a hard checkpoint waiting, an auto one (decided at once) and a cancelled one
    g = gates()
    g.create("soft")
    g.create("hard")
    assert g.create("auto").status is Status.APPROVED
    cancelled = g.create("soft")
    g.service.cancel(cancelled.id, actor=CALLER_ARN, reason="superseded")
    # When the sweep runs before any deadline
    result = sweep(g.repo, g.clock)
    # Then only the two waiting ones count, and nothing is stalled
    assert (result.pending, result.stalled) == (2, [])
    assert (emitted(PENDING_METRIC), emitted(STALLED_METRIC)) == ([2.0], [0.0])


def test_a_checkpoint_stalls_only_once_its_deadline_is_more_than_the_grace_period_ago() -> None:
    # Given a soft checkpoint (10-minute veto window) and a hard one (a much later deadline)
    g = gates()
    soft, hard = g.create("soft"), g.create("hard")
    assert soft.deadline is not None and hard.deadline is not None
    assert hard.deadline > soft.deadline + GRACE + timedelta(seconds=1)
    # When the sweep runs exactly the grace period after the soft deadline
    g.clock.at = soft.deadline + GRACE
    at_grace = sweep(g.repo, g.clock)
    # and a second later
    g.clock.advance(1)
    past_grace = sweep(g.repo, g.clock)
    # Then a workflow still has the whole grace period to decide; one second more and it is stalled
    assert (at_grace.pending, at_grace.stalled) == (2, [])
    assert past_grace.pending == 2
    assert [(s.checkpoint_id, s.deadline, s.overdue_seconds) for s in past_grace.stalled] == [
        (soft.id, soft.deadline, int(GRACE.total_seconds()) + 1)
    ]
    assert emitted(STALLED_METRIC) == [0.0, 1.0]
    assert emitted(PENDING_METRIC) == [2.0, 2.0]


def test_a_checkpoint_decided_after_its_deadline_is_no_longer_stalled() -> None:
    # Given a soft checkpoint stalled past its deadline
    g = gates()
    cp = g.create("soft")
    assert cp.deadline is not None
    g.clock.at = cp.deadline + GRACE + timedelta(minutes=1)
    assert len(sweep(g.repo, g.clock).stalled) == 1
    # When its workflow finally applies the timeout rule
    g.decisions.apply_timeout(cp.id)
    # Then the next sweep finds nothing pending
    result = sweep(g.repo, g.clock)
    assert (result.pending, result.stalled) == (0, [])


# -- paging ------------------------------------------------------------------------------------


def test_every_page_is_counted_and_stalled_ones_come_first() -> None:
    # Given five soft checkpoints with deadlines a minute apart, the first three past deadline + grace
    g = gates()
    ids = _staggered(g, 5)
    third = g.repo.get(ids[2]).deadline
    assert third is not None
    g.clock.at = third + GRACE + timedelta(seconds=30)
    repo = CountingRepository(g.repo)
    # When the sweep reads them two at a time
    result = sweep(repo, g.clock, page_size=2)
    # Then all five are counted across three pages, and the three oldest deadlines are the stalled ones
    assert (result.pending, result.complete, repo.pages[Status.PENDING]) == (5, True, 3)
    assert [s.checkpoint_id for s in result.stalled] == ids[:3]
    assert [s.overdue_seconds for s in result.stalled] == [GRACE.seconds + 150, GRACE.seconds + 90, GRACE.seconds + 30]
    assert (emitted(PENDING_METRIC), emitted(STALLED_METRIC)) == ([5.0], [3.0])


def test_the_page_bound_stops_the_count_but_keeps_the_stalled_ones(log: RecordingLogger) -> None:
    # Given five soft checkpoints, all long past their deadlines
    g = gates()
    ids = _staggered(g, 5)
    g.clock.advance(3600)
    # When the sweep may read only two pages of two
    result = sweep(g.repo, g.clock, page_size=2, max_pages=2)
    # Then the pending count is a floor (4), said so in the log, and the stalled ones read are reported
    assert (result.pending, result.complete) == (4, False)
    assert [s.checkpoint_id for s in result.stalled] == ids[:4]
    assert any(level == "warning" and "lower bound" in message for level, message, _ in log.lines)
    assert emitted(PENDING_METRIC) == [4.0]


# -- logging -----------------------------------------------------------------------------------


def test_stalled_ids_are_logged_as_an_error_for_the_on_call(log: RecordingLogger) -> None:
    # Given two stalled checkpoints and one still inside its window
    g = gates()
    ids = _staggered(g, 2)
    waiting = g.create("hard").id
    last = g.repo.get(ids[-1]).deadline
    assert last is not None
    g.clock.at = last + GRACE + timedelta(minutes=1)
    # When the sweep runs
    sweep(g.repo, g.clock)
    # Then one error line names the stalled checkpoints, their deadlines and how late they are
    errors = [(message, extra) for level, message, extra in log.lines if level == "error"]
    assert len(errors) == 1
    message, extra = errors[0]
    assert "stalled" in message and extra["stalled"] == 2 and extra["grace_seconds"] == 300
    assert [c["checkpoint_id"] for c in extra["checkpoints"]] == ids
    assert waiting not in json.dumps(extra)
    assert all({"deadline", "overdue_s"} <= set(c) for c in extra["checkpoints"])


def test_the_logged_ids_are_capped(log: RecordingLogger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sweeper_module, "LOGGED_IDS", 2)
    g = gates()
    ids = _staggered(g, 3)
    g.clock.advance(3600)
    result = sweep(g.repo, g.clock)
    (extra,) = [extra for level, _, extra in log.lines if level == "error"]
    # The count stays exact even when the list is cut
    assert len(result.stalled) == extra["stalled"] == 3
    assert [c["checkpoint_id"] for c in extra["checkpoints"]] == ids[:2]


def test_nothing_stalled_logs_no_error(log: RecordingLogger) -> None:
    g = gates()
    g.create("hard")
    sweep(g.repo, g.clock)
    assert [level for level, _, _ in log.lines] == ["info"]


# -- unanswered callers -------------------------------------------------------------------------

HOOK = "https://hooks.example.com/signoff"
CALLER_TOKEN = "caller-task-token-of-the-embedding-workflow"


def _decided_unfinalized(g: Gates, *, hook: bool = True, caller: bool = True) -> str:
    """A hard checkpoint with a webhook and/or an embedding caller, denied in chat, whose approval
    execution died before Finalize (nothing answered)."""
    cp = g.create("hard", {"callback_url": HOOK} if hook else None)
    if caller:
        g.repo.put_caller_token(cp.id, CALLER_TOKEN)
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="freeze")
    return cp.id


def test_a_decision_nobody_delivered_is_found_once_the_grace_period_is_over(log: RecordingLogger) -> None:
    # Given a checkpoint decided in chat whose Finalize never ran
    g = gates()
    cp_id = _decided_unfinalized(g)
    # When the sweep runs inside the grace period, and just after it
    g.clock.advance(ANSWER_GRACE.total_seconds())
    inside = sweep(g.repo, g.clock)
    g.clock.advance(1)
    after = sweep(g.repo, g.clock)
    # Then Finalize is given its time first; then the webhook and the caller are both reported
    assert inside.unanswered == []
    assert [(u.checkpoint_id, u.waiting) for u in after.unanswered] == [(cp_id, ("webhook", "caller"))]
    assert emitted(UNANSWERED_METRIC) == [0.0, 1.0]
    (extra,) = [extra for level, message, extra in log.lines if level == "error" and "caller" in message]
    assert extra["checkpoints"][0]["checkpoint_id"] == cp_id and CALLER_TOKEN not in json.dumps(extra)


def test_finalize_answering_clears_it() -> None:
    # Given two unanswered decisions, one then finalized
    g = gates()
    finalized = _decided_unfinalized(g)
    waiting = _decided_unfinalized(g, hook=False)
    g.steps.finalize(finalized, None)
    g.clock.advance(ANSWER_GRACE.total_seconds() + 60)
    # When the sweep runs
    result = sweep(g.repo, g.clock)
    # Then only the one still waiting is reported, for its caller only
    assert [(u.checkpoint_id, u.waiting) for u in result.unanswered] == [(waiting, ("caller",))]


def test_a_webhook_that_failed_for_good_is_answered_and_one_never_tried_is_not() -> None:
    g = gates(callbacks_ok=False)
    failed = _decided_unfinalized(g, caller=False)
    g.steps.finalize(failed, None)  # the webhook's sender gave up: callback_failed, final
    never = _decided_unfinalized(g, caller=False)
    g.clock.advance(ANSWER_GRACE.total_seconds() + 60)
    assert [(u.checkpoint_id, u.waiting) for u in sweep(g.repo, g.clock).unanswered] == [(never, ("webhook",))]


def test_nothing_waits_for_auto_gates_checkpoints_without_a_caller_or_old_decisions() -> None:
    g = gates()
    old = _decided_unfinalized(g)
    g.clock.advance(LOOKBACK.total_seconds() + 60)
    g.create("auto", {"callback_url": HOOK})  # answered by intake, no workflow
    nobody = g.create("hard")
    g.decisions.act(nobody.id, actor(CAROL), Act.DENY, comment="no")  # nobody waits for it
    g.clock.advance(ANSWER_GRACE.total_seconds() + 60)
    result = sweep(g.repo, g.clock)
    assert result.unanswered == [] and old not in json.dumps(result.summary())
    assert emitted(UNANSWERED_METRIC) == [0.0]


def test_decided_pages_stop_at_the_first_checkpoint_too_recent_to_judge() -> None:
    # Given three denied checkpoints, two over the grace period old and the last one just now
    g = gates()
    ids = []
    for _ in range(2):
        ids.append(_decided_unfinalized(g))
        g.clock.advance(60)
    g.clock.advance(ANSWER_GRACE.total_seconds())
    _decided_unfinalized(g)
    repo = CountingRepository(g.repo)
    # When the sweep reads them one at a time
    result = sweep(repo, g.clock, page_size=1)
    # Then it reads up to the recent one and no further
    assert [u.checkpoint_id for u in result.unanswered] == ids
    assert repo.pages[Status.DENIED] == 3 and result.complete


def test_old_decisions_however_many_cost_the_unanswered_search_nothing() -> None:
    # Given more decisions older than the lookback than one sweep may read, then one unanswered
    g = gates()
    for _ in range(6):
        _decided_unfinalized(g)
    g.clock.advance(LOOKBACK.total_seconds() + 60)
    recent = _decided_unfinalized(g)
    g.clock.advance(ANSWER_GRACE.total_seconds() + 60)
    repo = CountingRepository(g.repo)
    # When a sweep may read only two pages of one per status
    result = sweep(repo, g.clock, page_size=1, max_pages=2)
    # Then it starts at the window: the recent one is found and the search was complete
    assert [u.checkpoint_id for u in result.unanswered] == [recent]
    assert repo.pages[Status.DENIED] == 1


# -- the Lambda handler ------------------------------------------------------------------------


@pytest.fixture
def wired() -> Iterator[Gates]:
    g = gates()
    composition.override(repository=g.repo, clock=g.clock)
    yield g
    composition.reset()


def _emf(out: str) -> list[dict[str, Any]]:
    """The EMF documents Powertools printed (one JSON object per line with an `_aws` key)."""
    docs = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            docs.append(json.loads(line))
    return docs


def test_the_handler_publishes_both_gauges_as_emf(
    wired: Gates, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one stalled and one waiting checkpoint, and metrics published as they are on Lambda
    stalled = wired.create("soft")
    assert stalled.deadline is not None
    wired.clock.at = stalled.deadline + GRACE + timedelta(seconds=1)
    wired.create("hard")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When the schedule invokes the sweeper function
    summary = invoke("sweeper", SCHEDULED_EVENT)
    # Then it answers with the counts and prints one EMF document in the Signoff namespace,
    # with the service dimension only
    assert summary == {
        "at": wired.clock.now().isoformat(),
        "pending": 2,
        "stalled": 1,
        "unanswered": 0,
        "complete": True,
    }
    (doc,) = _emf(capsys.readouterr().out)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Signoff"
    assert directive["Dimensions"] == [["service"]] and doc["service"] == "signoff"
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]} == {
        PENDING_METRIC: "Count",
        STALLED_METRIC: "Count",
        UNANSWERED_METRIC: "Count",
    }
    # Powertools writes values as arrays
    assert (doc[PENDING_METRIC], doc[STALLED_METRIC], doc[UNANSWERED_METRIC]) == ([2.0], [1.0], [0.0])

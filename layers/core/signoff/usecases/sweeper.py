"""The checkpoint sweep, run every 5 minutes: how many checkpoints wait for people
(`PendingApprovals`), how many are still pending well past their deadline (`StalledApprovals`),
and how many were decided but never told whoever waits for the answer (`UnansweredCallers`).

The approval workflow decides every checkpoint at its deadline (the timeout rule), so a pending
checkpoint whose deadline passed more than a grace period ago is not slow: its workflow is broken
(never started, failed, or Finalize could not write). Each one is logged by id for the on-call.

A decided checkpoint is unanswered when its approval workflow decided it more than ANSWER_GRACE
ago and its webhook has neither `callback_delivered` nor `callback_failed` (the sender's final
word, after its own retries), or its embedding workflow's token has no `caller_answered`: Finalize
never got that far (the execution failed, was stopped, or Finalize kept failing). Auto gates and
checkpoints whose workflow never started are answered by intake itself and are not looked at.

Every figure is emitted on every sweep, zeros included: the alarms tell "nothing is stalled"
apart from "the sweep did not run"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.audit.events import EventType
from signoff.domain.models import Checkpoint, Status
from signoff.domain.policy import GateKind
from signoff.observability import logger, metrics
from signoff.ports import CheckpointRepository, Clock

PENDING_METRIC = "PendingApprovals"
STALLED_METRIC = "StalledApprovals"
UNANSWERED_METRIC = "UnansweredCallers"
DECIDED = (Status.APPROVED, Status.DENIED, Status.EXPIRED, Status.CANCELLED)
# Finalize answers within a minute or two of the decision, retries included (the webhook's
# 45 s budget, three Step Functions retries 2-8 s apart): past this, nobody is going to.
ANSWER_GRACE = timedelta(minutes=15)
# Only recent decisions are looked at: an older unanswered one has paged for a day already. The
# status index sorts decided checkpoints by decision time, so the window is one key range: what a
# sweep reads does not grow with the decisions the table keeps.
LOOKBACK = timedelta(days=1)
# Finalize runs seconds after the deadline; minutes of slack absorb a cold start, Lambda and
# Step Functions retries and the status index's eventual consistency without paging anyone.
GRACE = timedelta(minutes=5)
PAGE_SIZE = 100
# A bound on one sweep's work (and its Lambda's run time). Pages come soonest deadline first, so
# the stalled ones are always read first: hitting the bound only makes the pending count a floor.
MAX_PAGES = 100
LOGGED_IDS = 50  # one log line stays readable (and under CloudWatch's event size) however many stall


@dataclass(frozen=True)
class Stalled:
    checkpoint_id: str
    deadline: datetime
    overdue_seconds: int


@dataclass(frozen=True)
class Unanswered:
    checkpoint_id: str
    decided_at: datetime
    waiting: tuple[str, ...]  # "webhook", "caller"


@dataclass(frozen=True)
class Sweep:
    at: datetime
    pending: int
    stalled: list[Stalled] = field(default_factory=list)
    complete: bool = True  # False when MAX_PAGES stopped the count
    unanswered: list[Unanswered] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "pending": self.pending,
            "stalled": len(self.stalled),
            "unanswered": len(self.unanswered),
            "complete": self.complete,
        }


def sweep(
    repo: CheckpointRepository,
    clock: Clock,
    *,
    grace: timedelta = GRACE,
    page_size: int = PAGE_SIZE,
    max_pages: int = MAX_PAGES,
) -> Sweep:
    """Count pending checkpoints and find the stalled ones; emits the two gauges and logs the ids.

    Every pending page is read because the gauge counts them all; the order (soonest deadline
    first) means only a prefix can be stalled, so classification stops at the first deadline that
    is still inside the grace period."""
    now = clock.now()
    cutoff = now - grace
    pending = 0
    stalled: list[Stalled] = []
    past_stalled = False  # once a deadline is inside the grace period, every later one is too
    token: str | None = None
    complete = False
    for _ in range(max_pages):
        page = repo.list_by_status(Status.PENDING, limit=page_size, next_token=token)
        pending += len(page.items)
        for cp in page.items if not past_stalled else ():
            # A pending checkpoint always has a deadline (only auto gates have none, and they are
            # decided at once); one without is not this sweep's to judge.
            if cp.deadline is None or cp.deadline >= cutoff:
                past_stalled = True
                break
            overdue = int((now - cp.deadline).total_seconds())
            stalled.append(Stalled(checkpoint_id=cp.id, deadline=cp.deadline, overdue_seconds=overdue))
        token = page.next_token
        if token is None:
            complete = True
            break
    unanswered, decided_complete = _unanswered(repo, now, page_size=page_size, max_pages=max_pages)
    result = Sweep(
        at=now, pending=pending, stalled=stalled, complete=complete and decided_complete, unanswered=unanswered
    )
    _report(result, grace)
    return result


def _unanswered(
    repo: CheckpointRepository, now: datetime, *, page_size: int, max_pages: int
) -> tuple[list[Unanswered], bool]:
    """Decided checkpoints in the window [now - LOOKBACK, now - ANSWER_GRACE) whose webhook or
    caller was never answered, and whether every decided page was read. Pages start at the
    window and come in decision order: the first one decided inside the grace period ends the
    status."""
    found: list[Unanswered] = []
    complete = True
    due, since = now - ANSWER_GRACE, now - LOOKBACK
    for status in DECIDED:
        token: str | None = None
        for _ in range(max_pages):
            page = repo.list_by_status(status, limit=page_size, next_token=token, since=since)
            done = any(cp.decided_at is None or cp.decided_at >= due for cp in page.items)
            for cp in page.items:
                if cp.decided_at is not None and since <= cp.decided_at < due and _finalized_by_workflow(cp):
                    waiting = _waiting(repo, cp)
                    if waiting:
                        found.append(Unanswered(cp.id, cp.decided_at, waiting))
            token = page.next_token
            if done or token is None:
                break
        else:
            complete = False
    return found, complete


def _finalized_by_workflow(cp: Checkpoint) -> bool:
    """Decided through the approval workflow, whose Finalize answers the caller. An auto gate
    (and a checkpoint whose workflow never started) was answered by intake, or had nothing to wait."""
    return cp.assessment.gate.kind is not GateKind.AUTO and cp.execution is not None


def _waiting(repo: CheckpointRepository, cp: Checkpoint) -> tuple[str, ...]:
    """Who still waits for this decision: its webhook, its embedding workflow, both or neither."""
    has_caller = repo.get_caller_token(cp.id) is not None
    if not cp.request.callback_url and not has_caller:
        return ()
    seen = {e.type for e in repo.events(cp.id)}
    waiting = []
    if cp.request.callback_url and not seen & {EventType.CALLBACK_DELIVERED, EventType.CALLBACK_FAILED}:
        waiting.append("webhook")
    if has_caller and EventType.CALLER_ANSWERED not in seen:
        waiting.append("caller")
    return tuple(waiting)


def _report(result: Sweep, grace: timedelta) -> None:
    metrics.add_metric(name=PENDING_METRIC, unit=MetricUnit.Count, value=result.pending)
    metrics.add_metric(name=STALLED_METRIC, unit=MetricUnit.Count, value=len(result.stalled))
    metrics.add_metric(name=UNANSWERED_METRIC, unit=MetricUnit.Count, value=len(result.unanswered))
    if not result.complete:
        logger.warning("sweep stopped early: its counts are lower bounds", extra=result.summary())
    if result.unanswered:
        # Error level: a pipeline or workflow is waiting for an answer that will not come by itself.
        logger.error(
            "decided checkpoints whose caller was not answered",
            extra={
                "unanswered": len(result.unanswered),
                "checkpoints": [
                    {"checkpoint_id": u.checkpoint_id, "decided_at": u.decided_at.isoformat(), "waiting": u.waiting}
                    for u in result.unanswered[:LOGGED_IDS]
                ],
            },
        )
    if result.stalled:
        # Error level: each of these is a checkpoint nobody will decide unless someone looks.
        logger.error(
            "stalled approvals: pending past their deadline",
            extra={
                "stalled": len(result.stalled),
                "grace_seconds": int(grace.total_seconds()),
                "checkpoints": [
                    {
                        "checkpoint_id": s.checkpoint_id,
                        "deadline": s.deadline.isoformat(),
                        "overdue_s": s.overdue_seconds,
                    }
                    for s in result.stalled[:LOGGED_IDS]
                ],
            },
        )
    logger.info("pending sweep", extra=result.summary())

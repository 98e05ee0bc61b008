"""The pending-checkpoint sweep, run every 5 minutes: how many checkpoints wait for people
(`PendingApprovals`) and how many are still pending well past their deadline (`StalledApprovals`).

The approval workflow decides every checkpoint at its deadline (the timeout rule), so a pending
checkpoint whose deadline passed more than a grace period ago is not slow: its workflow is broken
(never started, failed, or Finalize could not write). Each one is logged by id for the on-call.

Both figures are emitted on every sweep, zeros included: the alarms tell "nothing is stalled"
apart from "the sweep did not run"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.domain.models import Status
from signoff.observability import logger, metrics
from signoff.ports import CheckpointRepository, Clock

PENDING_METRIC = "PendingApprovals"
STALLED_METRIC = "StalledApprovals"
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
class Sweep:
    at: datetime
    pending: int
    stalled: list[Stalled] = field(default_factory=list)
    complete: bool = True  # False when MAX_PAGES stopped the count

    def summary(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "pending": self.pending,
            "stalled": len(self.stalled),
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
    result = Sweep(at=now, pending=pending, stalled=stalled, complete=complete)
    _report(result, grace)
    return result


def _report(result: Sweep, grace: timedelta) -> None:
    metrics.add_metric(name=PENDING_METRIC, unit=MetricUnit.Count, value=result.pending)
    metrics.add_metric(name=STALLED_METRIC, unit=MetricUnit.Count, value=len(result.stalled))
    if not result.complete:
        logger.warning("pending sweep stopped early: PendingApprovals is a lower bound", extra=result.summary())
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

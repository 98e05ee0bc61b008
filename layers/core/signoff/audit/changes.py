"""Changing a checkpoint: every change appends its audit events and is saved conditionally on the
state it was decided from. A concurrent writer makes the save stale; the change is then decided
again from the fresh state instead of overwriting it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signoff.audit.events import AuditEvent, EventType, chain_event
from signoff.domain.errors import Conflict, StaleCheckpoint
from signoff.domain.models import Checkpoint, Status, Vote
from signoff.ports import CheckpointRepository, Clock

# A stale save means another writer committed between our read and our write: every failed
# attempt is some other writer's success. So with at most W writers on one checkpoint at once,
# each making one change, a writer fails at most W - 1 times before its own save lands.
# SAVE_ATTEMPTS is the number of concurrent writers per checkpoint the loop absorbs without
# giving up: above the 50 a busy card sees (every approver clicking at once, a flood of refused
# clicks, the workflow's own steps), so a refused click is always recorded rather than lost.
SAVE_ATTEMPTS = 64
# Between attempts, a short jittered pause spreads the herd out, so the rounds are few and cheap
# (each round costs a read and a conditional write), not so long that a chat ack misses its 3 s.
BACKOFF_BASE_SECONDS = 0.002
BACKOFF_CAP_SECONDS = 0.025
pause: Callable[[float], None] = time.sleep  # tests make it instant
_JITTER = random.Random()


@dataclass(frozen=True)
class Entry:
    type: EventType
    actor: str
    data: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """What to change (fields of the checkpoint), what to record, and an optional vote."""

    updates: dict[str, Any] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    vote: Vote | None = None


def chain(checkpoint: Checkpoint, entries: list[Entry], at: datetime) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    prev: tuple[int, str] | None = (checkpoint.audit_seq, checkpoint.audit_head or "") if checkpoint.audit_seq else None
    for entry in entries:
        event = chain_event(
            checkpoint_id=checkpoint.id, prev=prev, type=entry.type, at=at, actor=entry.actor, data=entry.data
        )
        events.append(event)
        prev = (event.seq, event.hash)
    return events


def apply_change(
    repo: CheckpointRepository, clock: Clock, checkpoint_id: str, decide: Callable[[Checkpoint], Change]
) -> Checkpoint:
    """Decide a change from the current state (decide may refuse by raising) and save it, deciding
    again from the fresh state after each concurrent write (see SAVE_ATTEMPTS)."""
    for attempt in range(SAVE_ATTEMPTS):
        if attempt:
            pause(_JITTER.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))
        current = repo.get(checkpoint_id)
        change = decide(current)
        if not (change.updates or change.entries or change.vote):
            return current  # nothing to change: no write
        events = chain(current, change.entries, clock.now())
        head = {"audit_seq": events[-1].seq, "audit_head": events[-1].hash} if events else {}
        updated = current.model_copy(update={**change.updates, **head})
        try:
            repo.save(updated, expected=current, events=events, vote=change.vote)
        except StaleCheckpoint:
            continue
        return updated
    raise Conflict(f"checkpoint {checkpoint_id} kept changing; retry the request")


def decision_data(cp: Checkpoint, status: Status, decided_by: str, reason: str, at: datetime) -> dict[str, Any]:
    """The fields every decision event carries (the audit-completeness SLI checks them)."""
    a = cp.assessment
    return {
        "status": status.value,
        "decided_by": decided_by,
        "reason": reason,
        "gate": a.gate.kind.value,
        "risk": a.risk.risk_class.value,
        "score": a.score.score,
        "environment": cp.request.environment,
        "policy_version": a.policy_version,
        "requested_at": cp.created_at.isoformat(),
        "latency_seconds": (at - cp.created_at).total_seconds(),
        "approvers": [v.approver for v in cp.votes],
        "conditions": cp.conditions,
        # A shadow policy's would-be gate, beside the one that acted (only when one is deployed).
        **({"shadow": cp.shadow.model_dump(mode="json", exclude_none=True)} if cp.shadow else {}),
        # An agent's approval holds for one set of arguments: the trail names which.
        **({"arguments_digest": cp.request.tool_call.arguments_digest} if cp.request.tool_call else {}),
    }

"""An in-memory Signoff API for tests of the agent SDK and its adapters: validates every request
against the API's own model, honours idempotency keys, and lets the test decide checkpoints (as a
person clicking would) whenever the waiting side sleeps."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from signoff.domain.models import CheckpointRequest
from signoff.tools.client import SignoffApiError

NOW = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


@dataclass
class FakeSignoffApi:
    """`gate` is the gate every new checkpoint gets (auto, soft or hard); `decide` is called with
    each pending checkpoint whenever the caller waits, and returns (status, decided_by, reason) to
    decide it, or None to leave it pending."""

    gate: str = "hard"
    decide: Callable[[dict[str, Any]], tuple[str, str, str] | None] = lambda cp: None
    conditions: dict[str, Any] | None = None
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    outcomes: list[tuple[str, str, str | None]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    elapsed: float = 0.0  # seconds the caller slept: its clock
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def create(self, request: dict[str, Any], idempotency_key: str) -> tuple[int, dict[str, Any]]:
        body = CheckpointRequest.model_validate(request).model_dump(mode="json")
        if idempotency_key in self.keys:
            cp = self.checkpoints[self.keys[idempotency_key]]
            if cp["request"] != body:
                raise SignoffApiError(409, {"title": "Conflict", "detail": "key reused with another body"})
            return 200, cp
        checkpoint_id = f"cp_{next(self._ids):026d}"
        auto = self.gate == "auto"
        cp = {
            "id": checkpoint_id,
            "status": "APPROVED" if auto else "PENDING",
            "request": body,
            "assessment": {"gate": {"kind": self.gate, "escalation_wait_seconds": None}},
            "deadline": None if auto else (NOW + dt.timedelta(minutes=10)).isoformat(),
            "decided_by": "policy" if auto else None,
            "decision_reason": "auto gate" if auto else None,
            "conditions": None,
        }
        self.checkpoints[checkpoint_id] = cp
        self.keys[idempotency_key] = checkpoint_id
        return (200 if auto else 202), cp

    def get(self, checkpoint_id: str) -> dict[str, Any]:
        return self.checkpoints[checkpoint_id]

    def cancel(self, checkpoint_id: str, reason: str | None = None) -> dict[str, Any]:
        cp = self.checkpoints[checkpoint_id]
        if cp["status"] != "PENDING":
            raise SignoffApiError(409, {"title": "Conflict", "detail": "already decided"})
        cp.update(status="CANCELLED", decided_by="requester", decision_reason=reason)
        self.cancelled.append(checkpoint_id)
        return cp

    def outcome(
        self, checkpoint_id: str, outcome: str, details: str | None = None, reported_by: str | None = None
    ) -> dict[str, Any]:
        self.outcomes.append((checkpoint_id, outcome, details))
        return self.checkpoints[checkpoint_id]

    def tick(self) -> None:
        """Time passes for the people: each pending checkpoint may be decided now."""
        for cp in self.checkpoints.values():
            if cp["status"] == "PENDING" and (decision := self.decide(cp)) is not None:
                status, by, reason = decision
                conditions = self.conditions if status == "APPROVED" else None
                cp.update(status=status, decided_by=by, decision_reason=reason, conditions=conditions)

    def sleep(self, seconds: float) -> None:
        self.elapsed += seconds
        self.tick()

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def clock(self) -> float:
        return self.elapsed

    def now(self) -> dt.datetime:
        return NOW + dt.timedelta(seconds=self.elapsed)

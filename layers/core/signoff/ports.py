"""Ports: what the domain needs from the outside world. AWS adapters and in-memory fakes
implement them; the service only sees these protocols."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from signoff.audit import AuditEvent
from signoff.models import Checkpoint, CheckpointPage, Status


class CheckpointRepository(Protocol):
    """The single table: a checkpoint's META item and its hash-chained audit events."""

    def create(self, checkpoint: Checkpoint, events: list[AuditEvent]) -> None:
        """Store a new checkpoint and its first events atomically. AlreadyExists if the id is taken."""

    def get(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint, or NotFound."""

    def save(self, checkpoint: Checkpoint, *, expected: Checkpoint, event: AuditEvent) -> None:
        """Replace `expected` by `checkpoint` and append `event`, atomically, only if the stored
        checkpoint still has expected's status and audit head; else StaleCheckpoint."""

    def list_by_status(self, status: Status, *, limit: int, next_token: str | None) -> CheckpointPage:
        """Checkpoints in one status, soonest deadline (or oldest) first, paged."""

    def events(self, checkpoint_id: str) -> list[AuditEvent]:
        """Every audit event of a checkpoint, in order."""


class Clock(Protocol):
    def now(self) -> datetime: ...

"""Ports: every protocol the use cases need from the outside world. AWS adapters (`signoff.adapters`)
and in-memory fakes (`signoff.testing`) implement them; the use cases only see these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from signoff.audit.events import AuditEvent
from signoff.domain.cards import Card
from signoff.domain.models import Checkpoint, CheckpointPage, MessageRef, Status, Vote


class TaskToken(BaseModel):
    """The approval workflow's current wait. Kept in its own item: it never reaches the API,
    a card, a button or a log line."""

    model_config = ConfigDict(frozen=True)

    token: str
    phase: str  # initial | escalation
    expires_at: datetime


class CheckpointRepository(Protocol):
    """The single table: a checkpoint's META item, its hash-chained audit events, its votes."""

    def create(self, checkpoint: Checkpoint, events: list[AuditEvent]) -> None:
        """Store a new checkpoint and its first events atomically. AlreadyExists if the id is taken."""

    def get(self, checkpoint_id: str) -> Checkpoint:
        """The checkpoint, or NotFound."""

    def save(
        self, checkpoint: Checkpoint, *, expected: Checkpoint, events: list[AuditEvent], vote: Vote | None = None
    ) -> None:
        """Replace `expected` by `checkpoint` and append `events` (and record `vote`), atomically,
        only if the stored checkpoint still has expected's status and audit head; else
        StaleCheckpoint. A vote by someone who already voted raises DuplicateVote."""

    def list_by_status(self, status: Status, *, limit: int, next_token: str | None) -> CheckpointPage:
        """Checkpoints in one status, soonest deadline (or oldest) first, paged."""

    def events(self, checkpoint_id: str) -> list[AuditEvent]:
        """Every audit event of a checkpoint, in order."""

    def put_token(self, checkpoint_id: str, token: TaskToken) -> None: ...

    def get_token(self, checkpoint_id: str) -> TaskToken | None: ...

    def put_caller_token(self, checkpoint_id: str, token: str) -> None:
        """The embedding workflow's task token (answered when the checkpoint is decided)."""

    def get_caller_token(self, checkpoint_id: str) -> str | None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Workflow(Protocol):
    """The approval state machine."""

    def start(self, checkpoint_id: str, workflow_input: dict[str, Any]) -> None:
        """Start the named execution (name = checkpoint id); starting it twice is not an error."""

    def answer(self, token: str, output: dict[str, Any]) -> bool:
        """SendTaskSuccess; False when the task no longer waits (timed out, already answered)."""

    def fail(self, token: str, error: str, cause: str) -> bool:
        """SendTaskFailure; False when the task no longer waits."""

    def stop(self, checkpoint_id: str, cause: str) -> None: ...


class Chat(Protocol):
    """One chat surface (Slack, Teams): post cards, update them in place, talk in threads."""

    surface: str

    def post_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        """Post to a channel, or directly to a person (directory id); None if they cannot be reached."""

    def update_card(self, ref: MessageRef, card: Card) -> None: ...

    def reply(self, ref: MessageRef, text: str, mention: str | None = None) -> None:
        """A message in the card's thread, optionally mentioning a person (directory id)."""

    def post_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        """A notice about a checkpoint (escalation), with the card's summary."""


class Callbacks(Protocol):
    """The requester's webhook."""

    def deliver(self, url: str, body: dict[str, Any]) -> tuple[bool, str]:
        """POST the HMAC-signed body with retries; (delivered, detail)."""


class Archive(Protocol):
    """Where archived audit events go: write-once objects by key."""

    def put(self, key: str, body: bytes) -> None:
        """Store body at key. A key that already exists keeps its object (keys and bodies are
        deterministic, so it already holds these bytes): writing again is not an error."""


class ConversationReference(BaseModel):
    """Where and how to reach one Teams conversation, learned when the bot is installed or added
    to it."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str  # 19:…@thread.tacv2 (channel), a:… (1:1), 19:…@thread.v2 (group chat)
    service_url: str
    tenant_id: str
    kind: str = "channel"  # channel | personal | groupChat
    team_id: str | None = None
    user_aad: str | None = None  # the person of a 1:1 chat
    active: bool = True  # False once the bot was removed from the conversation
    updated_at: datetime


class ReferenceStore(Protocol):
    """Teams conversation references."""

    def put_reference(self, reference: ConversationReference) -> None:
        """Store (or replace) the reference of its conversation."""

    def get_reference(self, conversation_id: str) -> ConversationReference | None: ...


class ActivityLog(Protocol):
    """Deliveries already handled: the Bot Connector retries an invoke with the same activity id."""

    def claim(self, activity_key: str) -> bool:
        """True the first time a key is seen (within a day); False for a retry."""

    def release(self, activity_key: str) -> None:
        """Forget a claim whose processing failed, so the connector's retry is processed."""

"""Ports: every protocol the use cases need from the outside world. AWS adapters (`signoff.adapters`)
and in-memory fakes (`signoff.testing`) implement them; the use cases only see these."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from signoff.audit.events import AuditEvent
from signoff.domain.cards import Card
from signoff.domain.errors import SignoffError
from signoff.domain.models import Checkpoint, CheckpointPage, MessageRef, Status, Vote

if TYPE_CHECKING:
    # Only annotations use the helpdesk's types here: every function imports this module, and the
    # ones without the helpdesk (intake, workflow steps, Teams) should not load its config models
    # at cold start. The helpdesk's model ports (Classifier, Drafter, Retriever) are defined beside
    # the router in `domain.helpdesk.models`, which may import nothing above the domain.
    from signoff.domain.helpdesk.conversation import Conversation

__all__ = [
    "ActivityLog",
    "Archive",
    "Callbacks",
    "Chat",
    "CheckpointRepository",
    "Clock",
    "ConversationReference",
    "ConversationRepository",
    "HelpdeskAction",
    "HelpdeskChat",
    "HelpdeskReply",
    "Posted",
    "ReferenceStore",
    "TaskToken",
    "TicketDraft",
    "TicketRef",
    "Ticketing",
    "TicketingError",
    "Workflow",
]


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

    def list_by_status(
        self, status: Status, *, limit: int, next_token: str | None, since: datetime | None = None
    ) -> CheckpointPage:
        """Checkpoints in one status, paged: pending ones soonest deadline first, decided ones by
        decision time. `since`: only those whose deadline (pending) or decision is at or after it."""

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


@runtime_checkable
class ChatFailure(Protocol):
    """What the steps read from a chat surface's error (SlackChatError, TeamsChatError): the
    platform's error code (never its message, which may echo the card), and whether trying again
    later may help (the surface has already retried it with backoff)."""

    code: str
    transient: bool


@runtime_checkable
class ExplainingChat(Protocol):
    """A chat whose deliveries raise a ChatFailure for a refused recipient where `post_card` /
    `post_notice` answer None, so Notify can say who refused and why. Every shipped surface is
    one; a chat that is not is asked through the plain port (and its refusals go unnamed)."""

    def deliver_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None: ...

    def deliver_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None: ...


class Callbacks(Protocol):
    """The requester's webhook."""

    def deliver(self, url: str, body: dict[str, Any]) -> tuple[bool, str]:
        """POST the HMAC-signed body with retries; (delivered, detail)."""


class DecisionListener(Protocol):
    """Told by Finalize of every decided checkpoint (after the caller and the webhook), so a use
    case that created checkpoints can carry on (the helpdesk's approvals). Must be idempotent:
    Finalize may run again; must ignore checkpoints that are not its own."""

    def decided(self, checkpoint: Checkpoint) -> None: ...


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


# -- the helpdesk --------------------------------------------------------------------------------


class ConversationRepository(Protocol):
    """Helpdesk conversations and their hash-chained audit events (the single table, pk HD#<id>)."""

    def create(self, conversation: Conversation, events: list[AuditEvent]) -> None:
        """Store a new conversation and its first events atomically; AlreadyExists if the id is taken."""

    def get(self, conversation_id: str) -> Conversation:
        """The conversation, or NotFound."""

    def save(self, conversation: Conversation, *, expected: Conversation, events: list[AuditEvent]) -> None:
        """Replace `expected` and append `events` atomically, only if the stored audit head is still
        expected's; else StaleCheckpoint."""

    def events(self, conversation_id: str) -> list[AuditEvent]: ...

    def remember_question(self, channel: str, key: str, conversation_id: str, at: datetime) -> None:
        """The latest conversation that answered the question `key` in `channel`."""

    def recent_question(self, channel: str, key: str) -> tuple[str, datetime] | None:
        """(conversation id, when) of the latest answer to `key` in `channel`, if any."""

    def due_first_response(self, until: datetime, *, limit: int) -> list[Conversation]:
        """Up to `limit` conversations awaiting a first response whose deadline is at or before
        `until`, soonest first (an index: may lag a write by a moment; the save's condition decides)."""

    def claim_incident(
        self, key: str, conversation_id: str, at: datetime, until: datetime, *, replacing: str | None = None
    ) -> str | None:
        """Make `conversation_id` the open incident for the symptom signature `key` until `until`, in
        one conditional write: only if no incident holds it, the holder's window ended before `at`,
        or the holder is `replacing`. None when claimed; else the holding conversation's id."""

    def extend_incident(self, key: str, conversation_id: str, until: datetime) -> None:
        """Keep the incident open until `until`, if `conversation_id` still holds `key`."""


class HelpdeskAction(StrEnum):
    """The buttons of helpdesk messages; a button carries the conversation id and nothing else."""

    HELPFUL = "helpful"
    NOT_HELPFUL = "not_helpful"
    HUMAN = "human"  # Talk to a human
    CLAIM = "claim"
    RESOLVED = "resolved"
    BACK = "back"  # Back to the bot
    REQUEST = "request"  # Fill in the request: opens the approval form (an approval class with a flow)


class HelpdeskReply(BaseModel):
    """A message of the helpdesk, surface-neutral: mrkdwn-light text and buttons."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    text: str
    actions: list[HelpdeskAction] = []
    mention_groups: list[str] = []  # user group ids to ping
    mention_users: list[str] = []  # user ids to ping (an on-call)


class Posted(BaseModel):
    model_config = ConfigDict(frozen=True)

    channel: str
    ts: str | None  # None for an ephemeral message (it cannot be linked or updated)
    where: str  # thread | channel | ephemeral | dm


class HelpdeskChat(Protocol):
    """Where the helpdesk talks: a thread, privately to the asker, or a channel."""

    def reply(self, channel: str, thread_ts: str | None, reply: HelpdeskReply) -> Posted:
        """In the thread (or the channel when thread_ts is None), visible to everyone there."""

    def reply_privately(self, channel: str, thread_ts: str | None, user: str, reply: HelpdeskReply) -> Posted:
        """In the thread, visible to `user` only."""

    def direct(self, user: str, reply: HelpdeskReply) -> Posted:
        """A direct message to `user`."""

    def permalink(self, channel: str, ts: str) -> str | None: ...


class TicketDraft(BaseModel):
    """A ticket as the helpdesk opens it. Holds redacted text only."""

    model_config = ConfigDict(frozen=True)

    project: str  # Jira project key / ServiceNow assignment group (the queue's ticket_project)
    summary: str
    description: list[str]  # paragraphs
    urgency: str  # high | medium | normal
    labels: list[str]
    link: str | None = None  # back to the Slack thread
    reference: str  # the conversation id: a retried open finds nothing new to write in the audit


class TicketRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str  # IT-123 / INC0010001
    url: str


class TicketingError(SignoffError):
    """The ticketing system refused or could not be reached (after retries)."""


class Ticketing(Protocol):
    """An ITSM system (Jira Cloud, ServiceNow)."""

    system: str

    def open(self, ticket: TicketDraft) -> TicketRef:
        """Create the ticket; TicketingError when it cannot be created."""

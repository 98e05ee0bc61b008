"""In-memory fakes of every port, honouring the same conditions as the AWS adapters. For tests,
benchmarks and tools; the Lambda layer does not ship them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from signoff.adapters.keys import decode_token, encode_token, status_since, status_sk
from signoff.adapters.teams_store import SEEN_TTL_SECONDS
from signoff.audit.events import AuditEvent
from signoff.domain.cards import Card
from signoff.domain.errors import AlreadyExists, DuplicateVote, InvalidPageToken, NotFound, StaleCheckpoint
from signoff.domain.helpdesk.conversation import Conversation, awaiting_first_response
from signoff.domain.models import Checkpoint, CheckpointPage, MessageRef, Status, Vote
from signoff.ports import (
    ConversationReference,
    HelpdeskReply,
    Posted,
    TaskToken,
    TicketDraft,
    TicketingError,
    TicketRef,
)


class InMemoryCheckpointRepository:
    def __init__(self) -> None:
        self._checkpoints: dict[str, Checkpoint] = {}
        self._events: dict[str, list[AuditEvent]] = {}
        self.votes: dict[tuple[str, str], Vote] = {}
        self.tokens: dict[str, TaskToken] = {}
        self.caller_tokens: dict[str, str] = {}
        self._lock = threading.Lock()

    def create(self, checkpoint: Checkpoint, events: list[AuditEvent]) -> None:
        with self._lock:
            if checkpoint.id in self._checkpoints:
                raise AlreadyExists(checkpoint.id)
            self._checkpoints[checkpoint.id] = checkpoint
            self._events[checkpoint.id] = list(events)

    def get(self, checkpoint_id: str) -> Checkpoint:
        try:
            return self._checkpoints[checkpoint_id]
        except KeyError:
            raise NotFound(checkpoint_id) from None

    def save(
        self, checkpoint: Checkpoint, *, expected: Checkpoint, events: list[AuditEvent], vote: Vote | None = None
    ) -> None:
        with self._lock:
            current = self._checkpoints.get(checkpoint.id)
            if current is None:
                raise NotFound(checkpoint.id)
            if current.status != expected.status or current.audit_seq != expected.audit_seq:
                raise StaleCheckpoint(checkpoint.id)
            if vote is not None:
                if (checkpoint.id, vote.approver) in self.votes:
                    raise DuplicateVote(vote.approver)
                self.votes[(checkpoint.id, vote.approver)] = vote
            self._checkpoints[checkpoint.id] = checkpoint
            self._events[checkpoint.id].extend(events)

    def list_by_status(
        self, status: Status, *, limit: int, next_token: str | None, since: datetime | None = None
    ) -> CheckpointPage:
        lowest = status_since(since) if since is not None else ""
        after = ""
        if next_token:
            key = decode_token(next_token)
            if set(key) != {"sk", "status"} or key["status"] != status.value:
                raise InvalidPageToken()
            after = key["sk"]
        ordered = sorted(
            (status_sk(cp), cp)
            for cp in list(self._checkpoints.values())
            if cp.status is status and status_sk(cp) >= lowest
        )
        page = [(sk, cp) for sk, cp in ordered if sk > after][: limit + 1]
        more = len(page) > limit
        page = page[:limit]
        token = encode_token({"sk": page[-1][0], "status": status.value}) if more and page else None
        return CheckpointPage(items=[cp for _, cp in page], next_token=token)

    def events(self, checkpoint_id: str) -> list[AuditEvent]:
        return list(self._events.get(checkpoint_id, []))

    def put_token(self, checkpoint_id: str, token: TaskToken) -> None:
        self.tokens[checkpoint_id] = token

    def get_token(self, checkpoint_id: str) -> TaskToken | None:
        return self.tokens.get(checkpoint_id)

    def put_caller_token(self, checkpoint_id: str, token: str) -> None:
        self.caller_tokens[checkpoint_id] = token

    def get_caller_token(self, checkpoint_id: str) -> str | None:
        return self.caller_tokens.get(checkpoint_id)


class InMemoryWorkflow:
    """Records starts and answers; a token answers once, like Step Functions."""

    def __init__(self) -> None:
        self.started: dict[str, dict[str, Any]] = {}
        self.answers: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, tuple[str, str]] = {}
        self.stopped: dict[str, str] = {}
        self.fail_start = False

    def start(self, checkpoint_id: str, workflow_input: dict[str, Any]) -> None:
        if self.fail_start:
            raise RuntimeError("state machine unavailable")
        self.started.setdefault(checkpoint_id, workflow_input)

    def answer(self, token: str, output: dict[str, Any]) -> bool:
        if token in self.answers or token in self.failures:
            return False
        self.answers[token] = output
        return True

    def fail(self, token: str, error: str, cause: str) -> bool:
        if token in self.answers or token in self.failures:
            return False
        self.failures[token] = (error, cause)
        return True

    def stop(self, checkpoint_id: str, cause: str) -> None:
        self.stopped[checkpoint_id] = cause


class InMemoryChatError(Exception):
    """What a chat surface raises when a call fails, as the approval workflow's steps read it:
    the platform's error `code`, whether it is `transient`, the `retry_after` seconds asked for,
    and whether the recipient is `unreachable`."""

    def __init__(
        self, code: str, *, transient: bool, retry_after: float | None = None, unreachable: bool = False
    ) -> None:
        super().__init__(f"chat: {code}")
        self.code = code
        self.transient = transient
        self.retry_after = retry_after
        self.unreachable = unreachable


# Codes InMemoryChat.fail treats as transient unless told otherwise (Slack's, and no answer at all).
TRANSIENT_CODES = frozenset({"ratelimited", "internal_error", "service_unavailable", "http_503", "timeout"})


class InMemoryChat:
    """A chat surface that records what Signoff posts: cards by channel or person, updates,
    thread replies and notices. `fail` makes the next calls (or every call) of an operation raise,
    and `attempts` counts every call, failed ones included."""

    def __init__(self, surface: str = "slack", unreachable: set[str] | None = None) -> None:
        self.surface = surface
        self.unreachable = unreachable or set()  # channels or people that cannot be reached
        self.posts: list[tuple[str, Card]] = []  # (destination, card)
        self.updates: list[tuple[MessageRef, Card]] = []
        self.replies: list[tuple[MessageRef, str, str | None]] = []
        self.notices: list[tuple[str, str]] = []
        self.attempts: dict[str, int] = {"post": 0, "update": 0}
        self._failures: dict[str, list[InMemoryChatError]] = {"post": [], "update": []}
        self._always: dict[str, InMemoryChatError] = {}
        self._seq = 0

    def fail(
        self,
        operation: str,
        code: str,
        *,
        times: int | None = 1,
        transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        """The next `times` calls of `operation` ("post": cards and notices; "update") raise an
        InMemoryChatError with `code`; times=None: every call from now on."""
        error = InMemoryChatError(
            code, transient=code in TRANSIENT_CODES if transient is None else transient, retry_after=retry_after
        )
        if times is None:
            self._always[operation] = error
        else:
            self._failures[operation].extend([error] * times)

    def heal(self) -> None:
        """The platform is back: no more failures."""
        self._always.clear()
        for queued in self._failures.values():
            queued.clear()

    def _call(self, operation: str) -> None:
        self.attempts[operation] += 1
        if self._failures[operation]:
            raise self._failures[operation].pop(0)
        if operation in self._always:
            raise self._always[operation]

    def _ref(self, where: str, kind: str) -> MessageRef:
        self._seq += 1
        return MessageRef(surface=self.surface, channel=where, ts=f"{self._seq}.000100", kind=kind)

    def _refused(self, channel: str | None) -> InMemoryChatError:
        return InMemoryChatError(
            "channel_not_found" if channel else "user_not_found", transient=False, unreachable=True
        )

    def post_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        try:
            return self.deliver_card(channel, person, card)
        except InMemoryChatError as exc:
            if exc.unreachable:
                return None
            raise

    def deliver_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        """post_card, raising an `unreachable` error where post_card answers None."""
        where = channel or f"dm:{person}"
        if (channel or person) in self.unreachable:
            raise self._refused(channel)
        self._call("post")
        self.posts.append((where, card))
        return self._ref(where, "card")

    def update_card(self, ref: MessageRef, card: Card) -> None:
        self._call("update")
        self.updates.append((ref, card))

    def reply(self, ref: MessageRef, text: str, mention: str | None = None) -> None:
        self.replies.append((ref, text, mention))

    def post_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        try:
            return self.deliver_notice(channel, person, text, card)
        except InMemoryChatError as exc:
            if exc.unreachable:
                return None
            raise

    def deliver_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        """post_notice, raising an `unreachable` error where post_notice answers None."""
        where = channel or f"dm:{person}"
        if (channel or person) in self.unreachable:
            raise self._refused(channel)
        self._call("post")
        self.notices.append((where, text))
        return self._ref(where, "notice")


class FixedClock:
    """A clock tests set and advance by hand."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


class InMemoryArchive:
    """The archive as a dict, write-once like S3Archive; `puts` counts every write attempt."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put(self, key: str, body: bytes) -> None:
        self.puts += 1
        self.objects.setdefault(key, body)


class InMemoryReferenceStore:
    def __init__(self) -> None:
        self.references: dict[str, ConversationReference] = {}

    def put_reference(self, reference: ConversationReference) -> None:
        self.references[reference.conversation_id] = reference

    def get_reference(self, conversation_id: str) -> ConversationReference | None:
        return self.references.get(conversation_id)


class InMemoryActivityLog:
    """Claims with the DynamoDB adapter's condition: absent or expired."""

    def __init__(self, clock: Callable[[], float] = time.time, ttl_seconds: int = SEEN_TTL_SECONDS) -> None:
        self.claims: dict[str, float] = {}  # key -> expires at (Unix seconds)
        self._clock = clock
        self._ttl = ttl_seconds
        self._lock = threading.Lock()

    def claim(self, activity_key: str) -> bool:
        now = self._clock()
        with self._lock:
            if self.claims.get(activity_key, 0) > now:
                return False
            self.claims[activity_key] = now + self._ttl
            return True

    def release(self, activity_key: str) -> None:
        with self._lock:
            self.claims.pop(activity_key, None)


class InMemoryConversationRepository:
    """Helpdesk conversations with the DynamoDB adapter's conditions (create once, save on the head)."""

    def __init__(self) -> None:
        self._conversations: dict[str, Conversation] = {}
        self._events: dict[str, list[AuditEvent]] = {}
        self.questions: dict[tuple[str, str], tuple[str, datetime]] = {}
        self.incidents: dict[str, tuple[str, datetime]] = {}  # signature -> (conversation id, open until)
        self._lock = threading.Lock()

    def create(self, conversation: Conversation, events: list[AuditEvent]) -> None:
        with self._lock:
            if conversation.id in self._conversations:
                raise AlreadyExists(conversation.id)
            self._conversations[conversation.id] = conversation
            self._events[conversation.id] = list(events)

    def get(self, conversation_id: str) -> Conversation:
        try:
            return self._conversations[conversation_id]
        except KeyError:
            raise NotFound(conversation_id) from None

    def save(self, conversation: Conversation, *, expected: Conversation, events: list[AuditEvent]) -> None:
        with self._lock:
            current = self._conversations.get(conversation.id)
            if current is None:
                raise NotFound(conversation.id)
            if current.audit_seq != expected.audit_seq:
                raise StaleCheckpoint(conversation.id)
            self._conversations[conversation.id] = conversation
            self._events[conversation.id].extend(events)

    def events(self, conversation_id: str) -> list[AuditEvent]:
        return list(self._events.get(conversation_id, []))

    def all_events(self) -> list[AuditEvent]:
        return [e for events in self._events.values() for e in events]

    def remember_question(self, channel: str, key: str, conversation_id: str, at: datetime) -> None:
        self.questions[(channel, key)] = (conversation_id, at)

    def recent_question(self, channel: str, key: str) -> tuple[str, datetime] | None:
        return self.questions.get((channel, key))

    def due_first_response(self, until: datetime, *, limit: int) -> list[Conversation]:
        due = [c for c in self._conversations.values() if awaiting_first_response(c)]
        due = [c for c in due if c.first_response_due is not None and c.first_response_due <= until]
        return sorted(due, key=lambda c: (c.first_response_due, c.id))[:limit]

    def claim_incident(
        self, key: str, conversation_id: str, at: datetime, until: datetime, *, replacing: str | None = None
    ) -> str | None:
        with self._lock:
            held = self.incidents.get(key)
            if held is None or held[1] < at or held[0] in (replacing, conversation_id):
                self.incidents[key] = (conversation_id, until)
                return None
            return held[0]

    def extend_incident(self, key: str, conversation_id: str, until: datetime) -> None:
        with self._lock:
            held = self.incidents.get(key)
            if held is not None and held[0] == conversation_id:
                self.incidents[key] = (conversation_id, max(held[1], until))


class InMemoryTicketing:
    """Records opened tickets; `fail_next` makes the next open raise TicketingError."""

    def __init__(self, system: str = "jira", base_url: str = "https://tickets.example.com/browse/") -> None:
        self.system = system
        self.base_url = base_url
        self.tickets: list[TicketDraft] = []
        self.fail_next = False

    def open(self, ticket: TicketDraft) -> TicketRef:
        if self.fail_next:
            self.fail_next = False
            raise TicketingError("ticketing unavailable")
        self.tickets.append(ticket)
        key = f"{ticket.project}-{len(self.tickets)}"
        return TicketRef(key=key, url=self.base_url + key)


class InMemoryHelpdeskChat:
    """Records what the helpdesk posts: (kind, channel, thread_ts, user, reply)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, str | None, str | None, HelpdeskReply]] = []
        self._seq = 0

    def _posted(self, kind: str, channel: str, thread_ts: str | None, user: str | None, reply: HelpdeskReply) -> Posted:
        self.posts.append((kind, channel, thread_ts, user, reply))
        if kind == "ephemeral":
            return Posted(channel=channel, ts=None, where=kind)
        self._seq += 1
        return Posted(channel=channel, ts=f"{1700000000 + self._seq}.000200", where=kind)

    def reply(self, channel: str, thread_ts: str | None, reply: HelpdeskReply) -> Posted:
        return self._posted("thread" if thread_ts else "channel", channel, thread_ts, None, reply)

    def reply_privately(self, channel: str, thread_ts: str | None, user: str, reply: HelpdeskReply) -> Posted:
        return self._posted("ephemeral", channel, thread_ts, user, reply)

    def direct(self, user: str, reply: HelpdeskReply) -> Posted:
        return self._posted("dm", f"D{user}", None, user, reply)

    def permalink(self, channel: str, ts: str) -> str | None:
        return f"https://slack.example.com/archives/{channel}/p{ts.replace('.', '')}"

    def texts(self) -> list[str]:
        return [p[4].text for p in self.posts]

"""In-memory fakes that honour the same conditions as the AWS adapters."""

from __future__ import annotations

import threading
import time
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord

from signoff.adapters.keys import decode_token, encode_token, status_sk
from signoff.audit import AuditEvent
from signoff.cards import Card
from signoff.errors import AlreadyExists, DuplicateVote, InvalidPageToken, NotFound, StaleCheckpoint
from signoff.models import Checkpoint, CheckpointPage, MessageRef, Status, Vote
from signoff.ports import TaskToken


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

    def list_by_status(self, status: Status, *, limit: int, next_token: str | None) -> CheckpointPage:
        after = ""
        if next_token:
            key = decode_token(next_token)
            if set(key) != {"sk", "status"} or key["status"] != status.value:
                raise InvalidPageToken()
            after = key["sk"]
        ordered = sorted((status_sk(cp), cp) for cp in list(self._checkpoints.values()) if cp.status is status)
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


class InMemoryIdempotencyStore(BasePersistenceLayer):
    """Powertools idempotency persistence in a dict, with the DynamoDB layer's put condition:
    a record may be written only if absent, expired, or an in-progress record whose lock lapsed."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError() from None

    def _put_record(self, data_record: DataRecord) -> None:
        with self._lock:
            current = self.records.get(data_record.idempotency_key)
            if current is not None and not current.is_expired:
                lock_lapsed = (
                    current.status == STATUS_CONSTANTS["INPROGRESS"]
                    and current.in_progress_expiry_timestamp is not None
                    and current.in_progress_expiry_timestamp < int(time.time() * 1000)
                )
                if not lock_lapsed:
                    # Like the DynamoDB layer: compare payload hashes before handing back the record.
                    self._validate_payload(data_payload=data_record, stored_data_record=current)
                    raise IdempotencyItemAlreadyExistsError(old_data_record=current)
            self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


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


class InMemoryChat:
    """A chat surface that records what Signoff posts: cards by channel or person, updates,
    thread replies and notices."""

    def __init__(self, surface: str = "slack", unreachable: set[str] | None = None) -> None:
        self.surface = surface
        self.unreachable = unreachable or set()  # channels or people that cannot be reached
        self.posts: list[tuple[str, Card]] = []  # (destination, card)
        self.updates: list[tuple[MessageRef, Card]] = []
        self.replies: list[tuple[MessageRef, str, str | None]] = []
        self.notices: list[tuple[str, str]] = []
        self._seq = 0

    def _ref(self, where: str, kind: str) -> MessageRef:
        self._seq += 1
        return MessageRef(surface=self.surface, channel=where, ts=f"{self._seq}.000100", kind=kind)

    def post_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        where = channel or f"dm:{person}"
        if (channel or person) in self.unreachable:
            return None
        self.posts.append((where, card))
        return self._ref(where, "card")

    def update_card(self, ref: MessageRef, card: Card) -> None:
        self.updates.append((ref, card))

    def reply(self, ref: MessageRef, text: str, mention: str | None = None) -> None:
        self.replies.append((ref, text, mention))

    def post_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        where = channel or f"dm:{person}"
        if (channel or person) in self.unreachable:
            return None
        self.notices.append((where, text))
        return self._ref(where, "notice")

"""Append-only audit events, hash-chained per checkpoint: each event's hash covers its content and
the previous event's hash, so altering or dropping any event breaks every hash after it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from signoff.domain.policy import canonical_json

GENESIS = "0" * 64


class EventType(StrEnum):
    REQUESTED = "requested"
    GATE_OPENED = "gate_opened"  # the approval workflow started
    NOTIFIED = "notified"  # cards posted
    VOTED = "voted"
    REFUSED = "refused"  # a click that was not allowed (unauthorized, late, duplicate)
    INFO_REQUESTED = "info_requested"
    ESCALATED = "escalated"
    DECIDED = "decided"
    CANCELLED = "cancelled"
    CALLBACK_DELIVERED = "callback_delivered"
    CALLBACK_FAILED = "callback_failed"  # final: the sender retried with backoff and gave up
    CALLER_ANSWERED = "caller_answered"  # an embedding workflow's task token was answered (or failed)
    CARD_UPDATE_FAILED = "card_update_failed"  # a card kept its old content (surface, channel, error code)
    OUTCOME_REPORTED = "outcome_reported"
    # The helpdesk: one trail per conversation (id hd_...), chained like a checkpoint's.
    HELPDESK_TRIAGED = "helpdesk_triaged"  # redacted text, class, sources, confidence, route, latency
    HELPDESK_POSTED = "helpdesk_posted"  # where the bot replied (thread, ephemeral, DM) and what it offered
    HELPDESK_REPEATED = "helpdesk_repeated"  # the same question within the window: linked, not re-answered
    HELPDESK_FEEDBACK = "helpdesk_feedback"  # helpful / not helpful: an outcome for calibration
    HELPDESK_HANDED_OFF = "helpdesk_handed_off"  # summary posted, queue pinged, ticket opened (or why not)
    HELPDESK_CLAIMED = "helpdesk_claimed"
    HELPDESK_RESOLVED = "helpdesk_resolved"
    HELPDESK_RETURNED = "helpdesk_returned"  # "back to the bot"
    HELPDESK_REFUSED = "helpdesk_refused"  # a click the rules do not allow (e.g. claiming one's own request)
    HELPDESK_FORM_SUBMITTED = "helpdesk_form_submitted"  # the approval form's field names (answers on the conversation)
    HELPDESK_APPROVAL_REQUESTED = "helpdesk_approval_requested"  # a step's checkpoint created (id, gate, approvers)
    HELPDESK_APPROVAL_DECIDED = "helpdesk_approval_decided"  # a step's checkpoint decided (status, by)
    HELPDESK_CHANGE_TICKET = "helpdesk_change_ticket"  # every step approved: the change ticket (or why none)
    HELPDESK_EXECUTED = "helpdesk_executed"  # the executor webhook's result (delivered or why not)
    HELPDESK_ESCALATED = "helpdesk_escalated"  # unclaimed past the queue's first-response deadline: on-call pinged
    HELPDESK_ESCALATION_FAILED = "helpdesk_escalation_failed"  # the ping could not be posted: the next sweep retries
    HELPDESK_INCIDENT_OPENED = "helpdesk_incident_opened"  # this report opened an incident (its symptom signature)
    HELPDESK_INCIDENT_JOINED = "helpdesk_incident_joined"  # this report was collapsed into an open incident
    HELPDESK_INCIDENT_REPORT = "helpdesk_incident_report"  # on the incident: another report joined it


class AuditEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint_id: str
    seq: int = Field(ge=1)
    type: EventType
    at: datetime
    actor: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        """What the hash covers: everything but the hash itself."""
        return self.model_dump(mode="json", exclude={"hash"})

    def expected_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()


def chain_event(
    *,
    checkpoint_id: str,
    prev: tuple[int, str] | None,
    type: EventType,
    at: datetime,
    actor: str,
    data: dict[str, Any],
) -> AuditEvent:
    """Build the next event after `prev` = (seq, hash) of the current head (None for the first)."""
    seq, prev_hash = (prev[0] + 1, prev[1]) if prev else (1, GENESIS)
    draft = AuditEvent(
        checkpoint_id=checkpoint_id,
        seq=seq,
        type=type,
        at=at,
        actor=actor,
        data=data,
        prev_hash=prev_hash,
        hash="",
    )
    return draft.model_copy(update={"hash": draft.expected_hash()})


def verify_chain(events: list[AuditEvent]) -> list[str]:
    """Problems found in one checkpoint's events (empty when the chain is intact)."""
    problems: list[str] = []
    prev_hash, prev_seq = GENESIS, 0
    for event in sorted(events, key=lambda e: e.seq):
        where = f"{event.checkpoint_id} event {event.seq}"
        if event.seq != prev_seq + 1:
            problems.append(f"{where}: events {prev_seq + 1}..{event.seq - 1} are missing")
        elif event.prev_hash != prev_hash:
            problems.append(f"{where}: prev_hash does not match the previous event")
        if event.hash != event.expected_hash():
            problems.append(f"{where}: content does not match its hash (altered)")
        prev_hash, prev_seq = event.hash, event.seq
    return problems

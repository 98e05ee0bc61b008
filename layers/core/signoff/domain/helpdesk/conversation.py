"""One helpdesk conversation as stored: the triage of the question (redacted text only), where the
bot answered, and its state (open, handed off, claimed, resolved). Its audit trail is chained like a
checkpoint's (`audit_seq`, `audit_head`) under its own id, so `signoff audit verify` and the archive
treat it the same way."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from signoff.domain.helpdesk.approvals import ApprovalRecord
from signoff.domain.helpdesk.models import Triage
from signoff.domain.helpdesk.text import terms

# A sibling of CHECKPOINT_ID_RE (cp_ + 26 base32): same length and alphabet, its own prefix, so an id
# says which kind of trail it names and a conversation id is never taken for a checkpoint's.
HELPDESK_ID_RE = re.compile(r"^hd_[0-9a-z]{26}$")
_B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def new_conversation_id(now: datetime) -> str:
    """hd_ + 10 chars of milliseconds + 16 random chars (sortable by time, like checkpoint ids)."""
    millis = int(now.timestamp() * 1000)
    head = "".join(_B32[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    return "hd_" + head + "".join(secrets.choice(_B32) for _ in range(16))


def question_key(redacted_question: str) -> str:
    """The same question, however it is cased or punctuated: a hash of its sorted distinct terms.
    Computed from redacted text only, so the key never encodes a secret."""
    return hashlib.sha256(" ".join(sorted(set(terms(redacted_question)))).encode()).hexdigest()[:32]


class ConversationState(StrEnum):
    OPEN = "open"  # the bot answered or asked for an approval draft
    HANDED_OFF = "handed_off"  # a person's queue has it
    CLAIMED = "claimed"
    RESOLVED = "resolved"


def awaiting_first_response(conversation: Conversation) -> bool:
    """Handed to a queue, nobody has claimed it, and its on-call has not been pinged yet."""
    return (
        conversation.state is ConversationState.HANDED_OFF
        and conversation.first_response_due is not None
        and conversation.escalated_at is None
    )


class Conversation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=HELPDESK_ID_RE.pattern)
    asker: str  # Slack user id
    team: str | None = None
    channel: str  # where it was asked
    thread_ts: str | None  # the thread the bot replies in (None for a DM or a slash command)
    source: str  # mention | message | dm | command
    created_at: datetime
    triage: Triage
    question_key: str
    state: ConversationState = ConversationState.OPEN
    reply_channel: str | None = None  # where the bot's reply is (a DM channel for DM visibility)
    reply_ts: str | None = None
    ticket_key: str | None = None
    ticket_url: str | None = None
    claimed_by: str | None = None
    feedback: dict[str, str] = Field(default_factory=dict)  # Slack user id -> helpful | not_helpful
    approval: ApprovalRecord | None = None  # the submitted approval form and its steps' checkpoints
    # Handed off and unclaimed past this moment: the queue's on-call is pinged, once (escalated_at).
    first_response_due: datetime | None = None
    escalated_at: datetime | None = None
    # An incident: its symptom signature, where its thread is, and reports that joined it before the
    # thread existed (relayed when it does). A collapsed report names the incident it joined instead.
    incident_key: str | None = None
    incident_channel: str | None = None
    incident_ts: str | None = None
    incident_ready: bool = False
    incident_pending: list[str] = Field(default_factory=list)
    incident_of: str | None = None
    audit_seq: int = 0
    audit_head: str = ""

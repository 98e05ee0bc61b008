"""Item keys of the single table, shared by the DynamoDB adapter and the in-memory fake so both
order and page checkpoints the same way."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from signoff.domain.errors import InvalidPageToken
from signoff.domain.models import Checkpoint, Status

META = "META"


def pk(checkpoint_id: str) -> str:
    return f"CP#{checkpoint_id}"


def event_sk(seq: int) -> str:
    return f"EVT#{seq:08d}"


def status_pk(status: Status) -> str:
    return f"STATUS#{status.value}"


def status_sk(cp: Checkpoint) -> str:
    # Pending checkpoints sort by deadline (the ones about to time out first); decided ones by
    # decision time, so "decided since T" is one key range (the sweeper's unanswered-caller window)
    # however many older decisions the table holds; creation time when neither is known.
    return f"{status_time(cp).isoformat()}#{cp.id}"


def status_time(cp: Checkpoint) -> datetime:
    """The time a checkpoint sorts by within its status (see status_sk)."""
    if cp.status is Status.PENDING:
        return cp.deadline or cp.created_at
    return cp.decided_at or cp.created_at


def status_since(since: datetime) -> str:
    """The lowest status_sk at or after `since` (the id follows the time, after '#')."""
    return since.isoformat()


def encode_token(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        key = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidPageToken() from None
    if not isinstance(key, dict) or not all(isinstance(v, str) for v in key.values()):
        raise InvalidPageToken()
    return key

"""What a person typed with an act (a modal on Slack, card inputs on Teams), checked before anything
is recorded: a missing reason or a malformed condition goes back to the form as an error next to
its field, not into the audit trail as a refused decision. One set of rules and words for every
surface; each surface only reads its platform's shape into `{Field: text}` and shows the errors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from signoff.domain.acts import Act

_CLOCK_TIME = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(\s*(UTC|Z))?$", re.IGNORECASE)


class Field(StrEnum):
    """The inputs an act may carry; both surfaces use these as their input ids."""

    REASON = "reason"
    COMMENT = "comment"
    NOT_BEFORE = "not_before"
    CANARY = "canary_percent"
    NOTE = "note"
    QUESTION = "question"


COMMENT_REQUIRED = "This is a high-risk approval: a comment is required."
REASON_REQUIRED = "A reason is required to deny."
QUESTION_REQUIRED = "Write the question for the requester."

# The field a refusal about the text (reason or comment missing) is shown next to.
TEXT_FIELD = {
    Act.DENY: Field.REASON,
    Act.APPROVE: Field.COMMENT,
    Act.APPROVE_WITH_CONDITIONS: Field.NOTE,
    Act.REQUEST_INFO: Field.QUESTION,
    Act.VETO: Field.REASON,
}


@dataclass(frozen=True)
class Submission:
    act: Act
    comment: str | None = None
    conditions: dict[str, Any] | None = None
    errors: dict[Field, str] = field(default_factory=dict)  # empty when the act may be tried


Values = Mapping[Field, str | None]


def parse_not_before(text: str, now: datetime) -> datetime:
    """`HH:MM [UTC]` (the next such time) or an ISO 8601 time (UTC when no offset is given)."""
    match = _CLOCK_TIME.match(text.strip())
    if match:
        at = now.astimezone(UTC).replace(hour=int(match["h"]), minute=int(match["m"]), second=0, microsecond=0)
        return at if at > now else at + timedelta(days=1)
    try:
        at = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("Use HH:MM UTC (e.g. 18:00 UTC) or an ISO time (e.g. 2026-01-02T18:00Z).") from None
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at <= now:
        raise ValueError(f"This time has already passed (it is {now:%H:%M} UTC now).")
    return at


def read_inputs(act: Act, values: Values, *, now: datetime, comment_required: bool) -> Submission:
    """The comment and conditions `act` carries (`values`: stripped text, None when empty)."""
    if act is Act.APPROVE_WITH_CONDITIONS:
        return _conditions(values, now=now, comment_required=comment_required)
    required = {
        Act.DENY: REASON_REQUIRED,
        Act.REQUEST_INFO: QUESTION_REQUIRED,
        Act.APPROVE: COMMENT_REQUIRED if comment_required else None,
    }.get(act)
    text_field = TEXT_FIELD.get(act)
    text = values.get(text_field) if text_field else None
    if required and text is None:
        assert text_field is not None
        return Submission(act, errors={text_field: required})
    return Submission(act, comment=text)


def _conditions(values: Values, *, now: datetime, comment_required: bool) -> Submission:
    errors: dict[Field, str] = {}
    conditions: dict[str, Any] = {}
    not_before = values.get(Field.NOT_BEFORE)
    if not_before is not None:
        try:
            conditions["not_before"] = parse_not_before(not_before, now).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError as exc:
            errors[Field.NOT_BEFORE] = str(exc)
    canary = values.get(Field.CANARY)
    if canary is not None:
        if canary.isdigit() and 1 <= int(canary) <= 100:
            conditions["canary_percent"] = int(canary)
        else:
            errors[Field.CANARY] = "A whole percentage from 1 to 100."
    if not conditions and not errors:
        errors[Field.NOT_BEFORE] = "Give at least one condition, or use Approve."
    note = values.get(Field.NOTE)
    if comment_required and note is None:
        errors[Field.NOTE] = COMMENT_REQUIRED
    return Submission(Act.APPROVE_WITH_CONDITIONS, comment=note, conditions=conditions or None, errors=errors)

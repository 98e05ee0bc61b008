"""What a submitted modal says, checked before anything is recorded: a missing reason or a
malformed condition goes back to the form as an error next to the field (Slack's
`response_action: errors`), not into the audit trail as a refused decision."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from signoff.cards import Act
from signoff.slack.blocks import Field, Form

_CLOCK_TIME = re.compile(r"^(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)(\s*(UTC|Z))?$", re.IGNORECASE)

ACTS = {
    Form.DENY: Act.DENY,
    Form.COMMENT: Act.APPROVE,
    Form.CONDITIONS: Act.APPROVE_WITH_CONDITIONS,
    Form.INFO: Act.REQUEST_INFO,
}
# The field a refusal about the text (reason or comment missing) is shown next to.
TEXT_FIELD = {
    Form.DENY: Field.REASON,
    Form.COMMENT: Field.COMMENT,
    Form.CONDITIONS: Field.NOTE,
    Form.INFO: Field.QUESTION,
}


@dataclass(frozen=True)
class Submission:
    act: Act
    comment: str | None = None
    conditions: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)  # block id -> message


def value(values: dict[str, Any], name: Field) -> str | None:
    """The stripped text of one input of `view.state.values`, None when empty or absent."""
    state = (values.get(name.value) or {}).get(name.value) or {}
    text = state.get("value")
    return text.strip() or None if isinstance(text, str) else None


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


def read_form(form: Form, values: dict[str, Any], *, now: datetime, comment_required: bool) -> Submission:
    """Validate one submitted form; `errors` is empty when the act may be tried."""
    act = ACTS[form]
    if form is Form.CONDITIONS:
        return _conditions(values, now=now, comment_required=comment_required)
    text = value(values, TEXT_FIELD[form])
    if text is None:
        message = {
            Form.DENY: "A reason is required to deny.",
            Form.COMMENT: "This is a high-risk approval: a comment is required.",
            Form.INFO: "Write the question for the requester.",
        }[form]
        return Submission(act, errors={TEXT_FIELD[form].value: message})
    return Submission(act, comment=text)


def _conditions(values: dict[str, Any], *, now: datetime, comment_required: bool) -> Submission:
    errors: dict[str, str] = {}
    conditions: dict[str, Any] = {}
    not_before = value(values, Field.NOT_BEFORE)
    if not_before is not None:
        try:
            conditions["not_before"] = parse_not_before(not_before, now).strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError as exc:
            errors[Field.NOT_BEFORE.value] = str(exc)
    canary = value(values, Field.CANARY)
    if canary is not None:
        if canary.isdigit() and 1 <= int(canary) <= 100:
            conditions["canary_percent"] = int(canary)
        else:
            errors[Field.CANARY.value] = "A whole percentage from 1 to 100."
    if not conditions and not errors:
        errors[Field.NOT_BEFORE.value] = "Give at least one condition, or use Approve."
    note = value(values, Field.NOTE)
    if comment_required and note is None:
        errors[Field.NOTE.value] = "This is a high-risk approval: a comment is required."
    return Submission(Act.APPROVE_WITH_CONDITIONS, comment=note, conditions=conditions or None, errors=errors)

"""What a Teams click's inputs say, read into the shared input rules (`signoff.domain.inputs`):
Teams' inputs arrive merged into the action's data, as text or, from Input.Number, as a number.
The errors share the top of the card (Slack shows each beside its field), so one about a value
that was typed in names its field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from signoff.domain.acts import MAX_COMMENT, Act
from signoff.domain.inputs import Field, read_inputs

_LABELS = {Field.NOT_BEFORE: "Not before", Field.CANARY: "Canary percent"}


@dataclass(frozen=True)
class ClickInputs:
    comment: str | None = None
    conditions: dict[str, Any] | None = None
    error: str | None = None  # shown to the clicker; nothing is recorded


def text(data: Mapping[str, Any], field: Field) -> str | None:
    """One input's value as text (an Input.Number's 5.0 is "5"), None when empty or absent."""
    raw = data.get(field.value)
    if raw is None or isinstance(raw, bool):
        return None
    value = (f"{raw:g}" if isinstance(raw, float) else str(raw)).strip()
    return value[:MAX_COMMENT] or None


def read_click_inputs(act: Act, data: Mapping[str, Any], *, now: datetime, comment_required: bool) -> ClickInputs:
    """The comment and conditions an act carries; `error` is set when it may not be tried yet."""
    read = read_inputs(act, {f: text(data, f) for f in Field}, now=now, comment_required=comment_required)
    if read.errors:
        error = " ".join(
            f"{_LABELS[f]}: {message}" if f in _LABELS and text(data, f) is not None else message
            for f, message in read.errors.items()
        )
        return ClickInputs(error=error)
    return ClickInputs(read.comment, read.conditions)

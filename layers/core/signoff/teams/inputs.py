"""What a click's inputs say, checked before anything is recorded: a missing reason or a
malformed condition goes back to the clicker on their card, not into the audit trail as a refused
decision. The rules (and their words) are the Slack modals' (`signoff.slack.forms`): Teams' inputs
arrive merged into the action's data, as text or, from Input.Number, as a number, and are handed
to those rules in the shape of a submitted modal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from signoff.cards import Act
from signoff.decisions import MAX_COMMENT
from signoff.slack.blocks import Field, Form
from signoff.slack.forms import read_form

# The form whose rules an act's inputs follow. Approve follows the comment form only where the
# gate requires a comment; a veto's reason is optional.
_FORMS = {Act.DENY: Form.DENY, Act.APPROVE_WITH_CONDITIONS: Form.CONDITIONS, Act.REQUEST_INFO: Form.INFO}
_LABELS = {Field.NOT_BEFORE: "Not before", Field.CANARY: "Canary percent"}


@dataclass(frozen=True)
class Submission:
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


def read_inputs(act: Act, data: Mapping[str, Any], *, now: datetime, comment_required: bool) -> Submission:
    """The comment and conditions an act carries; `error` is set when it may not be tried yet."""
    form = Form.COMMENT if act is Act.APPROVE and comment_required else _FORMS.get(act)
    if form is None:
        comment_field = {Act.APPROVE: Field.COMMENT, Act.VETO: Field.REASON}.get(act)
        return Submission(text(data, comment_field) if comment_field else None)
    # view.state.values as Slack submits it: {block id: {action id: {"value": text}}}.
    values = {f.value: {f.value: {"value": text(data, f)}} for f in Field}
    read = read_form(form, values, now=now, comment_required=comment_required)
    if read.errors:
        # Slack shows each message beside its field; here they share the top of the card, so one
        # about a value that was typed in names its field.
        named = [(Field(name), message) for name, message in read.errors.items()]
        error = " ".join(
            f"{_LABELS[f]}: {message}" if f in _LABELS and text(data, f) is not None else message
            for f, message in named
        )
        return Submission(error=error)
    return Submission(read.comment, read.conditions)

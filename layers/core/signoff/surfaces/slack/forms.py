"""A submitted Slack modal, read into the shared input rules (`signoff.domain.inputs`): which act a
form records, its text inputs from `view.state.values`, and errors keyed by block id for Slack's
`response_action: errors`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from signoff.domain.acts import Act
from signoff.domain.inputs import TEXT_FIELD as ACT_TEXT_FIELD
from signoff.domain.inputs import Field, read_inputs
from signoff.surfaces.slack.blocks import Form

ACTS = {
    Form.DENY: Act.DENY,
    Form.COMMENT: Act.APPROVE,
    Form.CONDITIONS: Act.APPROVE_WITH_CONDITIONS,
    Form.INFO: Act.REQUEST_INFO,
}
# The field a refusal about the text (reason or comment missing) is shown next to.
TEXT_FIELD = {form: ACT_TEXT_FIELD[act] for form, act in ACTS.items()}


@dataclass(frozen=True)
class FormData:
    act: Act
    comment: str | None = None
    conditions: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)  # block id -> message


def value(values: dict[str, Any], name: Field) -> str | None:
    """The stripped text of one input of `view.state.values`, None when empty or absent."""
    state = (values.get(name.value) or {}).get(name.value) or {}
    text = state.get("value")
    return text.strip() or None if isinstance(text, str) else None


def read_form(form: Form, values: dict[str, Any], *, now: datetime, comment_required: bool) -> FormData:
    """Validate one submitted form; `errors` is empty when the act may be tried. The comment form
    is only shown where a comment is required, so it always requires one."""
    act = ACTS[form]
    read = read_inputs(
        act,
        {f: value(values, f) for f in Field},
        now=now,
        comment_required=comment_required or form is Form.COMMENT,
    )
    errors = {f.value: message for f, message in read.errors.items()}
    return FormData(act, comment=read.comment, conditions=read.conditions, errors=errors)

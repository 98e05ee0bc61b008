"""Adaptive Card 1.5 rendering of a checkpoint card, with Universal Actions.

The content is `signoff.domain.cards.Card`, the same one Slack renders. Buttons are `Action.Execute`
whose verb is the act and whose data is `{"checkpoint_id": ...}` and nothing else: the task token
never leaves the backend. Acts that need words (deny, approve with conditions, a comment-required
approve, request more info, the veto's confirmation) open their inputs inline with
`Action.ShowCard`; the inputs' values come back merged into the action's data. Each Execute has an
`Action.Submit` fallback for clients without Universal Actions (its data adds the verb, which a
Submit cannot carry otherwise).

A pending card names its approvers in `refresh.userIds` (at most 60, Teams' limit): their clients
ask the bot for their own view (verb `refresh`), e.g. without the vote buttons once they voted.
A decided card has the outcome and no actions and no refresh. Requester-supplied text is
markdown-escaped (a summary cannot forge a link) and every part is cut to a budget that keeps the
message well under Teams' ~28 KB."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from signoff.domain.acts import MAX_COMMENT, Act
from signoff.domain.cards import Button, Card, deadline_text, hhmm
from signoff.domain.inputs import COMMENT_REQUIRED, QUESTION_REQUIRED, REASON_REQUIRED, Field
from signoff.domain.models import Checkpoint

Json = dict[str, Any]

CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
REFRESH_VERB = "refresh"
MAX_REFRESH_USERS = 60  # Teams refreshes user-specific views for at most 60 users
ELLIPSIS = "…"
_STYLES = {"primary": "positive", "danger": "destructive"}
_OUTCOME_COLORS = {"Approved": "Good", "Denied": "Attention", "Expired": "Warning", "Cancelled": "Warning"}
_VOTE_ACTS = frozenset({Act.APPROVE, Act.APPROVE_WITH_CONDITIONS, Act.DENY, Act.VETO})
_DIFF_IN_CARD = 1200  # the whole diff is in View details
# What Teams' card markdown (a CommonMark subset: emphasis, links, lists) would read as markup; a
# `(` only links after a `]`, and `#`, `-`, `+` or `1.` only mean something at the start of a line.
_MARKDOWN = re.compile(r"([\\`*_\[\]<>~])")
_LINE_START = re.compile(r"^(\s*)(\d*)([-+#.)])", re.MULTILINE)


@dataclass(frozen=True)
class View:
    """How one card is shown: to whom it refreshes, whether Approve asks for a comment, and what
    the one person it is rendered for should read first."""

    user_ids: tuple[str, ...] = ()  # refresh.userIds: the approvers' Teams ids
    comment_required: bool = False
    notice: str | None = None  # e.g. a refusal, for the person who clicked
    notice_ok: bool = True
    voted: bool = False  # the viewer voted: no more vote buttons for them
    interactive: bool = True


# -- text ----------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Requester text shown as typed: markup characters backslash-escaped, list markers too."""
    escaped = _MARKDOWN.sub(r"\\\1", text)
    # Only the marker's punctuation is escaped: `1\.` (a backslash before a digit would show).
    return _LINE_START.sub(lambda m: m[0] if m[2] and m[3] in "-+#" else f"{m[1]}{m[2]}\\{m[3]}", escaped)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut (never inside an escape)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    if cut.endswith("\\") and not cut.endswith("\\\\"):
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS


def link(title: str, url: str) -> str:
    # A `)` or a space would end the URL early: percent-encode them.
    return f"[{escape(title)}]({url.replace(' ', '%20').replace(')', '%29')})"


def text_block(text: str, limit: int = 2000, **props: Any) -> Json:
    return {"type": "TextBlock", "text": clip(text, limit), "wrap": True, **props}


def _lines(title: str, lines: list[str], limit: int, more: str = "") -> list[Json]:
    """A bold title and whole bullet lines while they fit, then how many were left out."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        item = f"- {line}"
        tail = f"…and {len(lines) - i} more{more}"
        if used + len(item) + 1 + len(tail) > limit:
            out.append(tail)
            break
        out.append(item)
        used += len(item) + 1
    return [text_block(f"**{title}**", spacing="Medium"), text_block("\r".join(out) or "none", limit)]


# -- the card ------------------------------------------------------------------------------------


def adaptive_card(card: Card, view: View | None = None) -> Json:
    """The card as an Adaptive Card: what is asked, how confident and risky, the evidence, the
    deadline and what happens then, the votes, the ids an auditor needs; actions while undecided,
    the outcome (who, when, why, conditions) once decided."""
    view = view or View()
    decided = card.outcome is not None
    body: list[Json] = []
    if view.notice:
        color = "Good" if view.notice_ok else "Attention"
        body.append(text_block(escape(view.notice), 500, weight="Bolder", color=color))
    body.append(text_block(escape(card.title), 150, size="Large", weight="Bolder", style="heading"))
    if card.outcome is not None:
        color = _OUTCOME_COLORS.get(card.outcome.split(" ", 1)[0], "Default")
        body.append(text_block(escape(card.outcome), 2400, weight="Bolder", color=color))
    body.append(text_block(escape(card.summary), 1000))
    body.append(text_block(f"**{escape(card.score_line)}**", spacing="Medium"))
    body += _lines("Why this score", [escape(line) for line in card.why], 1500, more=" in View details")
    body += _lines("Risk", [escape(line) for line in card.risk], 1000)
    body += _lines("Evidence", _evidence(card), 2500, more=" in View details")
    if card.recommendation:
        body += [text_block("**Recommendation**", spacing="Medium"), text_block(escape(card.recommendation), 1000)]
    if card.deadline and not decided:
        body.append(text_block(f"⏳ **{escape(card.deadline)}**", 500, spacing="Medium"))
    if card.votes:
        body.append(text_block(f"☑ {escape(card.votes)}", 500))
    if card.escalated and not decided:
        body.append(text_block("🚨 Escalated", 100, isSubtle=True))
    body.append(_ids(card))
    content: Json = {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}
    if not decided:
        if view.interactive and card.buttons:
            buttons = [b for b in card.buttons if not (view.voted and b.act in _VOTE_ACTS)]
            content["actions"] = [
                action(card.checkpoint_id, b, comment_required=view.comment_required) for b in buttons
            ]
        if view.user_ids:
            content["refresh"] = refresh(card.checkpoint_id, view.user_ids)
    return content


def _evidence(card: Card) -> list[str]:
    lines = [escape(clip(line, _DIFF_IN_CARD)) for line in card.evidence]
    if card.links:
        lines.append(clip("Links: " + " · ".join(link(title, url) for title, url in card.links), 1200))
    return lines or ["none supplied"]


def _ids(card: Card) -> Json:
    facts = [{"title": name, "value": clip(escape(value), 200)} for name, value in card.ids]
    facts.append({"title": "policy", "value": clip(escape(card.policy_version), 200)})
    return {"type": "FactSet", "facts": facts, "spacing": "Medium", "separator": True}


def refresh(checkpoint_id: str, user_ids: tuple[str, ...]) -> Json:
    return {
        "action": {"type": "Action.Execute", "title": "Refresh", "verb": REFRESH_VERB, "data": _data(checkpoint_id)},
        "userIds": list(dict.fromkeys(user_ids))[:MAX_REFRESH_USERS],
    }


def fallback_text(card: Card) -> str:
    """The message's summary: what notifications and screen readers show."""
    text = f"{card.title} — {card.score_line}"
    if card.outcome:
        text += f" — {card.outcome}"
    return clip(text, 500)


# -- actions -------------------------------------------------------------------------------------


def _data(checkpoint_id: str) -> Json:
    if len(checkpoint_id) > 64:  # ids are 29 characters; anything longer is a bug, not data to carry
        raise ValueError("an action's data holds the checkpoint id only")
    return {"checkpoint_id": checkpoint_id}


def execute(checkpoint_id: str, verb: str, title: str, style: str | None = None) -> Json:
    """An Action.Execute for `verb`, with an Action.Submit fallback for older clients."""
    element: Json = {"type": "Action.Execute", "title": title, "verb": verb, "data": _data(checkpoint_id)}
    if style:
        element["style"] = style
    element["fallback"] = {"type": "Action.Submit", "title": title, "data": {**_data(checkpoint_id), "verb": verb}}
    return element


def action(checkpoint_id: str, b: Button, *, comment_required: bool) -> Json:
    """One card button: a direct Execute, or a ShowCard holding the inputs and its Execute."""
    style = _STYLES.get(b.style or "")
    inputs = _inputs(b.act, comment_required)
    if inputs is None:
        return execute(checkpoint_id, b.act.value, b.label, style)
    submit = {Act.REQUEST_INFO: "Ask", Act.APPROVE_WITH_CONDITIONS: "Approve"}.get(b.act, b.label)
    return {
        "type": "Action.ShowCard",
        "title": b.label,
        "card": {
            "type": "AdaptiveCard",
            "body": inputs,
            "actions": [execute(checkpoint_id, b.act.value, submit, style)],
        },
    }


def _inputs(act: Act, comment_required: bool) -> list[Json] | None:
    match act:
        case Act.DENY:
            hint = "Shown on the card and kept in the audit trail."
            return [_text(Field.REASON, "Reason", required=True, error=REASON_REQUIRED, hint=hint)]
        case Act.APPROVE if comment_required:
            hint = "A high-risk approval needs a comment; it goes in the audit trail."
            return [_text(Field.COMMENT, "Comment", required=True, error=COMMENT_REQUIRED, hint=hint)]
        case Act.APPROVE_WITH_CONDITIONS:
            canary: Json = {
                "type": "Input.Number",
                "id": Field.CANARY.value,
                "label": "Canary percent",
                "min": 1,
                "max": 100,
                "placeholder": "Limit the rollout to this share of traffic (1-100)",
            }
            not_before = _text(
                Field.NOT_BEFORE, "Not before", multiline=False, placeholder="18:00 UTC, or 2026-01-02T18:00Z", limit=40
            )
            note = _text(
                Field.NOTE, "Comment" if comment_required else "Note", required=comment_required, error=COMMENT_REQUIRED
            )
            return [not_before, canary, note]
        case Act.REQUEST_INFO:
            hint = "Posted in the card's thread, mentioning the requester. The deadline does not move."
            return [
                _text(Field.QUESTION, "What do you need to know?", required=True, error=QUESTION_REQUIRED, hint=hint)
            ]
        case Act.VETO:
            # A veto decides at once: one more click (and an optional reason) guards against a stray one.
            return [
                text_block("It will not run. Everyone on the card sees that you vetoed it.", 200),
                _text(Field.REASON, "Reason (optional)"),
            ]
    return None


def _text(
    field: Field,
    label: str,
    *,
    required: bool = False,
    error: str | None = None,
    multiline: bool = True,
    placeholder: str | None = None,
    hint: str | None = None,
    limit: int = MAX_COMMENT,
) -> Json:
    element: Json = {
        "type": "Input.Text",
        "id": field.value,
        "label": label,
        "isMultiline": multiline,
        "maxLength": limit,
        "isRequired": required,
    }
    if error and required:
        element["errorMessage"] = error
    if placeholder or hint:
        element["placeholder"] = placeholder or hint
    return element


# -- other cards ---------------------------------------------------------------------------------


def message_card(text: str, *, ok: bool = False) -> Json:
    """A card holding one message: what someone who may not see a checkpoint is told instead."""
    body = [text_block(escape(text), 500, weight="Bolder", color="Good" if ok else "Attention")]
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body}


def notice_card(text: str, card: Card, view: View | None = None) -> Json:
    """An escalation notice: why it reached you, then the card itself with its actions, so the
    escalation route can decide right there."""
    content = adaptive_card(card, view)
    content["body"] = [text_block(f"🚨 {escape(text)}", 1000, weight="Bolder"), *content["body"]]
    return content


def details_card(card: Card, sections: list[tuple[str, list[str]]]) -> Json:
    """View details: the card's title and outcome, then each (title, lines) section in full, and a
    way back to the card. The lines are plain text (escaped here)."""
    body: list[Json] = [text_block(escape(card.title), 150, size="Large", weight="Bolder", style="heading")]
    if card.outcome:
        body.append(text_block(escape(card.outcome), 2400, weight="Bolder"))
    for title, lines in sections:
        body += _lines(title, [escape(line) for line in lines], 3000)
    body.append(_ids(card))
    return {
        "type": "AdaptiveCard",
        "$schema": SCHEMA,
        "version": VERSION,
        "body": body,
        "actions": [execute(card.checkpoint_id, REFRESH_VERB, "Back to the card")],
    }


def attachment(content: Json) -> Json:
    return {"contentType": CONTENT_TYPE, "content": content}


def details_sections(cp: Checkpoint, card: Card) -> list[tuple[str, list[str]]]:
    """What View details shows beyond the card: the explanation, the score breakdown, the risk
    facts, the gate and every vote, as plain lines."""
    a, facts, gate = cp.assessment, cp.request.risk, cp.assessment.gate
    score = [f"{c.name}: {c.points:g} of {c.max_points:g} — {c.detail}" for c in a.score.contributions]
    score += [f"{p.name}: {p.points:g} — {p.detail}" for p in a.score.penalties]
    score += [f"total {a.score.raw:g}, shown as {a.score.score:g}/100",
              "thresholds: " + ", ".join(f"{k} {v:g}" for k, v in a.thresholds.items())]  # fmt: skip
    risk = [
        f"class {a.risk.risk_class.value}" + (f" (rule {a.risk.rule})" if a.risk.rule else " (default)"),
        "rules that fired: " + (", ".join(a.risk.fired) or "none"),
        f"production data {_yes(facts.production_data)} · migration {_yes(facts.migration)}"
        f" · data {facts.data_sensitivity.value}",
        *card.risk,  # blast radius, rollback, customer impact
    ]
    gate_lines = [
        f"{gate.kind.value} gate {gate.profile}, {gate.approvals_required} approval(s) required",
        f"requester may approve: {_yes(gate.requester_may_approve)} · comment required: {_yes(gate.comment_required)}"
        f" · sensitive: {_yes(gate.sensitive)}",
        deadline_text(cp) or "no deadline",
    ]
    votes = [
        f"{v.name}: {v.kind.value} at {hhmm(v.at)} via {v.surface}"
        + (f" — {v.comment}" if v.comment else "")
        + (" — conditions: " + ", ".join(f"{k} {c}" for k, c in v.conditions.items()) if v.conditions else "")
        for v in cp.votes
    ]
    evidence = [*card.evidence, *(f"{title}: {url}" for title, url in card.links)]
    return [
        ("Summary", [cp.request.summary]),
        ("Explanation", list(a.explanation)),
        ("Score breakdown", score),
        ("Risk", risk),
        ("Gate", gate_lines),
        ("Votes", votes or ["none yet"]),
        ("Evidence", evidence or ["none supplied"]),
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"

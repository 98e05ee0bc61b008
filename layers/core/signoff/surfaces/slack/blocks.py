"""Block Kit rendering of a checkpoint card, and the modals behind its buttons.

Everything shown comes from `signoff.domain.cards.Card` (the same content Teams renders) or, for the
details modal, the checkpoint itself. Buttons carry the checkpoint id and nothing else: the task
token never leaves the backend. Text that came from a requester is escaped (so a summary cannot
ping `<!channel>` or forge a link) and every piece is cut to Slack's limits, with an ellipsis."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from signoff.domain.acts import MAX_COMMENT, Act
from signoff.domain.cards import Button, Card, build_card, deadline_text, hhmm
from signoff.domain.inputs import Field
from signoff.domain.models import Checkpoint

Block = dict[str, Any]
View = dict[str, Any]

# Slack's limits (https://docs.slack.dev/reference/block-kit): a message holds 50 blocks, a modal
# 100; and messages fail near 13.2k characters in practice, so each part of a card has a budget
# well inside that.
MAX_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_CONTEXT = 2000
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_METADATA = 3000
MAX_VIEW_TITLE = 24
ELLIPSIS = "…"

ACTION_PREFIX = "signoff:"
ACTIONS_BLOCK = "signoff_actions"
_DIFF_IN_CARD = 1200  # the whole diff is in View details


class Form(StrEnum):
    """Modal callback ids: which form was submitted."""

    DENY = "signoff_form:deny"
    CONDITIONS = "signoff_form:approve_conditions"
    COMMENT = "signoff_form:approve_comment"
    INFO = "signoff_form:request_info"
    DETAILS = "signoff_form:view_details"


# -- text ----------------------------------------------------------------------------------------


def escape(text: str) -> str:
    """Slack's three control characters; the rest of mrkdwn (bold, code) is harmless."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, ending in an ellipsis when cut. Never leaves half an entity
    (`&am`) or half a link (`<https://…`) behind, which Slack would render as garbage."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(ELLIPSIS)]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = cut.rfind(opener)
        if start != -1 and closer not in cut[start:]:
            cut = cut[:start]
    return cut.rstrip() + ELLIPSIS


def link(url: str, title: str) -> str:
    # A `|` would end the URL early and `>` the link: percent-encode the one, escape the other.
    return f"<{escape(url.replace('|', '%7C'))}|{escape(title)}>"


def _bullets(lines: list[str], limit: int, *, more: str = "") -> str:
    """Whole lines while they fit (each already escaped), then how many were left out."""
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        item = f"• {line}"
        tail = f"\n…and {len(lines) - i} more{more}"
        if used + len(item) + 1 + len(tail) > limit:
            out.append(tail.lstrip("\n"))
            break
        out.append(item)
        used += len(item) + 1
    return "\n".join(out)


# -- blocks --------------------------------------------------------------------------------------


def plain(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    return {"type": "plain_text", "text": clip(text, limit), "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER)}


def section(mrkdwn: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(mrkdwn, MAX_SECTION)}}


def context(mrkdwn: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(mrkdwn, MAX_CONTEXT)}]}


def _titled(title: str, lines: list[str], limit: int = MAX_SECTION, more: str = "") -> Block:
    heading = f"*{title}*\n"
    return section(heading + _bullets(lines, limit - len(heading), more=more))


def button(checkpoint_id: str, b: Button) -> Block:
    if len(checkpoint_id) > MAX_BUTTON_VALUE:  # ids are 29 characters; anything longer is a bug
        raise ValueError("a button value holds the checkpoint id only")
    element: Block = {
        "type": "button",
        "action_id": f"{ACTION_PREFIX}{b.act.value}"[:MAX_ACTION_ID],
        "text": plain(b.label, 75),
        "value": checkpoint_id,
    }
    if b.style:
        element["style"] = b.style
    if b.act is Act.VETO:
        # A veto decides at once: one more click guards against a stray one.
        element["confirm"] = {
            "title": plain("Veto this request?", 100),
            "text": plain("It will not run. Everyone on the card sees that you vetoed it.", 300),
            "confirm": plain("Veto", 30),
            "deny": plain("Cancel", 30),
            "style": "danger",
        }
    return element


def card_blocks(card: Card, *, interactive: bool = True) -> list[Block]:
    """The card as Block Kit: what is asked, how confident and risky, the evidence, the deadline
    and what happens then, the votes so far, the ids an auditor needs; buttons while undecided,
    the outcome (who, when, why, conditions) once decided."""
    decided = card.outcome is not None
    blocks: list[Block] = [header(card.title)]
    if card.outcome is not None:
        icon = _OUTCOME_ICONS.get(card.outcome.split(" ", 1)[0], ":information_source:")
        blocks.append(section(f"{icon} *{clip(escape(card.outcome), 2400)}*"))
    blocks.append(section(clip(escape(card.summary), 1000)))
    blocks.append(_score(card))
    blocks.append(_titled("Risk", [escape(line) for line in card.risk], limit=1000))
    blocks.append(_evidence(card))
    if card.recommendation:
        blocks.append(section(clip("*Recommendation*\n" + escape(card.recommendation), 1000)))
    if card.deadline and not decided:
        blocks.append(section(f":hourglass_flowing_sand: *{escape(card.deadline)}*"))
    if card.votes:
        blocks.append(section(clip(f":ballot_box_with_check: {escape(card.votes)}", 500)))
    if card.escalated and not decided:
        blocks.append(context(":rotating_light: Escalated"))
    if interactive and not decided and card.buttons:
        elements = [button(card.checkpoint_id, b) for b in card.buttons]
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": elements})
    blocks.append(context(_ids(card)))
    return blocks[:MAX_BLOCKS]


_OUTCOME_ICONS = {
    "Approved": ":white_check_mark:",
    "Denied": ":no_entry:",
    "Expired": ":hourglass:",
    "Cancelled": ":heavy_multiplication_x:",
}


def _score(card: Card) -> Block:
    """The score and band, then why: each signal (biggest shortfall first), then each penalty."""
    heading = f"*{escape(card.score_line)}*\n*Why this score*\n"
    why = [escape(line) for line in card.why]
    return section(heading + _bullets(why, 1500 - len(heading), more=" in View details"))


def _evidence(card: Card) -> Block:
    lines = [escape(clip(line, _DIFF_IN_CARD)) for line in card.evidence]
    if card.links:
        links = " · ".join(link(url, title) for title, url in card.links)
        lines.append(clip("Links: " + links, 1200))
    if not lines:
        lines = ["none supplied"]
    return _titled("Evidence", lines, limit=2500, more=" in View details")


def _ids(card: Card) -> str:
    parts = [f"{name} `{escape(value)}`" for name, value in card.ids]
    return clip(" · ".join([*parts, f"policy `{escape(card.policy_version)}`"]), 600)


def fallback_text(card: Card) -> str:
    """The message's plain `text`: what notifications and screen readers show."""
    text = f"{card.title} — {card.score_line}"
    if card.outcome:
        text += f" — {card.outcome}"
    return clip(text, 500)


def notice_blocks(text: str, card: Card) -> list[Block]:
    """An escalation notice: why it reached you, then the card itself, buttons included, so the
    escalation route can decide right there."""
    return [section(f":rotating_light: {clip(escape(text), 1000)}"), *card_blocks(card)][:MAX_BLOCKS]


# -- modals --------------------------------------------------------------------------------------


def _modal(form: Form, title: str, blocks: list[Block], checkpoint_id: str, submit: str | None) -> View:
    if len(checkpoint_id) > MAX_METADATA:
        raise ValueError("private_metadata holds the checkpoint id only")
    view: View = {
        "type": "modal",
        "callback_id": form.value,
        "title": plain(title, MAX_VIEW_TITLE),
        "close": plain("Cancel" if submit else "Close", MAX_VIEW_TITLE),
        "private_metadata": checkpoint_id,
        "blocks": blocks[:MAX_VIEW_BLOCKS],
    }
    if submit:
        view["submit"] = plain(submit, MAX_VIEW_TITLE)
    return view


def _about(card: Card) -> list[Block]:
    lines = [f"*{escape(card.title)}*", escape(card.score_line)]
    if card.deadline:
        lines.append(escape(card.deadline))
    return [section(clip("\n".join(lines), 1500))]


def text_input(
    field: Field, label: str, *, optional: bool, multiline: bool = True, placeholder: str | None = None, hint: str = ""
) -> Block:
    element: Block = {
        "type": "plain_text_input",
        "action_id": field.value,
        "multiline": multiline,
        "max_length": MAX_COMMENT,
    }
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    block: Block = {
        "type": "input",
        "block_id": field.value,
        "optional": optional,
        "label": plain(label, 2000),
        "element": element,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def deny_view(card: Card) -> View:
    reason = text_input(Field.REASON, "Reason", optional=False, hint="Shown on the card and kept in the audit trail.")
    return _modal(Form.DENY, "Deny request", [*_about(card), reason], card.checkpoint_id, "Deny")


def comment_view(card: Card) -> View:
    """Approve on a gate that says comment_required."""
    comment = text_input(
        Field.COMMENT,
        "Comment",
        optional=False,
        hint="A high-risk approval needs a comment; it goes in the audit trail.",
    )
    return _modal(Form.COMMENT, "Approve with comment", [*_about(card), comment], card.checkpoint_id, "Approve")


def conditions_view(card: Card, *, comment_required: bool) -> View:
    not_before = text_input(
        Field.NOT_BEFORE,
        "Not before",
        optional=True,
        multiline=False,
        placeholder="18:00 UTC, or 2026-01-02T18:00Z",
        hint="The action may run only from this time on.",
    )
    canary: Block = {
        "type": "input",
        "block_id": Field.CANARY.value,
        "optional": True,
        "label": plain("Canary percent", 2000),
        "hint": plain("Limit the rollout to this share of traffic (1-100).", 2000),
        "element": {
            "type": "number_input",
            "action_id": Field.CANARY.value,
            "is_decimal_allowed": False,
            "min_value": "1",
            "max_value": "100",
        },
    }
    note = text_input(
        Field.NOTE,
        "Comment" if comment_required else "Note",
        optional=not comment_required,
        hint="A high-risk approval needs a comment." if comment_required else "",
    )
    blocks = [*_about(card), not_before, canary, note]
    return _modal(Form.CONDITIONS, "Approve with conditions", blocks, card.checkpoint_id, "Approve")


def info_view(card: Card) -> View:
    question = text_input(
        Field.QUESTION,
        "What do you need to know?",
        optional=False,
        hint="Posted in the card's thread, mentioning the requester. The deadline does not move.",
    )
    return _modal(Form.INFO, "Request more info", [*_about(card), question], card.checkpoint_id, "Ask")


def result_view(text: str) -> View:
    """Replaces a submitted form whose action was refused (e.g. decided meanwhile)."""
    return {
        "type": "modal",
        "title": plain("Signoff", MAX_VIEW_TITLE),
        "close": plain("Close", MAX_VIEW_TITLE),
        "blocks": [section(escape(text))],
    }


def details_view(cp: Checkpoint) -> View:
    """View details: the full explanation, score breakdown, risk facts, gate and votes."""
    card = build_card(cp)
    a, req = cp.assessment, cp.request
    score = [f"{c.name}: {c.points:g} of {c.max_points:g} — {escape(c.detail)}" for c in a.score.contributions] + [
        f"{p.name}: {p.points:g} — {escape(p.detail)}" for p in a.score.penalties
    ]
    score.append(f"total {a.score.raw:g}, shown as {a.score.score:g}/100")
    score.append("thresholds: " + ", ".join(f"{k} {v:g}" for k, v in a.thresholds.items()))
    facts = req.risk
    risk = [
        f"class {a.risk.risk_class.value}" + (f" (rule {escape(a.risk.rule)})" if a.risk.rule else " (default)"),
        "rules that fired: " + (", ".join(escape(r) for r in a.risk.fired) or "none"),
        f"blast radius {facts.blast_radius_pct:g}% · production data {'yes' if facts.production_data else 'no'}"
        f" · migration {'yes' if facts.migration else 'no'} · data {facts.data_sensitivity.value}",
        "rollback " + (f"available ({facts.rollback_minutes:g} min)" if facts.rollback_minutes else "available")
        if facts.rollback_available else "no rollback",
    ]  # fmt: skip
    if facts.customer_impact:
        risk.append("customer impact: " + escape(facts.customer_impact))
    gate = a.gate
    gate_lines = [
        f"{gate.kind.value} gate `{escape(gate.profile)}`, {gate.approvals_required} approval(s) required",
        f"requester may approve: {'yes' if gate.requester_may_approve else 'no'}"
        f" · comment required: {'yes' if gate.comment_required else 'no'}"
        f" · sensitive: {'yes' if gate.sensitive else 'no'}",
        escape(deadline_text(cp) or "no deadline"),
    ]
    votes = [
        f"{escape(v.name)}: {v.kind.value} at {hhmm(v.at)} via {v.surface}"
        + (f" — {escape(v.comment)}" if v.comment else "")
        + (" — conditions: " + ", ".join(f"{k} {v2}" for k, v2 in v.conditions.items()) if v.conditions else "")
        for v in cp.votes
    ] or ["none yet"]
    evidence = [escape(line) for line in card.evidence] + [link(url, title) for title, url in card.links]
    blocks = [
        header(card.title),
        section(escape(req.summary)),
        *([section(f"*{escape(card.outcome)}*")] if card.outcome else []),
        _titled("Explanation", [escape(line) for line in a.explanation]),
        _titled("Score breakdown", score),
        _titled("Risk", risk),
        _titled("Gate", gate_lines),
        _titled("Votes", votes),
        _titled("Evidence", evidence or ["none supplied"]),
        context(_ids(card)),
    ]
    return _modal(Form.DETAILS, "Checkpoint details", blocks, cp.id, submit=None)


def text_length(blocks: list[Block]) -> int:
    """Characters of text in a list of blocks (what Slack's practical message limit counts)."""
    total = 0
    stack: list[Any] = list(blocks)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                total += len(node["text"])
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(node)
    return total

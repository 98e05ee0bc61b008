"""The messages the bot would post, one template per route, all built from redacted text only.
Answers follow the standard template (short answer, source, next step, escalation path); approvals state
the boundary ("I can draft this request; your manager must approve it"); hand-offs carry a summary a
human can act on without asking again."""

from __future__ import annotations

from signoff.domain.helpdesk.config import Form, Queue
from signoff.domain.helpdesk.models import Citation, Draft, HandoffSummary

_MAX_EXCERPT = 600

_ROTATE = {
    "card_number": "Ask finance to block and replace that card",
    "password": "Change that password now",
}


def _source_line(citation: Citation) -> str:
    stale = " (past its review date: double-check)" if citation.stale else ""
    return f"Source: {citation.title}, section \u201c{citation.section}\u201d ({citation.link}){stale}"


def secret_warning(kinds: list[str]) -> str:
    """What the asker must do when their message held a secret (never repeating it)."""
    action = (
        _ROTATE.get(kinds[0], "Rotate (revoke and replace) that credential now")
        if len(kinds) == 1
        else ("Rotate every one of those credentials now")
    )
    return (
        f"Your message contained {', '.join(k.replace('_', ' ') for k in kinds)}; I have hidden it here. "
        f"{action}, and delete your original message: anyone in the channel could read it."
    )


def answer_message(draft: Draft, next_step: str, queue: Queue) -> str:
    lines = [draft.text[:_MAX_EXCERPT]]
    lines += [_source_line(c) for c in draft.citations[:2]]
    lines.append(f"Next step: {next_step}")
    lines.append(f"Not solved? Choose *Talk to a human* and {queue.handle} takes over.")
    return "\n".join(lines)


def approval_message(form: Form, missing: list[str], sources: list[Citation]) -> str:
    labels = {f.name: f.label for f in form.fields}
    asks = ", ".join(labels[name] for name in missing) if missing else "nothing more: please check the details"
    lines = [
        f"I can draft this request ({form.title}); {form.approvers} must approve it. Nothing is granted until they do.",
        f"I will ask you for: {asks}.",
    ]
    if sources:
        lines.append(_source_line(sources[0]))
    return "\n".join(lines)


def ticket_message(queue: Queue, interpretation: str) -> str:
    return (
        f"I will open a ticket in {queue.ticket_project} for {queue.handle} ({interpretation}). "
        "Updates will come in this thread."
    )


def incident_message(queue: Queue, channel_name: str, collapse_minutes: int) -> str:
    oncall = f"paging the {queue.oncall} on-call" if queue.oncall else f"pinging {queue.handle}"
    return (
        f"This looks like an incident: I am {oncall} and posting it in #{channel_name}. "
        f"Reports of the same problem in the next {collapse_minutes} minutes are joined to this one. "
        "Say what you see, since when, and who else is affected."
    )


def handoff_message(queue: Queue, summary: HandoffSummary) -> str:
    lines = [
        f"I am handing this to {queue.handle}; a person will reply in this thread.",
        f"*Request:* {summary.request}",
        f"*My reading:* {summary.interpretation}",
        f"*Tried:* {'; '.join(summary.tried) or 'nothing'}",
        f"*Stopped because:* {'; '.join(summary.stopped_because)}",
        f"*Known:* {'; '.join(summary.knows) or 'nothing certain'}",
        f"*Not known:* {'; '.join(summary.does_not_know) or '-'}",
        "*Tags:* " + ", ".join(f"{k}={v}" for k, v in summary.tags.items()),
    ]
    return "\n".join(lines)

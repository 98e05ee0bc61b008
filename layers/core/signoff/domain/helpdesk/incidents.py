"""Which incident reports are the same outage, and when the queue's first response is due.

Two reports are the same outage when both name an outage symptom and the same set of subjects
(systems) from helpdesk.yaml's `incident_collapse`: "Slack is down for everyone" and "is slack down?
nothing sends" share the signature of {slack}. The signature is computed from the redacted question
only (a hash of the symptom kind and the subject names), so it never encodes what the redactor took
out. A report naming no subject, or no outage symptom (a phishing click, a stolen laptop), has no
signature: it is its own incident, because each of those needs its own response."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from signoff.domain.helpdesk.config import HelpdeskConfig, IncidentCollapse
from signoff.domain.helpdesk.cues import matching
from signoff.domain.helpdesk.text import stem, words
from signoff.domain.routing import Routing


def _tokens(text: str) -> list[str]:
    return [stem(w) for w in words(text)]  # as cues are matched


def subjects(redacted_question: str, collapse: IncidentCollapse) -> list[str]:
    """The systems the question names (sorted), whatever words it used for them."""
    tokens = _tokens(redacted_question)
    return sorted(name for name, words in collapse.subjects.items() if matching(tokens, words))


def symptom_signature(redacted_question: str, config: HelpdeskConfig) -> str | None:
    """The outage this report describes, as a key; None when it cannot be told apart from others."""
    collapse = config.incident_collapse
    if collapse is None:
        return None
    if not matching(_tokens(redacted_question), collapse.symptoms):
        return None
    named = subjects(redacted_question, collapse)
    if not named:
        return None
    return hashlib.sha256(("outage|" + ",".join(named)).encode()).hexdigest()[:32]


def collapse_until(at: datetime, config: HelpdeskConfig) -> datetime:
    """A report at `at` keeps its incident open for collapsing until this moment."""
    return at + timedelta(seconds=config.incident_collapse_window)


def first_response_due(queue_name: str, handed_off_at: datetime, config: HelpdeskConfig) -> datetime | None:
    """When the queue's on-call is pinged if nobody has claimed the hand-off (None: never)."""
    queue = config.queues.get(queue_name)
    if queue is None or queue.first_response is None:
        return None
    return handed_off_at + timedelta(seconds=queue.first_response)


def oncall_problems(config: HelpdeskConfig, routing: Routing) -> list[str]:
    """Every queue's `oncall` must name a team of routing.yaml that has an on_call rotation."""
    problems = []
    for name, queue in config.queues.items():
        if queue.oncall is None:
            continue
        team = routing.teams.get(queue.oncall)
        if team is None:
            problems.append(f"queues.{name}.oncall: routing has no team {queue.oncall!r}")
        elif team.on_call is None:
            problems.append(f"queues.{name}.oncall: team {queue.oncall!r} has no on_call rotation")
    return problems

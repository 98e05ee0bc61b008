"""The helpdesk's EMF metrics (Powertools, namespace Signoff, dimension service=signoff), emitted by
the use case at the moment each thing happens and flushed by the Slack function's `log_metrics`.

Counts only and durations, with no class dimension: a dimension per class would multiply the
custom metrics (and their cost) and the per-class figures already come from the named SLI queries
over the audit archive (audit/queries/helpdesk_*.sql). The dashboard's helpdesk row graphs these."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from signoff.domain.helpdesk.config import Route
from signoff.observability import metrics

QUESTIONS = "HelpdeskQuestions"
# One count per route, so deflection (answers) and escalation (hand-offs, tickets, incidents) are
# a metric-math ratio over QUESTIONS on the dashboard.
ROUTE_METRICS = {
    Route.ANSWER: "HelpdeskAnswered",
    Route.APPROVAL: "HelpdeskApprovalRequested",
    Route.HANDOFF: "HelpdeskHandedOff",
    Route.TICKET: "HelpdeskTicketed",
    Route.INCIDENT: "HelpdeskIncidents",
}
FIRST_RESPONSE = "HelpdeskFirstResponseTime"  # ms, the question's arrival to the bot's first reply
TRIAGE_LATENCY = "HelpdeskTriageLatency"  # ms, redact -> route
HANDED_OFF_LATER = "HelpdeskTalkToHuman"  # an answer the asker sent to a person
HELPFUL, NOT_HELPFUL = "HelpdeskHelpful", "HelpdeskNotHelpful"
RESOLVED = "HelpdeskResolved"
RESOLUTION_TIME = "HelpdeskResolutionTime"  # seconds, question to resolved
ALL = [
    QUESTIONS,
    *ROUTE_METRICS.values(),
    FIRST_RESPONSE,
    TRIAGE_LATENCY,
    HANDED_OFF_LATER,
    HELPFUL,
    NOT_HELPFUL,
    RESOLVED,
    RESOLUTION_TIME,
]


def question(route: Route, triage_ms: float) -> None:
    metrics.add_metric(name=QUESTIONS, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=ROUTE_METRICS[route], unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=TRIAGE_LATENCY, unit=MetricUnit.Milliseconds, value=triage_ms)


def first_response(elapsed_ms: float) -> None:
    metrics.add_metric(name=FIRST_RESPONSE, unit=MetricUnit.Milliseconds, value=elapsed_ms)


def talk_to_human() -> None:
    metrics.add_metric(name=HANDED_OFF_LATER, unit=MetricUnit.Count, value=1)


def feedback(helpful: bool) -> None:
    metrics.add_metric(name=HELPFUL if helpful else NOT_HELPFUL, unit=MetricUnit.Count, value=1)


def resolved(seconds: float) -> None:
    metrics.add_metric(name=RESOLVED, unit=MetricUnit.Count, value=1)
    metrics.add_metric(name=RESOLUTION_TIME, unit=MetricUnit.Seconds, value=max(0.0, seconds))

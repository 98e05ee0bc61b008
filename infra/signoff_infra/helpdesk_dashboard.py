"""The helpdesk's row on the dashboard: questions by route, deflection and escalation rates, time to
first response, helpfulness and resolution time, from the EMF metrics of signoff.usecases.helpdesk_metrics
(names repeated here, not imported: that module builds Powertools' objects, which synthesis does not
need; the infrastructure tests check the two lists agree). Per-class figures, time to approval and
first-contact resolution come from the named SLI queries (audit/queries/helpdesk_*.sql)."""

from __future__ import annotations

from aws_cdk import aws_cloudwatch as cw

from signoff_infra.monitoring import DASHBOARD_WIDTH, DAY, business_metric

ROUTES = {
    "answered": "HelpdeskAnswered",
    "approval": "HelpdeskApprovalRequested",
    "handedoff": "HelpdeskHandedOff",
    "ticketed": "HelpdeskTicketed",
    "incidents": "HelpdeskIncidents",
}
QUESTIONS = "HelpdeskQuestions"
TALK_TO_HUMAN = "HelpdeskTalkToHuman"
FIRST_RESPONSE = "HelpdeskFirstResponseTime"
TRIAGE_LATENCY = "HelpdeskTriageLatency"
HELPFUL, NOT_HELPFUL = "HelpdeskHelpful", "HelpdeskNotHelpful"
RESOLVED, RESOLUTION_TIME = "HelpdeskResolved", "HelpdeskResolutionTime"
METRICS = {QUESTIONS, *ROUTES.values(), TALK_TO_HUMAN, FIRST_RESPONSE, TRIAGE_LATENCY, HELPFUL, NOT_HELPFUL}
METRICS |= {RESOLVED, RESOLUTION_TIME}
FIRST_RESPONSE_TARGET_MS = 5000
HELPFUL_TARGET_PCT = 80


def _daily(name: str, label: str | None = None) -> cw.Metric:
    return business_metric(name, period=DAY, label=label)


def helpdesk_rows() -> list[list[cw.IWidget]]:
    routes = {key: _daily(name, key) for key, name in ROUTES.items()}
    questions = _daily(QUESTIONS)
    talk = _daily(TALK_TO_HUMAN)
    # Deflected: answered by the bot and not taken to a person afterwards (Talk to a human).
    deflection = cw.MathExpression(
        expression="100 * (FILL(answered, 0) - FILL(talk, 0)) / questions",
        using_metrics={"answered": routes["answered"], "talk": talk, "questions": questions},
        label="Deflected / questions, %",
        period=DAY,
    )
    escalation = cw.MathExpression(
        expression="100 * (FILL(handedoff, 0) + FILL(ticketed, 0) + FILL(incidents, 0) + FILL(talk, 0)) / questions",
        using_metrics={
            "handedoff": routes["handedoff"],
            "ticketed": routes["ticketed"],
            "incidents": routes["incidents"],
            "talk": talk,
            "questions": questions,
        },
        label="Reached a person / questions, %",
        period=DAY,
    )
    helpfulness = cw.MathExpression(
        expression="100 * FILL(helpful, 0) / (FILL(helpful, 0) + FILL(nothelpful, 0))",
        using_metrics={"helpful": _daily(HELPFUL), "nothelpful": _daily(NOT_HELPFUL)},
        label="Helpful / votes, %",
        period=DAY,
    )
    percent = cw.YAxisProps(min=0, max=100)
    return [
        [
            cw.TextWidget(
                markdown="## Helpdesk\nPer day. Per-class figures, time to approval and first-contact resolution: "
                "`signoff audit query helpdesk_…` (audit/queries/helpdesk_*.sql).",
                width=DASHBOARD_WIDTH,
                height=2,
            )
        ],
        [
            cw.GraphWidget(title="Helpdesk questions by route", left=list(routes.values()), stacked=True, width=4),
            cw.GraphWidget(title="Helpdesk deflection rate, %", left=[deflection], left_y_axis=percent, width=4),
            cw.GraphWidget(title="Helpdesk escalation rate, %", left=[escalation], left_y_axis=percent, width=4),
            cw.GraphWidget(
                title="Helpdesk time to first response, ms",
                left=[
                    business_metric(FIRST_RESPONSE, "p50", DAY, "p50"),
                    business_metric(FIRST_RESPONSE, "p90", DAY, "p90"),
                    business_metric(TRIAGE_LATENCY, "p90", DAY, "triage p90"),
                ],
                left_annotations=[cw.HorizontalAnnotation(value=FIRST_RESPONSE_TARGET_MS, label="5 s")],
                width=4,
            ),
            cw.GraphWidget(
                title="Helpdesk helpfulness, %",
                left=[helpfulness],
                left_y_axis=percent,
                left_annotations=[cw.HorizontalAnnotation(value=HELPFUL_TARGET_PCT, label="target")],
                width=4,
            ),
            cw.GraphWidget(
                title="Helpdesk resolution time, s",
                left=[
                    business_metric(RESOLUTION_TIME, "p50", DAY, "p50"),
                    business_metric(RESOLUTION_TIME, "p90", DAY, "p90"),
                ],
                right=[_daily(RESOLVED, "resolved")],
                width=4,
            ),
        ],
    ]

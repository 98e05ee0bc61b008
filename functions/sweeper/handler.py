"""Sweeper: run every 5 minutes by an EventBridge schedule. Counts pending checkpoints and the
ones stalled past their deadline (PendingApprovals, StalledApprovals) and logs the stalled ids;
where the helpdesk is served, pings the on-call of hand-offs unclaimed past their first-response
deadline (as of the schedule's tick)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from signoff import composition
from signoff.observability import log_invocation, metrics, tracer
from signoff.usecases.helpdesk_escalation import escalate_overdue, tick_time
from signoff.usecases.sweeper import sweep


@log_invocation()
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    summary = sweep(composition.repository(), composition.clock()).summary()
    helpdesk = composition.escalations()
    if helpdesk is not None:
        summary["helpdesk"] = escalate_overdue(helpdesk, tick_time(event, composition.clock())).summary()
    return summary

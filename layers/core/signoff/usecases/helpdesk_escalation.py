"""First-response escalation: a hand-off nobody has claimed by its queue's `first_response` deadline
pings the queue's on-call, once.

It runs in the sweeper, on its 5-minute schedule, rather than as a timer per conversation: the
deadlines are 15 minutes to hours (helpdesk.yaml), so five minutes of lateness is within what a
first-response target means, and one schedule that already exists (and already alarms when it goes
silent) beats a Step Functions execution or a one-off EventBridge schedule per hand-off, each of
which would need creating, cancelling on a claim and cleaning up. Due conversations come from the
table's status index (HD#AWAITING, by deadline), never from a scan.

Exactly one ping per conversation: the ping is claimed first, with a conditional save of the
conversation (`escalated_at`, the HELPDESK_ESCALATED event) that only one sweep can win, and posted
after. If the post fails, a second save (HELPDESK_ESCALATION_FAILED) takes the claim back, so the next
sweep tries again; a claim, a resolution or "back to the bot" in between takes the conversation out
of the index and nothing is posted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.audit.events import EventType
from signoff.domain.helpdesk.conversation import Conversation, awaiting_first_response
from signoff.observability import logger, metrics
from signoff.ports import Clock, HelpdeskAction, HelpdeskReply, Posted
from signoff.usecases.helpdesk import HelpdeskService, _Step
from signoff.usecases.helpdesk_incidents import reported_publicly

ESCALATED_METRIC = "HelpdeskEscalations"
BATCH = 50
MAX_BATCHES = 20  # bounds one sweep's work; what is left is due at the next one


class _NotDue(Exception):
    """The conversation was claimed, resolved or escalated since the index listed it."""


@dataclass
class Escalations:
    at: datetime
    pinged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "escalated": len(self.pinged), "failed": len(self.failed)}


def escalate_overdue(service: HelpdeskService, now: datetime) -> Escalations:
    """Ping the on-call of every hand-off unclaimed past its first-response deadline as of `now`."""
    result = Escalations(at=now)
    seen: set[str] = set()
    for _ in range(MAX_BATCHES):
        due = [c for c in service.repo.due_first_response(now, limit=BATCH) if c.id not in seen]
        if not due:
            break
        for conv in due:
            seen.add(conv.id)
            outcome = escalate(service, conv.id, now)
            if outcome is True:
                result.pinged.append(conv.id)
            elif outcome is False:
                result.failed.append(conv.id)
    metrics.add_metric(name=ESCALATED_METRIC, unit=MetricUnit.Count, value=len(result.pinged))
    if result.failed:
        logger.error("helpdesk escalations not posted: retried at the next sweep", extra={"failed": result.failed})
    logger.info("helpdesk first-response sweep", extra=result.summary())
    return result


def escalate(service: HelpdeskService, conversation_id: str, now: datetime) -> bool | None:
    """True: pinged; False: the ping failed (claim taken back); None: nothing was due."""
    config = service.config
    pinged: list[str | None] = [None]  # the on-call the winning claim named

    def claim(current: Conversation) -> _Step:
        due = current.first_response_due
        if not awaiting_first_response(current) or due is None or due > now:
            raise _NotDue
        queue = config.queues[current.triage.queue]
        oncall = pinged[0] = service.oncall(queue.oncall, now) if queue.oncall else None
        data = {
            "queue": current.triage.queue,
            "oncall": oncall,
            "due": due.isoformat(),
            "overdue_s": int((now - due).total_seconds()),
            "ticket_key": current.ticket_key,
        }
        return _Step({"escalated_at": now}, [(EventType.HELPDESK_ESCALATED, "signoff", data)])

    try:
        conv = service._apply(conversation_id, claim)
    except _NotDue:
        return None
    try:
        posted = _ping(service, conv, pinged[0])
    except Exception as exc:  # noqa: BLE001 - any chat failure: recorded, logged, retried next sweep
        data = {"error": type(exc).__name__}
        service._apply(
            conv.id, lambda _c: _Step({"escalated_at": None}, [(EventType.HELPDESK_ESCALATION_FAILED, "signoff", data)])
        )
        logger.warning("helpdesk escalation not posted", extra={"conversation_id": conv.id, **data})
        return False
    logger.info(
        "helpdesk escalated to on-call",
        extra={"conversation_id": conv.id, "queue": conv.triage.queue, "where": posted.where if posted else None},
    )
    return True


def _ping(service: HelpdeskService, conv: Conversation, oncall: str | None) -> Posted | None:
    """In the thread people watch (the incident's, else the asker's) when it is public; else, the
    thread's ping would reach nobody, so a DM to the on-call pointing at the ticket."""
    queue = service.config.queues[conv.triage.queue]
    waited = _duration(queue.first_response or 0)
    ticket = f" Ticket: {conv.ticket_key} {conv.ticket_url}" if conv.ticket_key else ""
    if conv.incident_channel and conv.incident_ts:
        where: tuple[str, str | None] | None = (conv.incident_channel, conv.incident_ts)
    elif reported_publicly(conv):
        where = (conv.channel, conv.thread_ts)
    else:
        where = None
    if where is not None:
        text = f"Nobody has claimed this within {waited}: on-call for {queue.handle}, please take it.{ticket}"
        ping = HelpdeskReply(
            conversation_id=conv.id,
            text=text,
            actions=[HelpdeskAction.CLAIM],
            mention_users=[oncall] if oncall else [],
            mention_groups=[] if oncall else [queue.usergroup],
        )
        return service.chat.reply(*where, ping)
    if oncall is None:
        logger.warning("private hand-off overdue and no on-call known", extra={"conversation_id": conv.id})
        return None
    text = (
        f"A {queue.area} request handed to {queue.handle} has not been claimed within {waited}; "
        f"you are on call.{ticket or ' It has no ticket: ask ' + queue.handle + ' for the thread.'}"
    )
    reply = HelpdeskReply(conversation_id=conv.id, text=text, actions=[HelpdeskAction.CLAIM])
    return service.chat.direct(oncall, reply)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def tick_time(event: Mapping[str, Any], clock: Clock) -> datetime:
    """What is overdue is judged as of the schedule's tick: EventBridge's scheduled event carries its
    `time`. Only principals allowed to invoke the sweeper can send one (the schedule, an operator, the
    local stack's `POST /local/sweep`, which is how tests sweep "as of" a moment); without a valid
    time, the clock."""
    raw = event.get("time")
    if isinstance(raw, str):
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            return clock.now()
        if at.tzinfo is not None:
            return at.astimezone(UTC)
    return clock.now()

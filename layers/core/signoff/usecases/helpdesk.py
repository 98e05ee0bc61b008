"""The helpdesk use case: an employee's question in, the router's triage acted on through ports.

- **answer**: a reply with the standard template and Helpful / Not helpful / Talk to a human; the same
  question again in the channel within `repeat_window` gets a link to the earlier answer instead;
- **approval**: the bot states its boundary ("I can draft this request; … must approve it") and
  offers a person;
- **hand-off / ticket / incident**: the summary, a ping to the queue's user group (and its on-call
  for incidents), a ticket through the Ticketing port, and Claim / Resolved / Back to the bot.

The router redacts first: from then on only `Triage.question` (redacted) exists here. The text as
typed is never logged, stored, posted or put in a ticket. Each conversation gets its own id (hd_…)
and its own hash-chained audit trail; every step is an event. Nothing here knows Slack."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from signoff.audit.events import AuditEvent, EventType, chain_event
from signoff.domain.errors import Conflict, StaleCheckpoint
from signoff.domain.helpdesk.config import Route, Visibility
from signoff.domain.helpdesk.conversation import (
    Conversation,
    ConversationState,
    new_conversation_id,
    question_key,
)
from signoff.domain.helpdesk.incidents import first_response_due
from signoff.domain.helpdesk.messages import handoff_message
from signoff.domain.helpdesk.models import Asker, HandoffSummary, Triage
from signoff.domain.helpdesk.router import Helpdesk
from signoff.observability import logger
from signoff.ports import (
    Clock,
    ConversationRepository,
    HelpdeskAction,
    HelpdeskChat,
    HelpdeskReply,
    Posted,
    TicketDraft,
    Ticketing,
    TicketingError,
)
from signoff.usecases import helpdesk_metrics
from signoff.usecases.helpdesk_incidents import Incidents

ANSWER_ACTIONS = [HelpdeskAction.HELPFUL, HelpdeskAction.NOT_HELPFUL, HelpdeskAction.HUMAN]
HANDOFF_ACTIONS = [HelpdeskAction.CLAIM, HelpdeskAction.RESOLVED, HelpdeskAction.BACK]
SAVE_ATTEMPTS = 5  # two clicks on one conversation at once: the loser re-reads and re-applies


@dataclass(frozen=True)
class Question:
    """A message as the surface read it. `text` is as typed: only the router ever reads it."""

    text: str
    user: str
    channel: str
    thread_ts: str | None  # the thread to answer in (the message's own ts for a new thread)
    source: str  # mention | message | dm | command
    team: str | None = None


@dataclass(frozen=True)
class _Step:
    """What one step changes on a conversation and the audit events it writes."""

    updates: dict[str, Any]
    events: list[tuple[EventType, str, dict[str, Any]]]


class HelpdeskService:
    def __init__(
        self,
        helpdesk: Helpdesk,
        repo: ConversationRepository,
        chat: HelpdeskChat,
        clock: Clock,
        ticketing: Ticketing | None = None,
        oncall: Callable[[str, datetime], str | None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`oncall(rotation, at)` names the chat user on call for a rotation now (None: unknown)."""
        self.helpdesk = helpdesk
        self.repo = repo
        self.chat = chat
        self.clock = clock
        self.ticketing = ticketing
        self.oncall = oncall or (lambda _rotation, _at: None)
        self.monotonic = monotonic

    @property
    def config(self) -> Any:
        return self.helpdesk.loaded.config

    # -- a question ----------------------------------------------------------------------------------

    def ask(self, question: Question) -> Conversation:
        """Triage the question, record it and act on its route; count it and time the first reply."""
        started = self.monotonic()
        conv = self._ask(question)
        helpdesk_metrics.first_response(round((self.monotonic() - started) * 1000, 1))
        return conv

    def _ask(self, question: Question) -> Conversation:
        started = self.monotonic()
        now = self.clock.now()
        triage = self.helpdesk.triage(question.text, Asker(user_id=question.user), question.channel, now.date())
        conv = Conversation(
            id=new_conversation_id(now),
            asker=question.user,
            team=question.team,
            channel=question.channel,
            thread_ts=question.thread_ts,
            source=question.source,
            created_at=now,
            triage=triage,
            question_key=question_key(triage.question),
        )
        latency_ms = round((self.monotonic() - started) * 1000, 1)
        first = chain_event(
            checkpoint_id=conv.id,
            prev=None,
            type=EventType.HELPDESK_TRIAGED,
            at=now,
            actor=_actor(question.user),
            data=_triaged(triage, question, latency_ms),
        )
        conv = conv.model_copy(update={"audit_seq": first.seq, "audit_head": first.hash})
        self.repo.create(conv, [first])
        _log("helpdesk triaged", conv, route=triage.route.value, latency_ms=latency_ms)
        helpdesk_metrics.question(triage.route, latency_ms)
        earlier = self._earlier_answer(conv)
        if earlier is not None:
            return self._link_earlier(conv, *earlier)
        if triage.route is Route.ANSWER:
            conv = self._post(conv, triage.message, ANSWER_ACTIONS)
            if triage.visibility is Visibility.PUBLIC_THREAD:
                self.repo.remember_question(conv.channel, conv.question_key, conv.id, now)
            return conv
        if triage.route is Route.APPROVAL:
            # The boundary, the form where the class has an approval flow (usecases/helpdesk_approvals.py),
            # and a person on request.
            flow = self.config.classes[triage.class_name].approval
            actions = [HelpdeskAction.REQUEST, HelpdeskAction.HUMAN] if flow else [HelpdeskAction.HUMAN]
            return self._post(conv, triage.message, actions)
        if triage.route is Route.INCIDENT:  # the same outage again joins the open incident's thread
            incidents = self._incidents()
            conv, joined = incidents.file(conv, now)
            return conv if joined else incidents.opened(self._hand_off(conv, actor=conv.asker, stopped_because=None))
        return self._hand_off(conv, actor=conv.asker, stopped_because=None)

    def _incidents(self) -> Incidents:
        return Incidents(
            self.repo,
            self.chat,
            self.config,
            apply=lambda conversation_id, change: self._apply(conversation_id, lambda c: _Step(*change(c))),
            post=lambda conv, text, actions: self._post(conv, text, actions),
        )

    def _earlier_answer(self, conv: Conversation) -> tuple[str, str] | None:
        """(conversation id, link) of an answer to the same question in this channel within the window."""
        triage = conv.triage
        if triage.route is not Route.ANSWER or triage.visibility is not Visibility.PUBLIC_THREAD:
            return None
        found = self.repo.recent_question(conv.channel, conv.question_key)
        if found is None or (conv.created_at - found[1]).total_seconds() > self.config.repeat_window:
            return None
        earlier = self.repo.get(found[0])
        link = (
            self.chat.permalink(earlier.reply_channel, earlier.reply_ts)
            if earlier.reply_channel and earlier.reply_ts
            else None
        )
        return (earlier.id, link) if link else None

    def _link_earlier(self, conv: Conversation, earlier_id: str, link: str) -> Conversation:
        text = f"This was answered a few minutes ago: {link}\nStill stuck? Choose *Talk to a human*."
        conv = self._post(conv, text, [HelpdeskAction.HUMAN])
        data = {"earlier": earlier_id, "link": link}
        return self._apply(conv.id, lambda _c: _Step({}, [(EventType.HELPDESK_REPEATED, "signoff", data)]))

    # -- posting -------------------------------------------------------------------------------------

    def _send(self, conv: Conversation, reply: HelpdeskReply) -> Posted:
        """Where the triage's visibility allows: the thread, the thread privately, or a DM."""
        visibility = conv.triage.visibility
        if conv.source == "dm":
            return self.chat.reply(conv.channel, conv.thread_ts, reply)
        if conv.source == "command" and visibility is not Visibility.DM:
            # A slash command is invisible to the channel: the answer is for the asker alone.
            return self.chat.reply_privately(conv.channel, None, conv.asker, reply)
        if visibility is Visibility.DM:
            return self.chat.direct(conv.asker, reply)
        if visibility is Visibility.PRIVATE_THREAD:
            return self.chat.reply_privately(conv.channel, conv.thread_ts, conv.asker, reply)
        return self.chat.reply(conv.channel, conv.thread_ts, reply)

    def _post(
        self, conv: Conversation, text: str, actions: list[HelpdeskAction], **mentions: list[str]
    ) -> Conversation:
        posted = self._send(conv, HelpdeskReply(conversation_id=conv.id, text=text, actions=actions, **mentions))
        data = {
            "where": posted.where,
            "channel": posted.channel,
            "ts": posted.ts,
            "actions": [a.value for a in actions],
        }
        updates: dict[str, Any] = {}
        if posted.ts is not None and conv.reply_ts is None:
            updates = {"reply_channel": posted.channel, "reply_ts": posted.ts}
        return self._apply(conv.id, lambda _c: _Step(updates, [(EventType.HELPDESK_POSTED, "signoff", data)]))

    # -- hand-off ------------------------------------------------------------------------------------

    def _hand_off(self, conv: Conversation, *, actor: str, stopped_because: str | None) -> Conversation:
        """Summary in the thread, the queue (and for incidents its on-call) pinged, a ticket opened."""
        triage, now = conv.triage, self.clock.now()
        queue = self.config.queues[triage.queue]
        summary = _summary(triage, stopped_because)
        oncall = self.oncall(queue.oncall, now) if queue.oncall and triage.route is Route.INCIDENT else None
        ticket, ticket_error = self._open_ticket(conv, summary, queue.ticket_project)
        if stopped_because is not None:  # an answer handed off later: a fresh summary
            lines = [handoff_message(queue, summary)]
        elif triage.route is Route.HANDOFF:  # the router's message is the summary (and any secret warning)
            lines = [triage.message]
        else:  # ticket / incident: the route's own message, then the summary
            lines = [triage.message, handoff_message(queue, summary)]
        if ticket is not None:
            lines.append(f"*Ticket:* {ticket.key} {ticket.url}")
        elif ticket_error:
            lines.append(f"*Ticket:* not opened ({ticket_error}); {queue.handle} has this thread instead.")
        public = conv.source != "dm" and triage.visibility is Visibility.PUBLIC_THREAD
        # A ping in a private reply notifies nobody: there, the ticket is how the queue learns of it.
        mentions = {"mention_groups": [queue.usergroup], "mention_users": [oncall] if oncall else []} if public else {}
        conv = self._post(conv, "\n".join(lines), HANDOFF_ACTIONS, **mentions)
        thread: dict[str, Any] = {}  # the incident's thread: where later reports of it are relayed
        if triage.route is Route.INCIDENT and public:
            incident = self.config.incident_channel.id
            if incident != conv.channel:
                posted = self.chat.reply(
                    incident, None, HelpdeskReply(conversation_id=conv.id, text="\n".join(lines), **mentions)
                )
                thread = {"incident_channel": posted.channel, "incident_ts": posted.ts}
            else:
                thread = {"incident_channel": conv.channel, "incident_ts": conv.thread_ts or conv.reply_ts}
        data = {
            "queue": triage.queue,
            "usergroup": queue.usergroup,
            "oncall": oncall,
            "stopped_because": summary.stopped_because,
            "summary": summary.model_dump(mode="json"),
            "ticket_system": self.ticketing.system if self.ticketing else None,
            "ticket_key": ticket.key if ticket else None,
            "ticket_error": ticket_error,
        }
        updates = {
            "state": ConversationState.HANDED_OFF,
            "ticket_key": ticket.key if ticket else None,
            "ticket_url": ticket.url if ticket else None,
            # Unclaimed past this, the queue's on-call is pinged (usecases.helpdesk_escalation).
            "first_response_due": first_response_due(triage.queue, now, self.config),
            "escalated_at": None,
            **thread,
        }
        conv = self._apply(conv.id, lambda _c: _Step(updates, [(EventType.HELPDESK_HANDED_OFF, _actor(actor), data)]))
        _log("helpdesk handed off", conv, route=triage.route.value, ticket=ticket.key if ticket else None)
        return conv

    def _open_ticket(self, conv: Conversation, summary: HandoffSummary, project: str) -> tuple[Any, str | None]:
        if self.ticketing is None:
            return None, "no ticketing system configured"
        link = self.chat.permalink(conv.reply_channel, conv.reply_ts) if conv.reply_channel and conv.reply_ts else None
        draft = TicketDraft(
            project=project,
            summary=f"[{conv.triage.class_name}] {summary.request}"[:240],
            description=[
                f"Request (redacted): {summary.request}",
                f"Interpretation: {summary.interpretation}",
                "Tried: " + "; ".join(summary.tried),
                "Stopped because: " + "; ".join(summary.stopped_because),
                "Known: " + ("; ".join(summary.knows) or "nothing certain"),
                "Not known: " + ("; ".join(summary.does_not_know) or "-"),
                f"Helpdesk conversation: {conv.id}",
            ],
            urgency=summary.tags.get("urgency", "normal"),
            labels=["signoff-helpdesk", conv.triage.class_name, *(f"{k}:{v}" for k, v in summary.tags.items())],
            link=link,
            reference=conv.id,
        )
        try:
            return self.ticketing.open(draft), None
        except TicketingError as exc:
            return None, str(exc)[:200]

    # -- buttons -------------------------------------------------------------------------------------

    def act(self, conversation_id: str, action: HelpdeskAction, user: str) -> str:
        """A button click by `user`; what to tell them (privately)."""
        conv = self.repo.get(conversation_id)
        match action:
            case HelpdeskAction.HELPFUL | HelpdeskAction.NOT_HELPFUL:
                return self._feedback(conv, action, user)
            case HelpdeskAction.HUMAN:
                if conv.state is not ConversationState.OPEN:
                    return "A person already has this conversation."
                self._hand_off(conv, actor=user, stopped_because="the asker chose Talk to a human")
                helpdesk_metrics.talk_to_human()
                return "A person will take over in this thread."
            case HelpdeskAction.CLAIM:
                return self._claim(conv, user)
            case HelpdeskAction.RESOLVED:
                return self._resolve(conv, user)
            case HelpdeskAction.BACK:
                return self._back(conv, user)
            case HelpdeskAction.REQUEST:  # the surface opens the form itself (it needs the click's trigger)
                return "Fill in the form that opened; nothing is sent until you submit it."

    def _feedback(self, conv: Conversation, action: HelpdeskAction, user: str) -> str:
        if conv.feedback.get(user) == action.value:
            return "Your feedback is already recorded. Thank you."

        def record(current: Conversation) -> _Step:
            data = {"value": action.value, "by_asker": user == current.asker, "class": current.triage.class_name}
            feedback = {**current.feedback, user: action.value}
            return _Step({"feedback": feedback}, [(EventType.HELPDESK_FEEDBACK, _actor(user), data)])

        self._apply(conv.id, record)
        helpdesk_metrics.feedback(action is HelpdeskAction.HELPFUL)
        if action is HelpdeskAction.NOT_HELPFUL:
            return "Thanks: noted. Choose *Talk to a human* if you still need help."
        return "Thanks: noted."

    def _refuse(self, conv: Conversation, user: str, action: HelpdeskAction, reason: str, message: str) -> str:
        data = {"action": action.value, "reason": reason}
        self._apply(conv.id, lambda _c: _Step({}, [(EventType.HELPDESK_REFUSED, _actor(user), data)]))
        return message

    def _claim(self, conv: Conversation, user: str) -> str:
        if user == conv.asker:
            return self._refuse(
                conv, user, HelpdeskAction.CLAIM, "asker", "You asked this: someone else must claim it."
            )
        if conv.state is not ConversationState.HANDED_OFF:
            return f"This is {conv.state.value.replace('_', ' ')}; nothing to claim."
        step = _Step(
            {"state": ConversationState.CLAIMED, "claimed_by": user}, [(EventType.HELPDESK_CLAIMED, _actor(user), {})]
        )
        conv = self._apply(conv.id, lambda _c: step)
        self._tell(conv, f"<@{user}> is on it.")
        return "It is yours."

    def _resolve(self, conv: Conversation, user: str) -> str:
        if user not in (conv.asker, conv.claimed_by):
            return self._refuse(
                conv,
                user,
                HelpdeskAction.RESOLVED,
                "not_involved",
                "Only the asker or the person who claimed it can resolve it.",
            )
        if conv.state is ConversationState.RESOLVED:
            return "Already resolved."
        data = {"by_asker": user == conv.asker, "ticket_key": conv.ticket_key}
        step = _Step({"state": ConversationState.RESOLVED}, [(EventType.HELPDESK_RESOLVED, _actor(user), data)])
        conv = self._apply(conv.id, lambda _c: step)
        helpdesk_metrics.resolved((self.clock.now() - conv.created_at).total_seconds())
        self._tell(conv, f"Resolved by <@{user}>.")
        return "Marked resolved."

    def _back(self, conv: Conversation, user: str) -> str:
        if user != conv.asker:
            return self._refuse(
                conv, user, HelpdeskAction.BACK, "not_asker", "Only the asker can send this back to the bot."
            )
        if conv.state is ConversationState.OPEN:
            return "The bot already has this."
        step = _Step(
            {"state": ConversationState.OPEN, "claimed_by": None}, [(EventType.HELPDESK_RETURNED, _actor(user), {})]
        )
        conv = self._apply(conv.id, lambda _c: step)
        self._tell(conv, "Back with the bot: ask your next question in this channel.")
        return "Back with the bot."

    def _tell(self, conv: Conversation, text: str) -> None:
        self._send(conv, HelpdeskReply(conversation_id=conv.id, text=text))

    # -- for the approvals use case (usecases/helpdesk_approvals.py) ---------------------------------

    def tell_thread(self, conv: Conversation, text: str) -> Posted:
        """A follow-up where the asker reads the bot's reply: under the bot's DM for a DM-only class
        asked elsewhere, else as the triage's visibility allows."""
        reply = HelpdeskReply(conversation_id=conv.id, text=text)
        if conv.triage.visibility is Visibility.DM and conv.source != "dm" and conv.reply_channel and conv.reply_ts:
            return self.chat.reply(conv.reply_channel, conv.reply_ts, reply)
        return self._send(conv, reply)

    def record(
        self,
        conversation_id: str,
        decide: Callable[[Conversation], tuple[dict[str, Any], list[tuple[EventType, str, dict[str, Any]]]]],
    ) -> Conversation:
        """Apply (updates, events) decided from the current conversation; see `_apply`."""
        return self._apply(conversation_id, lambda current: _Step(*decide(current)))

    # -- the trail -----------------------------------------------------------------------------------

    def _apply(self, conversation_id: str, step: Callable[[Conversation], _Step]) -> Conversation:
        """Apply a step to the current conversation and chain its events, retrying on a lost race."""
        for _ in range(SAVE_ATTEMPTS):
            current = self.repo.get(conversation_id)
            change = step(current)
            now = self.clock.now()
            events: list[AuditEvent] = []
            head = (current.audit_seq, current.audit_head)
            for type_, actor, data in change.events:
                event = chain_event(checkpoint_id=current.id, prev=head, type=type_, at=now, actor=actor, data=data)
                events.append(event)
                head = (event.seq, event.hash)
            updated = current.model_copy(update={**change.updates, "audit_seq": head[0], "audit_head": head[1]})
            try:
                self.repo.save(updated, expected=current, events=events)
            except StaleCheckpoint:
                continue
            return updated
        raise Conflict(f"conversation {conversation_id} is busy")


def _actor(user: str) -> str:
    return f"slack:{user}"


def _triaged(triage: Triage, question: Question, latency_ms: float) -> dict[str, Any]:
    """The TRIAGED event's data: redacted text and the router's explained decision."""
    return {
        "question": triage.question,
        "redacted": triage.redacted,
        "class": triage.class_name,
        "probability": triage.probability,
        "route": triage.route.value,
        "queue": triage.queue,
        "confidence": triage.confidence,
        "required_confidence": triage.required_confidence,
        "contributions": [c.model_dump(mode="json") for c in triage.contributions],
        "sources": [{"title": s.title, "link": s.link, "section": s.section} for s in triage.sources],
        "visibility": triage.visibility.value,
        "flags": triage.flags,
        "explanation": triage.explanation,
        "config_version": triage.config_version,
        "knowledge_version": triage.knowledge_version,
        "channel": question.channel,
        "source": question.source,
        "latency_ms": latency_ms,
    }


def _summary(triage: Triage, stopped_because: str | None) -> HandoffSummary:
    """The router's summary; an answered question handed off later says why it stopped now."""
    if triage.summary is not None and stopped_because is None:
        return triage.summary
    base = triage.summary
    if base is None:
        sources = [f"{s.title} ({s.link})" for s in triage.sources[:2]]
        base = HandoffSummary(
            request=triage.question,
            interpretation=f"{triage.class_name} ({triage.probability:.0%})",
            tried=[f"answered from {sources[0]}" if sources else "answered from the knowledge base"],
            stopped_because=[],
            knows=sources,
            does_not_know=["whether the answer solved it"],
            tags={"urgency": "normal"},
        )
    return base.model_copy(
        update={"stopped_because": [*base.stopped_because, *([stopped_because] if stopped_because else [])]}
    )


def _log(message: str, conv: Conversation, **extra: Any) -> None:
    # Ids, class, route and numbers only: never the question, even redacted.
    logger.info(
        message, extra={"conversation_id": conv.id, "class": conv.triage.class_name, "channel": conv.channel, **extra}
    )

"""Work a click leaves for after its answer, the same on every chat surface: re-render every card
of the checkpoint (Slack's and Teams'), ask the requester in the thread, tell the escalation
route once. Each part works from the stored checkpoint and its audit trail alone, so running it
twice only re-renders cards twice (the escalation notice is posted once)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from signoff.audit.changes import Change, Entry, apply_change
from signoff.audit.events import AuditEvent, EventType
from signoff.domain.acts import Act
from signoff.domain.cards import build_card
from signoff.domain.models import CHECKPOINT_ID_RE, Checkpoint
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.ports import Chat, CheckpointRepository, Clock
from signoff.usecases.posting import post_everywhere, posted, rerender

EVENT_KEY = "signoff_teams_followup"


@dataclass(frozen=True)
class Followup:
    checkpoint_id: str
    act: str
    seq: int = 0  # the audit event the act recorded (a question, an escalation); 0: none

    def to_event(self) -> dict[str, Any]:
        return {EVENT_KEY: {"checkpoint_id": self.checkpoint_id, "act": self.act, "seq": self.seq}}

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Followup | None:
        """The follow-up an asynchronous self-invocation carries; None for anything else (an API
        Gateway event always has an httpMethod, so a request can never pose as one)."""
        raw = event.get(EVENT_KEY)
        if "httpMethod" in event or not isinstance(raw, dict):
            return None
        checkpoint_id, act, seq = raw.get("checkpoint_id"), raw.get("act"), raw.get("seq", 0)
        if not (isinstance(checkpoint_id, str) and CHECKPOINT_ID_RE.match(checkpoint_id)):
            return None
        if not isinstance(act, str) or not isinstance(seq, int):
            return None
        return cls(checkpoint_id, act, seq)


Defer = Callable[[Followup], None]  # runs a follow-up later (Lambda: an asynchronous self-invocation)


class Followups:
    def __init__(self, repo: CheckpointRepository, clock: Clock, routing: LoadedRouting, chats: Sequence[Chat]) -> None:
        self.repo = repo
        self.clock = clock
        self.routing = routing
        self.chats = chats

    def run(self, followup: Followup) -> None:
        cp = self.repo.get(followup.checkpoint_id)
        event = self._event(cp, followup.seq)
        if followup.act == Act.REQUEST_INFO.value and event is not None and event.type is EventType.INFO_REQUESTED:
            self.ask_requester(cp, self._name(event.actor), str(event.data.get("comment") or ""))
        elif followup.act == Act.ESCALATE.value and event is not None and event.type is EventType.ESCALATED:
            cp = self.tell_escalation_route(cp, self._name(event.actor))
        self.refresh(cp)

    def refresh(self, cp: Checkpoint) -> None:
        """Re-render every card and escalation notice of the checkpoint, on every surface."""
        rerender(self.chats, cp)

    def ask_requester(self, cp: Checkpoint, asked_by: str, question: str) -> None:
        """The question in each card's thread, mentioning the requester; on a sensitive checkpoint
        (cards in approvers' DMs the requester cannot see) also directly to the requester."""
        if not question:
            return
        requester = cp.request.requester.id
        mention = requester if self.routing.routing.person(requester) else None
        card = build_card(cp)
        text = f"{asked_by} asks: {question}\nThe clock keeps running: {card.deadline or 'no deadline'}"
        for chat, ref in posted(self.chats, cp, ("card",)):
            chat.reply(ref, text, mention)
        if cp.assessment.gate.sensitive and mention:
            for chat in self.chats:
                chat.post_notice(None, requester, text, card)

    def tell_escalation_route(self, cp: Checkpoint, escalated_by: str) -> Checkpoint:
        """Post the escalation notice once (an escalation already told posts nothing) and keep its
        refs on the checkpoint so Finalize updates it too."""
        route = cp.assessment.gate.escalation_route
        if route is None or any(m.kind == "escalation" for m in cp.messages):
            return cp
        gate = cp.assessment.gate
        where = self.routing.escalation_destinations(route, service=cp.request.service, sensitive=gate.sensitive)
        card = build_card(cp)
        text = f"{escalated_by} escalated this checkpoint to {route}. {card.deadline or ''}".strip()
        sent, failures = post_everywhere(
            self.chats, where, lambda chat, channel, person: chat.post_notice(channel, person, text, card)
        )
        refs = [ref.model_copy(update={"kind": "escalation"}) for ref in sent]
        if not refs and failures:
            raise failures[0]  # nothing got through: the follow-up fails (and is retried)
        if not refs:
            logger.warning("escalation route not reached", extra={"checkpoint_id": cp.id, "route": route})
            return cp

        def record(current: Checkpoint) -> Change:
            data = {"escalation": True, "route": route, "destinations": [f"{r.surface}:{r.channel}" for r in refs]}
            return Change(
                updates={"messages": [*current.messages, *refs]}, entries=[Entry(EventType.NOTIFIED, "signoff", data)]
            )

        return apply_change(self.repo, self.clock, cp.id, record)

    def _event(self, cp: Checkpoint, seq: int) -> AuditEvent | None:
        if seq <= 0:
            return None
        return next((e for e in self.repo.events(cp.id) if e.seq == seq), None)

    def _name(self, person_id: str) -> str:
        person = self.routing.routing.person(person_id)
        return person.name if person else person_id

"""The approval state machine's Lambda steps.

Notify runs as a `.waitForTaskToken` task: it keeps the task token (server-side only), posts the
card (or, in the escalation phase, tells the escalation route) and returns; the task then waits
until a decision answers the token or the wait times out.

Finalize runs once at the end, whatever happened: it applies the timeout rule if nobody decided,
updates every card in place, calls the requester's webhook, answers an embedding workflow's
task token, and emits the business metrics. Every part is idempotent: Step Functions may retry."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.audit.changes import Change, Entry, apply_change
from signoff.audit.events import EventType
from signoff.domain.cards import build_card
from signoff.domain.models import Checkpoint, MessageRef, Status
from signoff.domain.routing import LoadedRouting, Recipients
from signoff.observability import logger, metrics
from signoff.ports import Callbacks, Chat, CheckpointRepository, Clock, TaskToken, Workflow
from signoff.usecases.decisions import DecisionService
from signoff.usecases.posting import CARDS, Post, post_everywhere, rerender
from signoff.usecases.results import answer_caller, result

INITIAL = "initial"
ESCALATION = "escalation"


@dataclass
class Steps:
    repo: CheckpointRepository
    clock: Clock
    workflow: Workflow
    routing: LoadedRouting
    chats: list[Chat]
    callbacks: Callbacks | None
    decisions: DecisionService

    # -- Notify -------------------------------------------------------------------------------

    def notify(self, checkpoint_id: str, phase: str, token: str) -> dict[str, Any]:
        cp = self.repo.get(checkpoint_id)
        gate = cp.assessment.gate
        wait = (gate.escalation_wait_seconds if phase == ESCALATION else None) or (
            gate.veto_window_seconds or gate.approval_deadline_seconds or 0
        )
        # The token is stored before anything is posted, so no click can arrive before it exists.
        self.repo.put_token(
            cp.id, TaskToken(token=token, phase=phase, expires_at=self.clock.now() + timedelta(seconds=wait))
        )
        if cp.status is not Status.PENDING:
            # Decided (e.g. cancelled) before this step ran: move straight on to Finalize.
            self.workflow.answer(token, {"status": cp.status.value, "decided_by": cp.decided_by})
            return {"posted": 0}
        if phase == ESCALATION:
            refs = self._escalate(cp)
        else:
            refs = self._post_cards(cp)
        return {"posted": len(refs)}

    def _post_cards(self, cp: Checkpoint) -> list[MessageRef]:
        if any(m.kind == "card" for m in cp.messages):
            return []  # a retried Notify must not post the card twice
        gate = cp.assessment.gate
        where = self.routing.destinations(
            service=cp.request.service,
            environment=cp.request.environment,
            sensitive=gate.sensitive,
            approvers=cp.approvers,
        )
        card = build_card(cp)
        refs = self._send(where, lambda chat, channel, person: chat.post_card(channel, person, card))
        self._record(cp.id, EventType.NOTIFIED, refs, {"sensitive": gate.sensitive})
        metrics.add_metric(name="GateOpened", unit=MetricUnit.Count, value=1)
        return refs

    def _escalate(self, cp: Checkpoint) -> list[MessageRef]:
        if any(m.kind == "escalation" for m in cp.messages):
            self._update_cards(cp)  # a retried Notify: tell the route once, refresh the cards
            return []
        gate = cp.assessment.gate
        route = gate.escalation_route or ""
        where = self.routing.escalation_destinations(route, service=cp.request.service, sensitive=gate.sensitive)
        escalated = cp.model_copy(update={"escalated": True})
        card = build_card(escalated)
        text = f"Escalated to {route}: no decision yet on {card.title}. {card.deadline or ''}".strip()
        refs = self._send(where, lambda chat, channel, person: chat.post_notice(channel, person, text, card))
        refs = [r.model_copy(update={"kind": "escalation"}) for r in refs]
        cp = self._record(cp.id, EventType.ESCALATED, refs, {"route": route, "manual": False}, escalated=True)
        self._update_cards(cp, kinds=("card",))  # the notice just posted is already current
        metrics.add_metric(name="Escalated", unit=MetricUnit.Count, value=1)
        return refs

    def _send(self, where: Recipients, post: Post) -> list[MessageRef]:
        refs, failures = post_everywhere(self.chats, where, post)
        if not refs:
            if failures:
                raise failures[0]  # nothing got through: let the step fail (and be retried)
            raise NobodyReachable("no chat destination could be reached for this checkpoint")
        return refs

    def _record(
        self,
        checkpoint_id: str,
        type_: EventType,
        refs: list[MessageRef],
        data: dict[str, Any],
        escalated: bool = False,
    ) -> Checkpoint:
        def decide(cp: Checkpoint) -> Change:
            updates: dict[str, Any] = {"messages": [*cp.messages, *refs]}
            if escalated:
                updates["escalated"] = True
            where = [f"{r.surface}:{r.channel}" for r in refs]
            return Change(updates=updates, entries=[Entry(type_, "signoff", {**data, "destinations": where})])

        return apply_change(self.repo, self.clock, checkpoint_id, decide)

    def _update_cards(self, cp: Checkpoint, kinds: tuple[str, ...] = CARDS) -> None:
        rerender(self.chats, cp, kinds)

    # -- Finalize -----------------------------------------------------------------------------

    def finalize(self, checkpoint_id: str, decision: dict[str, Any] | None) -> dict[str, Any]:
        cp = self.repo.get(checkpoint_id)
        if cp.status is Status.PENDING:
            # No answer reached the task: the wait (and any escalation) timed out, or nobody
            # could be told at all, which always fails closed.
            unreachable = bool(decision and decision.get("notify_failed"))
            cp = self.decisions.apply_timeout(checkpoint_id, unreachable=unreachable)
            if cp.status is Status.EXPIRED:
                metrics.add_metric(name="Expired", unit=MetricUnit.Count, value=1)
        self._update_cards(cp)
        self._call_back(cp)
        self._answer_caller(cp)
        self._emit(cp)
        logger.info("finalized", extra={"checkpoint_id": cp.id, "status": cp.status.value})
        return result(cp)

    def _call_back(self, cp: Checkpoint) -> None:
        url = cp.request.callback_url
        if not url or self.callbacks is None:
            return
        delivered_before = any(e.type is EventType.CALLBACK_DELIVERED for e in self.repo.events(cp.id))
        if delivered_before:
            return
        ok, detail = self.callbacks.deliver(url, result(cp))
        type_ = EventType.CALLBACK_DELIVERED if ok else EventType.CALLBACK_FAILED

        def record(current: Checkpoint) -> Change:
            return Change(entries=[Entry(type_, "signoff", {"url": url, "detail": detail})])

        apply_change(self.repo, self.clock, cp.id, record)

    def _answer_caller(self, cp: Checkpoint) -> None:
        token = self.repo.get_caller_token(cp.id)
        if token is None:
            return
        answer_caller(self.workflow, token, cp)

    def _emit(self, cp: Checkpoint) -> None:
        name = {Status.APPROVED: "Approved", Status.DENIED: "Denied", Status.CANCELLED: "Cancelled"}.get(cp.status)
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if cp.decided_at:
            latency = (cp.decided_at - cp.created_at).total_seconds()
            metrics.add_metric(name="ApprovalLatency", unit=MetricUnit.Seconds, value=latency)


class NobodyReachable(Exception):
    """No card could be posted anywhere: the workflow must not wait for people who were never asked."""

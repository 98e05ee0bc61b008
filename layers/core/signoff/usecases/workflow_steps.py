"""The approval state machine's Lambda steps.

Notify runs as a `.waitForTaskToken` task: it keeps the task token (server-side only), posts the
card (or, in the escalation phase, tells the escalation route) and returns; the task then waits
until a decision answers the token or the wait times out. Each chat surface retries its own
transient errors (HTTP 5xx, 429 with Retry-After, timeouts, Slack's ok:false internal_error, ...)
with backoff; one that outlasts those retries everywhere is raised as `ChatUnavailable`, which the
state machine retries minutes apart. A refusal (channel_not_found, invalid_auth, ...) is final:
`NobodyReachable` names it, and the request expires with that reason.

Finalize runs once at the end, whatever happened. It delivers the decision first: applies the
timeout rule if nobody decided, answers an embedding workflow's task token, calls the requester's
webhook. Only then does it update the cards in place, each on its own: a card that keeps
its old content is audited (`card_update_failed`) and counted (`CardUpdateFailed`), never a
reason to fail the execution. Every part is idempotent: Step Functions may retry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from signoff.audit.changes import Change, Entry, apply_change
from signoff.audit.events import EventType
from signoff.domain.cards import Card, build_card
from signoff.domain.models import Checkpoint, MessageRef, Status
from signoff.domain.routing import LoadedRouting, Recipients
from signoff.observability import logger, metrics
from signoff.ports import (
    Callbacks,
    Chat,
    ChatFailure,
    CheckpointRepository,
    Clock,
    DecisionListener,
    ExplainingChat,
    TaskToken,
    Workflow,
)
from signoff.usecases.decisions import DecisionService
from signoff.usecases.posting import CARDS, Post, post_everywhere, posted
from signoff.usecases.results import answer_caller, caller_error, result

INITIAL = "initial"
ESCALATION = "escalation"

NAMED_FAILURES = 3  # a reason names this many failed destinations, then counts the rest
CARD_UPDATE_FAILED_METRIC = "CardUpdateFailed"


class NobodyReachable(Exception):
    """No card could be posted anywhere, and trying again will not change that: the workflow must
    not wait for people who were never asked. The message names what refused (it becomes the
    expiry's reason)."""


class ChatUnavailable(Exception):
    """No card could be posted yet, but the chat platform's errors may pass: the state machine
    retries the step (it posted nothing, so a retry posts nothing twice)."""


@dataclass(frozen=True)
class _Failed:
    surface: str
    where: str  # a channel, or "dm:<person>"
    code: str
    transient: bool

    def describe(self) -> str:
        return f"{self.surface} {self.code} on {self.where}"


@dataclass
class Steps:
    repo: CheckpointRepository
    clock: Clock
    workflow: Workflow
    routing: LoadedRouting
    chats: list[Chat]
    callbacks: Callbacks | None
    decisions: DecisionService
    # Told of every decision after it has left (e.g. the helpdesk: the thread, the next step, the executor).
    listeners: Sequence[DecisionListener] = ()

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
        refs, missed = self._send(where, partial(_deliver_card, card=card))
        self._record(cp.id, EventType.NOTIFIED, refs, {"sensitive": gate.sensitive, **_missed(missed)})
        metrics.add_metric(name="GateOpened", unit=MetricUnit.Count, value=1)
        return refs

    def _escalate(self, cp: Checkpoint) -> list[MessageRef]:
        if any(m.kind == "escalation" for m in cp.messages):
            self._refresh_cards(cp)  # a retried Notify: tell the route once, refresh the cards
            return []
        gate = cp.assessment.gate
        route = gate.escalation_route or ""
        where = self.routing.escalation_destinations(route, service=cp.request.service, sensitive=gate.sensitive)
        escalated = cp.model_copy(update={"escalated": True})
        card = build_card(escalated)
        text = f"Escalated to {route}: no decision yet on {card.title}. {card.deadline or ''}".strip()
        refs, missed = self._send(where, partial(_deliver_notice, text=text, card=card))
        refs = [r.model_copy(update={"kind": "escalation"}) for r in refs]
        data = {"route": route, "manual": False, **_missed(missed)}
        cp = self._record(cp.id, EventType.ESCALATED, refs, data, escalated=True)
        self._refresh_cards(cp, kinds=("card",))  # the notice just posted is already current
        metrics.add_metric(name="Escalated", unit=MetricUnit.Count, value=1)
        return refs

    def _send(self, where: Recipients, post: Post) -> tuple[list[MessageRef], list[_Failed]]:
        """Post to every destination (each surface has retried its transient errors). Some got
        through: those refs, and what failed. None did: raise why."""
        failed: list[_Failed] = []

        def attempt(chat: Chat, channel: str | None, person: str | None) -> MessageRef | None:
            try:
                return post(chat, channel, person)
            except Exception as exc:
                failed.append(_failure(chat.surface, channel or f"dm:{person}", exc))
                raise  # post_everywhere keeps it apart and goes on with the next destination

        refs, _ = post_everywhere(self.chats, where, attempt)
        if refs:
            return refs, failed
        if not failed:
            raise NobodyReachable("no chat destination for this checkpoint")
        described = _describe(failed)
        if any(f.transient for f in failed):
            # Something may still get through: the state machine tries the step again later.
            raise ChatUnavailable(f"{described} (still failing after retries)")
        raise NobodyReachable(described)

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

    def _refresh_cards(self, cp: Checkpoint, kinds: tuple[str, ...] = CARDS) -> None:
        """Re-render the checkpoint's cards in place, each on its own (its surface has retried
        transient errors). A card that keeps its old content is logged, audited and counted, never
        raised: the decision has already left (Finalize) or the escalation was told (Notify), and
        a later run (a retried Finalize, a follow-up after a click) re-renders it."""
        card = build_card(cp)
        failed: list[dict[str, str]] = []
        for chat, ref in posted(self.chats, cp, kinds):
            try:
                chat.update_card(ref, card)
            except Exception as exc:  # noqa: BLE001 - audited and counted below; never fails the step
                f = _failure(chat.surface, ref.channel, exc)
                failed.append({"surface": f.surface, "channel": ref.channel, "kind": ref.kind, "error": f.code})
        if not failed:
            return
        metrics.add_metric(name=CARD_UPDATE_FAILED_METRIC, unit=MetricUnit.Count, value=len(failed))
        logger.warning("cards not updated", extra={"checkpoint_id": cp.id, "cards": failed})

        def record(current: Checkpoint) -> Change:
            return Change(entries=[Entry(EventType.CARD_UPDATE_FAILED, "signoff", data) for data in failed])

        apply_change(self.repo, self.clock, cp.id, record)

    # -- Finalize -----------------------------------------------------------------------------

    def finalize(self, checkpoint_id: str, decision: dict[str, Any] | None) -> dict[str, Any]:
        cp = self.repo.get(checkpoint_id)
        if cp.status is Status.PENDING:
            # No answer reached the task: the wait (and any escalation) timed out, or nobody
            # could be told at all, which always expires.
            unreachable = bool(decision and decision.get("notify_failed"))
            detail = notify_failure(decision) if unreachable and decision else None
            cp = self.decisions.apply_timeout(checkpoint_id, unreachable=unreachable, detail=detail)
            if cp.status is Status.EXPIRED:
                metrics.add_metric(name="Expired", unit=MetricUnit.Count, value=1)
        # The decision leaves first, each way on its own: one failing must not hold the other.
        errors: list[Exception] = []
        for deliver in (self._answer_caller, self._call_back, self._tell_listeners):
            try:
                deliver(cp)
            except Exception as exc:  # noqa: BLE001 - raised below, after the rest has run
                logger.exception("decision not delivered", extra={"checkpoint_id": cp.id, "part": deliver.__name__})
                errors.append(exc)
        self._refresh_cards(cp)
        if errors:
            # Step Functions retries Finalize: what was delivered is skipped, the rest tried again.
            raise errors[0]
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

    def _tell_listeners(self, cp: Checkpoint) -> None:
        """Each listener on its own: one failing does not keep the decision from the others (they
        are idempotent, so Finalize's retry tells them all again)."""
        errors: list[Exception] = []
        for listener in self.listeners:
            try:
                listener.decided(cp)
            except Exception as exc:  # noqa: BLE001 - logged by the caller, raised below
                errors.append(exc)
        if errors:
            raise errors[0]

    def _answer_caller(self, cp: Checkpoint) -> None:
        """Answer an embedding workflow's token once, and record that it was (the sweeper looks
        for decided checkpoints whose caller never heard). A task that no longer waits (answered
        by an earlier run that could not record it, or timed out) is recorded too: nothing more
        can be done for it."""
        token = self.repo.get_caller_token(cp.id)
        if token is None or cp.status is Status.PENDING:
            return
        if any(e.type is EventType.CALLER_ANSWERED for e in self.repo.events(cp.id)):
            return
        waiting = answer_caller(self.workflow, token, cp)
        data = {"status": cp.status.value, "error": caller_error(cp), "task_was_waiting": waiting}

        def record(current: Checkpoint) -> Change:
            return Change(entries=[Entry(EventType.CALLER_ANSWERED, "signoff", data)])

        apply_change(self.repo, self.clock, cp.id, record)

    def _emit(self, cp: Checkpoint) -> None:
        name = {Status.APPROVED: "Approved", Status.DENIED: "Denied", Status.CANCELLED: "Cancelled"}.get(cp.status)
        if name:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        if cp.decided_at:
            latency = (cp.decided_at - cp.created_at).total_seconds()
            metrics.add_metric(name="ApprovalLatency", unit=MetricUnit.Seconds, value=latency)


# Errors of the Notify step whose message Signoff wrote itself (safe to show as a reason).
NOTIFY_ERRORS = {NobodyReachable.__name__, ChatUnavailable.__name__}
MAX_DETAIL = 500


def notify_failure(decision: dict[str, Any]) -> str | None:
    """Why nobody could be notified, from what the state machine's catch passes on: `error` (the
    error name) and `cause` (Lambda's error document, JSON with errorMessage). Only Notify's own
    errors are quoted; any other failure is named by its error name alone."""
    error = decision.get("error")
    if not isinstance(error, str) or not error:
        return None
    if error in NOTIFY_ERRORS:
        try:
            message = json.loads(str(decision.get("cause") or "")).get("errorMessage")
        except (ValueError, AttributeError):
            message = None
        if isinstance(message, str) and message:
            return message[:MAX_DETAIL]
    return f"the notify step failed ({error[:100]})"


def _deliver_card(chat: Chat, channel: str | None, person: str | None, *, card: Card) -> MessageRef | None:
    if isinstance(chat, ExplainingChat):
        return chat.deliver_card(channel, person, card)
    return chat.post_card(channel, person, card)


def _deliver_notice(chat: Chat, channel: str | None, person: str | None, *, text: str, card: Card) -> MessageRef | None:
    if isinstance(chat, ExplainingChat):
        return chat.deliver_notice(channel, person, text, card)
    return chat.post_notice(channel, person, text, card)


def _failure(surface: str, where: str, exc: Exception) -> _Failed:
    if isinstance(exc, ChatFailure):
        return _Failed(surface, where, exc.code, exc.transient)
    # Not a chat error (a bug, a settings error): named by its type, and not worth retrying.
    return _Failed(surface, where, type(exc).__name__, False)


def _describe(failed: Sequence[_Failed]) -> str:
    named = "; ".join(f.describe() for f in failed[:NAMED_FAILURES])
    more = len(failed) - NAMED_FAILURES
    return f"{named}; and {more} more" if more > 0 else named


def _missed(failed: Sequence[_Failed]) -> dict[str, Any]:
    """What a partly successful post records of the destinations it missed (nothing when none)."""
    if not failed:
        return {}
    return {"unreached": [{"surface": f.surface, "where": f.where, "error": f.code} for f in failed]}

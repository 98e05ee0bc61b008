"""Helpdesk approvals: the form an approval class asks for becomes Signoff checkpoints, one per step.

1. The asker (only the asker) opens the form from the bot's reply; the surface shows `form_for`.
2. `submit` validates the answers (errors go back into the modal), keeps them redacted on the
   conversation, and creates step 1's checkpoint through `CheckpointService`: the same engine,
   policy, gates, state machine and approver routing as any checkpoint. The manager step's
   approvers are the person the form names (plus the gate's escalation route); the system-owner
   step's are the system's team in routing.yaml. The asker is the requester, so separation of
   duties keeps them from approving their own request.
3. `decided` is a `DecisionListener`: Finalize tells it of every decided checkpoint. For one of
   the helpdesk's, it records the step's outcome on the conversation and in its thread; an
   approval creates the next step's checkpoint, a denial (or expiry, or cancellation) ends the
   chain, and the last approval runs the executor: a signed webhook (the `Callbacks` port, like a
   checkpoint's callback) to the class's automation, whose result is posted in the thread. A flow
   with `change_ticket` goes approval, then ticket, then change: a change ticket is opened through
   the `Ticketing` port first, its key goes to the automation, and without it nothing is executed.

Every part is idempotent, because Finalize may run again: a step's checkpoint is created with an
idempotency key naming the conversation and the step (a retry finds the first), a step's outcome
is recorded once, and the executor is called only while the approval is `approved` (after it the
state says executed or failed); a retry after a lost answer re-sends the very same body, whose
X-Signoff-Delivery id is derived from it, so the receiver can drop the replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from signoff.audit.events import EventType
from signoff.domain.errors import NotFound, PolicyError
from signoff.domain.helpdesk.approvals import (
    HELPDESK_CALLER,
    ApprovalRecord,
    ApprovalState,
    FormReading,
    StepRecord,
    answer_lines,
    change_ticket_message,
    checkpoint_request,
    decided_message,
    executed_message,
    read_form,
    request_target,
    requested_message,
    step_label,
    step_of,
)
from signoff.domain.helpdesk.config import ApprovalFlow, ApprovalStep, Form, FormField, RequestClass
from signoff.domain.helpdesk.conversation import Conversation, ConversationState
from signoff.domain.models import Checkpoint, Status
from signoff.domain.routing import LoadedRouting, Person, Role
from signoff.observability import logger
from signoff.ports import Callbacks, TicketDraft, TicketingError, TicketRef
from signoff.usecases.helpdesk import HelpdeskService
from signoff.usecases.intake import CheckpointService

Events = list[tuple[EventType, str, dict[str, Any]]]


@dataclass(frozen=True)
class ApprovalForm:
    """What the modal asks: the form's fields and, for a system field, the systems to choose from."""

    conversation_id: str
    title: str
    boundary: str
    fields: list[FormField]
    systems: list[tuple[str, str]]  # (value, label)


class FormRefused(Exception):
    """The form may not be opened or submitted by this person, or not any more; the message says why."""


class HelpdeskApprovals:
    def __init__(
        self,
        helpdesk: HelpdeskService,
        checkpoints: CheckpointService,
        routing: LoadedRouting,
        executor: Callbacks | None,
    ) -> None:
        self.helpdesk = helpdesk
        self.checkpoints = checkpoints
        self.routing = routing
        self.executor = executor
        problems = flow_problems(helpdesk.config.classes, checkpoints.policy.policy.environments, routing)
        if problems:
            raise PolicyError(helpdesk.helpdesk.loaded.source, problems)

    # -- the form ------------------------------------------------------------------------------------

    def form_for(self, conversation_id: str, user: str) -> ApprovalForm:
        """The form to show `user`, or FormRefused (recorded when it is someone else's request)."""
        conv = self.helpdesk.repo.get(conversation_id)
        cls, form, flow = self._refuse_or_flow(conv, user)
        systems = [(s, self._system_label(s)) for s in flow.systems]
        boundary = f"I can draft this request; {form.approvers} must approve it. Nothing is granted until they do."
        return ApprovalForm(conv.id, form.title, boundary, list(form.fields), systems)

    def check(self, conversation_id: str, user: str, values: dict[str, str | None]) -> dict[str, str]:
        """The answers' errors by field name (empty: valid), without keeping anything: what the
        modal shows before it closes. FormRefused when `user` may not submit it."""
        conv = self.helpdesk.repo.get(conversation_id)
        if conv.approval is not None and user == conv.asker:
            return {}
        return self._read(conv, user, values)[2].errors

    def submit(self, conversation_id: str, user: str, values: dict[str, str | None]) -> dict[str, str]:
        """Validate the answers; when valid, keep them and create step 1's checkpoint. Returns the
        errors by field name (empty: submitted). A second submission of the same form changes nothing."""
        conv = self.helpdesk.repo.get(conversation_id)
        if conv.approval is not None and user == conv.asker:
            return {}  # submitted before (a double click, a retried delivery): step 1 already exists
        _cls, user_form, reading = self._read(conv, user, values)
        if reading.errors:
            return reading.errors
        requester = self._person(conv, conv.asker)
        record = ApprovalRecord(
            class_name=conv.triage.class_name,
            form=user_form,
            fields=reading.fields,
            requester=requester.id if requester else f"slack:{conv.asker}",
            manager=reading.manager,
            system=reading.system,
        )

        def keep(current: Conversation) -> tuple[dict[str, Any], Events]:
            if current.approval is not None:
                return {}, []
            data = {"form": record.form, "fields": sorted(record.fields), "redacted": list(reading.redacted)}
            return {"approval": record}, [(EventType.HELPDESK_FORM_SUBMITTED, f"slack:{user}", data)]

        self.helpdesk.record(conv.id, keep)
        self._start(conv.id, 0)
        return {}

    def _read(
        self, conv: Conversation, user: str, values: dict[str, str | None]
    ) -> tuple[RequestClass, str, FormReading]:
        cls, form, flow = self._refuse_or_flow(conv, user)
        reading = read_form(form, flow, values, asker=conv.asker, person_of=lambda u: self._person(conv, u))
        return cls, cls.form or "", reading

    def _refuse_or_flow(self, conv: Conversation, user: str) -> tuple[RequestClass, Form, ApprovalFlow]:
        cls = self.helpdesk.config.classes.get(conv.triage.class_name)
        flow = cls.approval if cls else None
        if cls is None or flow is None or cls.form is None:
            raise FormRefused("This request has no form: choose *Talk to a human*.")
        if user != conv.asker:
            data = {"action": "request", "reason": "not_asker"}
            self.helpdesk.record(conv.id, lambda _c: ({}, [(EventType.HELPDESK_REFUSED, f"slack:{user}", data)]))
            raise FormRefused("Only the person who asked can fill in this request.")
        if conv.approval is not None:
            raise FormRefused("This request was already sent: its progress is in the thread.")
        if conv.state is not ConversationState.OPEN:
            raise FormRefused("A person has this conversation now: ask them in the thread.")
        return cls, self.helpdesk.config.forms[cls.form], flow

    # -- the steps -----------------------------------------------------------------------------------

    def _start(self, conversation_id: str, index: int) -> None:
        """Create step `index`'s checkpoint (once), record it and say so in the thread."""
        conv = self.helpdesk.repo.get(conversation_id)
        record, (cls, form, flow) = _approval(conv), self._class(conv)
        if len(record.steps) > index:
            cp = self.checkpoints.get(record.steps[index].checkpoint_id)  # a retry: created before
        else:
            requester = self.routing.routing.person(record.requester)
            request = checkpoint_request(
                conversation_id=conv.id,
                index=index,
                record=record,
                cls=cls,
                form=form,
                flow=flow,
                confidence=conv.triage.confidence,
                requester_name=requester.name if requester else None,
            )
            step = flow.steps[index]
            named = self._named_approvers(step, flow, record)
            cp = self.checkpoints.create(
                request, caller=HELPDESK_CALLER, idempotency_key=request.request_id, approvers=named
            )
            self._record_requested(conv.id, index, step, cp)
        if cp.status is not Status.PENDING:
            self.decided(cp)  # an auto gate: decided at once, no workflow will tell us

    def _record_requested(self, conversation_id: str, index: int, step: ApprovalStep, cp: Checkpoint) -> None:
        entry = StepRecord(step=step, checkpoint_id=cp.id, gate=cp.assessment.gate.kind.value, approvers=cp.approvers)
        recorded = False

        def add(current: Conversation) -> tuple[dict[str, Any], Events]:
            nonlocal recorded
            record = _approval(current)
            if len(record.steps) != index:
                return {}, []  # a concurrent run recorded it
            recorded = True
            data = {
                "step": step.value,
                "index": index,
                "checkpoint_id": cp.id,
                "gate": cp.assessment.gate.kind.value,
                "profile": cp.assessment.gate.profile,
                "score": cp.assessment.score.score,
                "approvers": cp.approvers,
            }
            updated = record.model_copy(update={"steps": [*record.steps, entry]})
            return {"approval": updated}, [(EventType.HELPDESK_APPROVAL_REQUESTED, "signoff", data)]

        conv = self.helpdesk.record(conversation_id, add)
        if recorded:
            flow = self._class(conv)[2]
            who = self._deciders(step, _approval(conv), flow)
            self.helpdesk.tell_thread(conv, requested_message(cp, index, len(flow.steps), who))
        _log("helpdesk approval step requested", conversation_id, checkpoint_id=cp.id, step=step.value)

    def decided(self, checkpoint: Checkpoint) -> None:
        """Finalize's listener: carry on with a decided step of one of the helpdesk's checkpoints."""
        link = step_of(checkpoint)
        if link is None or checkpoint.status is Status.PENDING:
            return
        conversation_id, index = link
        try:
            conv = self.helpdesk.repo.get(conversation_id)
        except NotFound:
            logger.warning("helpdesk checkpoint without its conversation", extra={"checkpoint_id": checkpoint.id})
            return
        record = conv.approval
        if record is None or index >= len(record.steps) or record.steps[index].checkpoint_id != checkpoint.id:
            logger.warning("helpdesk checkpoint without its step", extra={"checkpoint_id": checkpoint.id})
            return
        steps = len(self._class(conv)[2].steps)
        self._record_decided(conv.id, index, steps, checkpoint)
        if checkpoint.status is not Status.APPROVED:
            return  # a denial, an expiry or a cancellation ends the chain
        if index + 1 < steps:
            self._start(conv.id, index + 1)
        else:
            self._execute(conv.id)

    def _record_decided(self, conversation_id: str, index: int, steps: int, cp: Checkpoint) -> None:
        recorded = False

        def decide(current: Conversation) -> tuple[dict[str, Any], Events]:
            nonlocal recorded
            record = _approval(current)
            if record.steps[index].status is not Status.PENDING:
                return {}, []  # told before (Finalize ran again)
            recorded = True
            step = record.steps[index].model_copy(update={"status": cp.status, "decided_by": cp.decided_by})
            state = record.state
            if cp.status is not Status.APPROVED:
                state = ApprovalState.STOPPED
            elif index + 1 == steps:
                state = ApprovalState.APPROVED
            all_steps = [*record.steps[:index], step, *record.steps[index + 1 :]]
            updated = record.model_copy(update={"steps": all_steps, "state": state})
            data = {
                "step": step.step.value,
                "index": index,
                "checkpoint_id": cp.id,
                "status": cp.status.value,
                "decided_by": cp.decided_by,
                "state": state.value,
            }
            return {"approval": updated}, [(EventType.HELPDESK_APPROVAL_DECIDED, "signoff", data)]

        conv = self.helpdesk.record(conversation_id, decide)
        if recorded:
            self.helpdesk.tell_thread(conv, decided_message(cp, index, steps))
            _log("helpdesk approval step decided", conversation_id, checkpoint_id=cp.id, status=cp.status.value)

    # -- the executor --------------------------------------------------------------------------------

    def _execute(self, conversation_id: str) -> None:
        """Every step approved: the class's automation gets the signed request, once."""
        conv = self.helpdesk.repo.get(conversation_id)
        record, (_cls, _form, flow) = _approval(conv), self._class(conv)
        if record.state is not ApprovalState.APPROVED:
            return  # executed (or failed) before: never twice
        if flow.change_ticket and record.ticket_key is None:
            conv = self._open_change_ticket(conv)
            record = _approval(conv)
            if record.state is not ApprovalState.APPROVED:
                return  # no ticket, no change
        if self.executor is None:
            delivered, detail = False, "no executor configured"
        else:
            delivered, detail = self.executor.deliver(flow.executor, executor_body(conv, record))
        state = ApprovalState.EXECUTED if delivered else ApprovalState.EXECUTION_FAILED

        def done(current: Conversation) -> tuple[dict[str, Any], Events]:
            if _approval(current).state is not ApprovalState.APPROVED:
                return {}, []
            updated = _approval(current).model_copy(update={"state": state, "executor_result": detail})
            # The executor's host only: a URL's path or query may carry the receiver's own secret.
            data = {"delivered": delivered, "detail": detail, "host": _host(flow.executor)}
            return {"approval": updated}, [(EventType.HELPDESK_EXECUTED, "signoff", data)]

        conv = self.helpdesk.record(conversation_id, done)
        self.helpdesk.tell_thread(conv, executed_message(delivered, detail))
        _log("helpdesk approval executed", conversation_id, delivered=delivered)

    def _open_change_ticket(self, conv: Conversation) -> Conversation:
        """Approval, then the ticket, then the change: the approved request becomes a ticket in the
        class's queue's project before the automation is called; without one nothing is executed.
        The ticket is recorded once; its reference (the conversation and ".change") lets an ITSM that
        deduplicates on it (ServiceNow's correlation_id) drop a second open after a lost answer."""
        record, (cls, form, _flow) = _approval(conv), self._class(conv)
        ticketing = self.helpdesk.ticketing
        ticket: TicketRef | None = None
        error: str | None = "no ticketing system configured"
        if ticketing is not None:
            try:
                ticket, error = ticketing.open(self._change_draft(conv, record, cls, form)), None
            except TicketingError as exc:
                error = str(exc)[:200]
        recorded = False

        def opened(current: Conversation) -> tuple[dict[str, Any], Events]:
            nonlocal recorded
            now = _approval(current)
            if now.state is not ApprovalState.APPROVED or now.ticket_key is not None:
                return {}, []  # a concurrent run got there first
            recorded = True
            if ticket is not None:
                update: dict[str, Any] = {"ticket_key": ticket.key, "ticket_url": ticket.url}
            else:
                update = {"state": ApprovalState.EXECUTION_FAILED, "executor_result": f"no change ticket: {error}"}
            data = {
                "ticket_system": ticketing.system if ticketing else None,
                "ticket_key": ticket.key if ticket else None,
                "error": error,
            }
            return {"approval": now.model_copy(update=update)}, [(EventType.HELPDESK_CHANGE_TICKET, "signoff", data)]

        conv = self.helpdesk.record(conv.id, opened)
        if recorded:
            message = change_ticket_message(ticket.key if ticket else None, ticket.url if ticket else None, error)
            self.helpdesk.tell_thread(conv, message)
            _log("helpdesk change ticket", conv.id, ticket=ticket.key if ticket else None)
        return conv

    def _change_draft(self, conv: Conversation, record: ApprovalRecord, cls: RequestClass, form: Form) -> TicketDraft:
        queue = self.helpdesk.config.queues[cls.queue]
        chat = self.helpdesk.chat
        link = chat.permalink(conv.reply_channel, conv.reply_ts) if conv.reply_channel and conv.reply_ts else None
        return TicketDraft(
            project=queue.ticket_project,
            summary=f"[change] {form.title}: {request_target(record, form)} for {record.requester}"[:240],
            description=[
                *answer_lines(record, form),
                *(f"Step {i + 1} ({s.step.value}): {s.status.value} by {s.decided_by} in checkpoint {s.checkpoint_id}"
                  for i, s in enumerate(record.steps)),
                f"Helpdesk conversation: {conv.id}",
            ],
            urgency="normal",
            labels=["signoff-helpdesk", "change", record.class_name],
            link=link,
            reference=f"{conv.id}.change",
        )  # fmt: skip

    # -- helpers -------------------------------------------------------------------------------------

    def _class(self, conv: Conversation) -> tuple[RequestClass, Form, ApprovalFlow]:
        cls = self.helpdesk.config.classes[conv.triage.class_name]
        assert cls.approval is not None and cls.form is not None  # only such a class has an approval
        return cls, self.helpdesk.config.forms[cls.form], cls.approval

    def _person(self, conv: Conversation, slack_user: str) -> Person | None:
        directory = self.routing.routing
        if conv.team:
            return directory.by_slack(conv.team, slack_user)
        return next((p for p in directory.people if p.slack and p.slack.user == slack_user), None)

    def _named_approvers(self, step: ApprovalStep, flow: ApprovalFlow, record: ApprovalRecord) -> list[str] | None:
        """The people a step names; None: the checkpoint's own routing decides (the system's team)."""
        if step is ApprovalStep.MANAGER and record.manager:
            return [record.manager]
        if step is ApprovalStep.ROLE and flow.role:
            return list(self.routing.routing.roles[flow.role].members)  # flow_problems checked it exists
        return None

    def _deciders(self, step: ApprovalStep, record: ApprovalRecord, flow: ApprovalFlow) -> str:
        if step is ApprovalStep.MANAGER and record.manager:
            person = self.routing.routing.person(record.manager)
            return person.name if person else record.manager
        if step is ApprovalStep.SYSTEM_OWNER and record.system:
            return f"the owners of {record.system}"
        if step is ApprovalStep.ROLE and flow.role:
            members = self.routing.routing.roles[flow.role].members
            names = [p.name if (p := self.routing.routing.person(m)) else m for m in members]
            return f"{flow.role} ({', '.join(names)})"
        return step_label(step, flow)

    def _system_label(self, system: str) -> str:
        service = self.routing.routing.services.get(system)
        return f"{system} (owned by {service.team})" if service else system


def flow_problems(classes: dict[str, RequestClass], environments: list[str], routing: LoadedRouting) -> list[str]:
    """What helpdesk.yaml's approval flows name that the policy or routing.yaml does not know."""
    problems = []
    for name, cls in classes.items():
        flow = cls.approval
        if flow is None:
            continue
        if flow.environment not in environments:
            problems.append(f"classes.{name}.approval.environment: {flow.environment!r} is not one of the policy's")
        problems += [
            f"classes.{name}.approval.systems: {system!r} is not a service in routing.yaml"
            for system in flow.systems
            if system not in routing.routing.services
        ]
        if flow.role is not None and not routing.routing.roles.get(flow.role, Role()).members:
            problems.append(f"classes.{name}.approval.role: {flow.role!r} is not a routing.yaml role with members")
    return problems


def executor_body(conv: Conversation, record: ApprovalRecord) -> dict[str, Any]:
    """What the automation receives: the request as approved, who approved each step. Built from
    stored data only (no clock), so a re-sent body is the same bytes and the same delivery id."""
    return {
        "type": "helpdesk.approval.approved",
        "conversation_id": conv.id,
        "class": record.class_name,
        "form": record.form,
        "requester": record.requester,
        "fields": record.fields,
        "steps": [
            {"step": s.step.value, "checkpoint_id": s.checkpoint_id, "status": s.status.value, "by": s.decided_by}
            for s in record.steps
        ],
        **({"ticket": {"key": record.ticket_key, "url": record.ticket_url}} if record.ticket_key else {}),
    }


def _approval(conv: Conversation) -> ApprovalRecord:
    assert conv.approval is not None  # every caller runs after the form was submitted
    return conv.approval


def _host(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _log(message: str, conversation_id: str, **extra: Any) -> None:
    # Ids, steps and outcomes only: never the answers, even redacted.
    logger.info(message, extra={"conversation_id": conversation_id, **extra})

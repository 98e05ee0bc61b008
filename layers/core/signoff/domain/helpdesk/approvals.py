"""Helpdesk approvals, the pure part: reading the approval form, what the conversation keeps of it,
the Signoff checkpoint each step becomes, and the thread's messages.

A request that reaches the approval route is drafted by the bot and decided by people: the form's
answers become a `CheckpointRequest` scored by the same engine and policy as any automation's, with
the asker as requester (so separation of duties keeps them from approving it) and the risk facts
derived from the class's risk. Each step is its own checkpoint; the request id links it back to the
conversation (`<conversation id>.<step index>`), and only checkpoints whose caller is the helpdesk
are read that way."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from signoff.domain.helpdesk.config import ApprovalFlow, ApprovalStep, Form, FormInput, RequestClass
from signoff.domain.helpdesk.redact import redact
from signoff.domain.models import (
    Checkpoint,
    CheckpointRequest,
    Evidence,
    Requester,
    RiskFacts,
    Signals,
    Status,
    ValidationCheck,
)
from signoff.domain.policy import DataSensitivity, GateKind
from signoff.domain.routing import Person

HELPDESK_CALLER = "signoff:helpdesk"  # the caller of every checkpoint the helpdesk creates (never an IAM ARN)
MAX_FIELD = 500
_STEP_REQUEST_ID = re.compile(r"^(?P<conversation>hd_[0-9a-z]{26})\.(?P<index>[0-9])$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApprovalState(StrEnum):
    PENDING = "pending"  # a step's checkpoint waits for people
    APPROVED = "approved"  # every step approved: the executor runs
    STOPPED = "stopped"  # a step was denied, expired or cancelled: nothing more happens
    EXECUTED = "executed"  # the executor took it (2xx)
    EXECUTION_FAILED = "execution_failed"  # the executor did not take it (refused, 4xx, out of retries)


class StepRecord(_Frozen):
    step: ApprovalStep
    checkpoint_id: str
    gate: str
    approvers: list[str]
    status: Status = Status.PENDING
    decided_by: str | None = None


class ApprovalRecord(_Frozen):
    """What a conversation keeps of its approval: redacted answers, the people, each step's checkpoint."""

    class_name: str
    form: str
    fields: dict[str, str] = Field(description="answers by field name, redacted; a person as their directory id")
    requester: str
    manager: str | None = None
    system: str | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    state: ApprovalState = ApprovalState.PENDING
    executor_result: str | None = None
    ticket_key: str | None = None  # the change ticket (a flow with change_ticket), once opened
    ticket_url: str | None = None


@dataclass(frozen=True)
class FormReading:
    """A submitted form: the answers (redacted) when valid, else an error per field name."""

    fields: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    manager: str | None = None
    system: str | None = None
    redacted: tuple[str, ...] = ()  # kinds of personal data replaced (never the values)


def read_form(
    form: Form,
    flow: ApprovalFlow,
    values: Mapping[str, str | None],
    *,
    asker: str,
    person_of: Callable[[str], Person | None],
) -> FormReading:
    """Validate the modal's answers (`values`: field name -> text, a chat user id for a person, a
    service name for a system). Every problem is named next to its field; a secret typed into a
    field is refused rather than stored, other personal data is redacted."""
    fields: dict[str, str] = {}
    errors: dict[str, str] = {}
    manager = system = None
    kinds: set[str] = set()
    # The directory decides who manages the asker: a form cannot route the step to a friend.
    asker_person = person_of(asker)
    directory_manager = asker_person.manager if asker_person is not None else None
    for f in form.fields:
        raw = (values.get(f.name) or "").strip()
        if not raw:
            if f.required:
                errors[f.name] = f"Please give {f.label}."
            continue
        if f.input is FormInput.PERSON:
            person = person_of(raw)
            if person is None:
                errors[f.name] = "This person is not in Signoff's directory, so they cannot approve: choose who can."
            elif raw == asker:
                errors[f.name] = "You cannot approve your own request: choose your manager."
            elif directory_manager is not None and person.id != directory_manager:
                errors[f.name] = "Choose your manager as the directory names them: only they approve this step."
            else:
                fields[f.name] = manager = person.id
            continue
        if f.input is FormInput.SYSTEM:
            if raw not in flow.systems:
                errors[f.name] = "Choose one of the listed systems."
            else:
                fields[f.name] = system = raw
            continue
        if len(raw) > MAX_FIELD or _CONTROL.search(raw):
            errors[f.name] = f"At most {MAX_FIELD} characters of plain text."
            continue
        found = redact(raw)
        if found.secrets:
            errors[f.name] = "This looks like a password or key: remove it, it is never needed here."
            continue
        kinds.update(found.kinds)
        fields[f.name] = found.text
    if errors:
        return FormReading(errors=errors)
    return FormReading(fields=fields, manager=manager, system=system, redacted=tuple(sorted(kinds)))


def data_sensitivity(cls: RequestClass) -> DataSensitivity:
    """The class's risk as the policy's data sensitivity: the policy's risk rules and sensitive
    gates (DMs, not channels) then apply as for any checkpoint."""
    if cls.risk >= 1.5:
        return DataSensitivity.RESTRICTED
    if cls.risk > 1.0 or cls.privileged:
        return DataSensitivity.CONFIDENTIAL
    return DataSensitivity.INTERNAL


def checkpoint_request(
    *,
    conversation_id: str,
    index: int,
    record: ApprovalRecord,
    cls: RequestClass,
    form: Form,
    flow: ApprovalFlow,
    confidence: float,
    requester_name: str | None,
) -> CheckpointRequest:
    """Step `index` of the approval as a checkpoint request. The same conversation and step always
    give the same request, so creating it again (a retry) finds the first one.

    Signals: the helpdesk's confidence that it understood the request stands for the model; every
    required answer is a passed validation check; no telemetry or history stands behind a person's
    request, so those score nothing and a person decides unless the policy says otherwise."""
    step = flow.steps[index]
    labels = {f.name: f.label for f in form.fields}
    who = requester_name or record.requester
    lines = answer_lines(record, form)
    target = request_target(record, form)
    return CheckpointRequest(
        action=flow.action,
        target=f"{target} for {who}"[:200],
        environment=flow.environment,
        service=record.system or "helpdesk",
        summary=f"{form.title} for {who} (step {index + 1} of {len(flow.steps)}: {step_label(step, flow)})\n"
        + "\n".join(lines)[:1800],
        requester=Requester(id=record.requester, display_name=requester_name, kind="person"),
        signals=Signals(
            model_confidence=round(min(max(confidence / 100, 0.0), 1.0), 4),
            validation=[ValidationCheck(name=f"{labels[n]} given", passed=True) for n in record.fields if n in labels],
            observability_alignment=0.0,
            historical_success=0.0,
        ),
        risk=RiskFacts(
            blast_radius_pct=0.0,  # one person's request
            production_data=cls.privileged,
            rollback_available=True,  # access and licences are revoked the way they are granted
            data_sensitivity=data_sensitivity(cls),
        ),
        evidence=Evidence(
            recommendation=f"Drafted by the Signoff helpdesk from {who}'s request; the bot grants nothing itself."
        ),
        workflow_id=conversation_id,
        request_id=f"{conversation_id}.{index}",
    )


def answer_lines(record: ApprovalRecord, form: Form) -> list[str]:
    """The form's answers as "label: answer" lines (a checkpoint's summary, a change ticket)."""
    labels = {f.name: f.label for f in form.fields}
    return [f"{labels.get(name, name)}: {value}" for name, value in record.fields.items()]


def request_target(record: ApprovalRecord, form: Form) -> str:
    """What the request is about: the chosen system, else the first answer, else the form."""
    return record.system or next(iter(record.fields.values()), form.title)


def step_of(cp: Checkpoint) -> tuple[str, int] | None:
    """(conversation id, step index) of a checkpoint the helpdesk created, else None. The caller is
    checked first: an API caller's request id never makes a checkpoint the helpdesk's."""
    if cp.caller != HELPDESK_CALLER or cp.request.request_id is None:
        return None
    match = _STEP_REQUEST_ID.match(cp.request.request_id)
    return (match["conversation"], int(match["index"])) if match else None


def step_label(step: ApprovalStep, flow: ApprovalFlow | None = None) -> str:
    if step is ApprovalStep.ROLE:
        return f"the {flow.role}" if flow is not None and flow.role else "the approving role"
    return {ApprovalStep.MANAGER: "the manager", ApprovalStep.SYSTEM_OWNER: "the system owners"}[step]


# -- the thread's messages -----------------------------------------------------------------------


def requested_message(cp: Checkpoint, index: int, steps: int, who: str) -> str:
    """A step's checkpoint exists: who decides, under which gate, until when."""
    gate = cp.assessment.gate
    head = f"Step {index + 1} of {steps}: {who} decides (checkpoint `{cp.id}`)."
    if gate.kind is GateKind.AUTO:
        return f"{head} The policy approved it at once ({gate.profile})."
    if gate.kind is GateKind.SOFT:
        return f"{head} It goes ahead at {_when(cp.deadline)} unless someone vetoes it."
    return f"{head} It needs an approval by {_when(cp.deadline)}; nothing is granted until then."


def decided_message(cp: Checkpoint, index: int, steps: int) -> str:
    by = cp.decided_by or "the policy"
    if cp.status is Status.APPROVED:
        more = " Next step below." if index + 1 < steps else " Every approval is in: handing it to the automation."
        return f"Step {index + 1} of {steps} approved by {by}.{more}"
    outcome = {
        Status.DENIED: f"denied by {by}",
        Status.EXPIRED: "expired with no decision in time",
        Status.CANCELLED: "cancelled",
    }[cp.status]
    reason = f" ({cp.decision_reason})" if cp.decision_reason and cp.status is Status.DENIED else ""
    return f"Step {index + 1} of {steps} {outcome}{reason}. Nothing was granted; choose *Talk to a human* for help."


def change_ticket_message(key: str | None, url: str | None, error: str | None) -> str:
    if key is not None:
        return f"Change ticket {key} opened: {url}. Handing it to the automation with the ticket."
    return f"The change ticket could not be opened ({error}). Nothing was granted; a person will follow up."


def executed_message(delivered: bool, detail: str) -> str:
    if delivered:
        return f"Done: the automation accepted the request ({detail})."
    return f"The automation did not take the request ({detail}). Nothing was granted yet; a person will follow up."


def _when(at: datetime | None) -> str:
    return at.strftime("%H:%M UTC on %d %b") if at else "the deadline"

"""Use cases behind the API: score, create (idempotently), read, list, report an outcome.
The service owns the rules; repositories only store, handlers only translate HTTP.

Idempotency has one mechanism: the caller and its Idempotency-Key name the checkpoint
(`idempotent_checkpoint_id`) and the checkpoint is created with a conditional write. A retry, or a
concurrent twin, finds the checkpoint the first one stored and gets it back (another body: 409).
It needs no second table, no in-progress lock to wait out and no expiry: a key protects for as long
as its checkpoint exists."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from signoff.audit.changes import Change, Entry, apply_change, chain, decision_data
from signoff.audit.events import AuditEvent, EventType
from signoff.domain.engine import assess
from signoff.domain.errors import AlreadyExists, Conflict, Forbidden, InvalidRequest, WorkflowUnavailable
from signoff.domain.models import (
    Assessment,
    Checkpoint,
    CheckpointPage,
    CheckpointRequest,
    Outcome,
    OutcomeRequest,
    ShadowVerdict,
    Status,
)
from signoff.domain.policy import GateKind, LoadedPolicy, TimeoutRule
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.ports import CheckpointRepository, Clock, Workflow
from signoff.usecases.results import release_workflow

# Crockford base32, lower case: ids stay URL- and DynamoDB-key-friendly and unambiguous to read.
_B32 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghjkmnpqrstvwxyz")


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").translate(_B32)


def new_checkpoint_id(now: datetime) -> str:
    """Time-ordered like a ULID: 48-bit milliseconds then 80 random bits."""
    millis = int(now.timestamp() * 1000).to_bytes(6, "big")
    return "cp_" + _b32(millis + os.urandom(10))[:26]


def idempotent_checkpoint_id(caller: str, key: str) -> str:
    """The same caller and Idempotency-Key always name the same checkpoint, so even a retry that
    outlives the idempotency record cannot create a second one."""
    return "cp_" + _b32(hashlib.sha256(f"{caller}\0{key}".encode()).digest())[:26]


def shadow_verdict(request: CheckpointRequest, shadow: LoadedPolicy) -> ShadowVerdict:
    """The shadow policy's would-be decision; a request it cannot assess is recorded as such."""
    try:
        a = score_request(request, shadow)
    except InvalidRequest as exc:
        return ShadowVerdict(policy_version=shadow.version, error=f"{exc.field}: {exc.message}")
    return ShadowVerdict(
        policy_version=shadow.version,
        gate=a.gate.kind,
        profile=a.gate.profile,
        band=a.band,
        risk_class=a.risk.risk_class,
        score=a.score.score,
        calibrated_score=a.calibrated_score,
        approvals_required=a.gate.approvals_required,
    )


def score_request(request: CheckpointRequest, policy: LoadedPolicy) -> Assessment:
    """The engine behind both intake and the dry run, after the checks only the policy knows."""
    if request.environment not in policy.policy.environments:
        allowed = ", ".join(policy.policy.environments)
        raise InvalidRequest("environment", f"unknown environment {request.environment!r}; expected one of {allowed}")
    return assess(request, policy)


class CheckpointService:
    def __init__(
        self,
        repo: CheckpointRepository,
        policy: LoadedPolicy,
        clock: Clock,
        routing: LoadedRouting | None = None,
        workflow: Workflow | None = None,
        shadow: LoadedPolicy | None = None,
    ) -> None:
        self.shadow = shadow  # evaluated beside the policy on every checkpoint; never acts
        self.repo = repo
        self.routing = routing
        self.workflow = workflow
        self.policy = policy
        self.clock = clock

    # -- scoring -------------------------------------------------------------------------------

    def score(self, request: CheckpointRequest) -> Assessment:
        return score_request(request, self.policy)

    # -- creation ------------------------------------------------------------------------------

    def create(
        self,
        request: CheckpointRequest,
        *,
        caller: str,
        idempotency_key: str | None,
        caller_token: str | None = None,
        approvers: Sequence[str] | None = None,
    ) -> Checkpoint:
        """Score the request and store the checkpoint; an auto gate is decided at once, a soft or
        hard gate starts the approval workflow. `caller_token` is an embedding workflow's task
        token, answered when the checkpoint is decided. `approvers`: the people the request names
        (the helpdesk's manager step), routed like any approvers (escalation, separation of duties)."""
        assessment = self.score(request)  # validates before anything is written
        if idempotency_key is None:
            checkpoint_id = new_checkpoint_id(self.clock.now())
            return self._store(request, assessment, caller, checkpoint_id, caller_token, approvers)
        return self._create_with_key(request, assessment, caller, idempotency_key, caller_token, approvers)

    def _create_with_key(
        self,
        request: CheckpointRequest,
        assessment: Assessment,
        caller: str,
        key: str,
        caller_token: str | None,
        approvers: Sequence[str] | None = None,
    ) -> Checkpoint:
        checkpoint_id = idempotent_checkpoint_id(caller, key)
        try:
            return self._store(request, assessment, caller, checkpoint_id, caller_token, approvers)
        except AlreadyExists:
            existing = self.repo.get(checkpoint_id)
            if existing.request != request:
                raise IdempotencyKeyReused() from None
            return self.open_gate(existing)  # a retry after a crash between storing and starting

    def _store(
        self,
        request: CheckpointRequest,
        assessment: Assessment,
        caller: str,
        checkpoint_id: str,
        caller_token: str | None = None,
        approvers: Sequence[str] | None = None,
    ) -> Checkpoint:
        now = self.clock.now()
        gate = assessment.gate
        auto = gate.kind is GateKind.AUTO
        draft = Checkpoint(
            id=checkpoint_id,
            status=Status.PENDING,
            created_at=now,
            deadline=None if auto else now + timedelta(seconds=_total_wait(assessment)),
            request=request,
            assessment=assessment,
            caller=caller,
            approvers=[] if auto else self._approvers(request, assessment, now, approvers),
            shadow=shadow_verdict(request, self.shadow) if self.shadow else None,
        )
        requested = Entry(
            EventType.REQUESTED,
            request.requester.id,
            {
                "caller": caller,
                "request": request.model_dump(mode="json"),
                "assessment": assessment.model_dump(mode="json"),
                "deadline": draft.deadline.isoformat() if draft.deadline else None,
                "approvers": draft.approvers,
                **({"shadow": draft.shadow.model_dump(mode="json", exclude_none=True)} if draft.shadow else {}),
            },
        )
        entries = [requested]
        updates: dict[str, Any] = {}
        if auto:
            reason = f"auto gate ({gate.profile}): {assessment.explanation[0]}"
            updates = {"status": Status.APPROVED, "decided_at": now, "decided_by": "policy", "decision_reason": reason}
            decided = decision_data(draft, Status.APPROVED, "policy", reason, now)
            entries.append(Entry(EventType.DECIDED, "policy", decided))
        events = chain(draft, entries, now)
        checkpoint = draft.model_copy(update={**updates, "audit_seq": events[-1].seq, "audit_head": events[-1].hash})
        self.repo.create(checkpoint, events)
        if caller_token is not None:
            # Stored before the gate opens, so Finalize always finds it; answered by the embedding
            # path once the checkpoint is decided (an auto gate: at once).
            self.repo.put_caller_token(checkpoint.id, caller_token)
        return self.open_gate(checkpoint)

    def _approvers(
        self, request: CheckpointRequest, assessment: Assessment, now: datetime, named: Sequence[str] | None = None
    ) -> list[str]:
        if self.routing is None:
            return []
        return self.routing.approvers(
            service=request.service,
            environment=request.environment,
            action=request.action,
            requester=request.requester.id,
            requester_may_approve=assessment.gate.requester_may_approve,
            escalation_route=assessment.gate.escalation_route,
            at=now,
            named=named,
        )

    def open_gate(self, cp: Checkpoint) -> Checkpoint:
        """Start the approval workflow of a pending checkpoint (named execution = its id, so a
        retry cannot start a second one). If it cannot start, the checkpoint is cancelled rather
        than left waiting for a workflow that does not exist."""
        if self.workflow is None or cp.status is not Status.PENDING or cp.execution:
            return cp
        gate = cp.assessment.gate
        workflow_input = {
            "checkpoint_id": cp.id,
            "gate": gate.kind.value,
            "first_wait_seconds": gate.veto_window_seconds or gate.approval_deadline_seconds,
            "escalation_wait_seconds": gate.escalation_wait_seconds or 0,
            "timeout_rule": (gate.timeout_rule or TimeoutRule.FAIL_CLOSED).value,
        }
        try:
            self.workflow.start(cp.id, workflow_input)
        except Exception as exc:  # noqa: BLE001 - any failure to start leaves nothing waiting
            logger.exception("approval workflow did not start")
            self.cancel(cp.id, actor="signoff", reason=f"the approval workflow could not start ({type(exc).__name__})")
            raise WorkflowUnavailable() from exc

        def started(current: Checkpoint) -> Change:
            if current.execution:
                return Change()  # a concurrent retry of the same request recorded it first
            entry = Entry(EventType.GATE_OPENED, "signoff", {"execution": cp.id, **workflow_input})
            return Change(updates={"execution": cp.id}, entries=[entry])

        return apply_change(self.repo, self.clock, cp.id, started)

    def cancel(self, checkpoint_id: str, *, actor: str, reason: str, only_by: str | None = None) -> Checkpoint:
        """Cancel a pending checkpoint; its workflow is answered so it ends now (Finalize runs).
        `only_by`: the principal that must have made the request (the API's rule)."""

        def decide(cp: Checkpoint) -> Change:
            if only_by is not None and cp.caller != only_by:
                raise Forbidden(f"only the principal that requested checkpoint {cp.id} may cancel it")
            if cp.status is not Status.PENDING:
                raise Conflict(f"checkpoint {cp.id} is already {cp.status}")
            now = self.clock.now()
            updates = {"status": Status.CANCELLED, "decided_at": now, "decided_by": actor, "decision_reason": reason}
            data = decision_data(cp, Status.CANCELLED, actor, reason, now)
            return Change(updates=updates, entries=[Entry(EventType.CANCELLED, actor, data)])

        cp = apply_change(self.repo, self.clock, checkpoint_id, decide)
        release_workflow(self.repo, self.workflow, cp)
        return cp

    # -- reading -------------------------------------------------------------------------------

    def get(self, checkpoint_id: str) -> Checkpoint:
        return self.repo.get(checkpoint_id)

    def list_by_status(self, status: Status, *, limit: int, next_token: str | None) -> CheckpointPage:
        return self.repo.list_by_status(status, limit=limit, next_token=next_token)

    def events(self, checkpoint_id: str) -> list[AuditEvent]:
        self.repo.get(checkpoint_id)  # NotFound for an unknown id rather than an empty list
        return self.repo.events(checkpoint_id)

    # -- outcome -------------------------------------------------------------------------------

    def report_outcome(self, checkpoint_id: str, body: OutcomeRequest, *, caller: str) -> Checkpoint:
        """Record how the approved action went; once per checkpoint."""

        def decide(cp: Checkpoint) -> Change:
            if cp.outcome is not None:
                raise Conflict(f"checkpoint {cp.id} already has an outcome ({cp.outcome.outcome})")
            if cp.status is not Status.APPROVED:
                raise Conflict(f"checkpoint {cp.id} is {cp.status}: only an approved action has an outcome")
            outcome = Outcome(
                outcome=body.outcome,
                details=body.details,
                reported_by=body.reported_by or caller,
                reported_at=self.clock.now(),
            )
            entry = Entry(EventType.OUTCOME_REPORTED, outcome.reported_by, outcome.model_dump(mode="json"))
            return Change(updates={"outcome": outcome}, entries=[entry])

        return apply_change(self.repo, self.clock, checkpoint_id, decide)


class IdempotencyKeyReused(Conflict):
    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request body")


def _total_wait(assessment: Assessment) -> int:
    gate = assessment.gate
    first = gate.veto_window_seconds or gate.approval_deadline_seconds or 0
    return first + (gate.escalation_wait_seconds or 0)

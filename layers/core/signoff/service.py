"""Use cases behind the API: score, create (idempotently), read, list, report an outcome.
The service owns the rules; repositories only store, handlers only translate HTTP."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from signoff.audit import AuditEvent, EventType, chain_event
from signoff.engine import assess
from signoff.errors import AlreadyExists, Conflict, InvalidRequest, StaleCheckpoint
from signoff.models import (
    Assessment,
    Checkpoint,
    CheckpointPage,
    CheckpointRequest,
    Outcome,
    OutcomeRequest,
    Status,
)
from signoff.policy import GateKind, LoadedPolicy
from signoff.ports import CheckpointRepository, Clock

# Crockford base32, lower case: ids stay URL- and DynamoDB-key-friendly and unambiguous to read.
_B32 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "0123456789abcdefghjkmnpqrstvwxyz")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
_SAVE_ATTEMPTS = 5
_ASSESSED: ContextVar[Assessment | None] = ContextVar("signoff_assessed", default=None)


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
        idempotency_store: BasePersistenceLayer | None = None,
    ) -> None:
        self.repo = repo
        self.policy = policy
        self.clock = clock
        self._create_once: Callable[..., dict[str, Any]] | None = None
        self._idempotency_config: IdempotencyConfig | None = None
        if idempotency_store is not None:
            config = self._idempotency_config = IdempotencyConfig(
                event_key_jmespath="key",
                payload_validation_jmespath="request",
                expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
            )
            self._create_once = idempotent_function(
                data_keyword_argument="payload", persistence_store=idempotency_store, config=config
            )(self._create_from_payload)

    def bind_lambda_context(self, context: Any) -> None:
        """Lets idempotency lock a request only for the invocation's remaining time."""
        if self._idempotency_config is not None and context is not None:
            self._idempotency_config.register_lambda_context(context)

    # -- scoring -------------------------------------------------------------------------------

    def score(self, request: CheckpointRequest) -> Assessment:
        return score_request(request, self.policy)

    # -- creation ------------------------------------------------------------------------------

    def create(self, request: CheckpointRequest, *, caller: str, idempotency_key: str | None) -> Checkpoint:
        """Score the request and store the checkpoint; an auto gate is decided at once."""
        assessment = self.score(request)  # validates before anything is written
        if idempotency_key is None:
            return self._store(request, assessment, caller, new_checkpoint_id(self.clock.now()))
        if self._create_once is None:
            return self._create_with_key(request, assessment, caller, idempotency_key)
        payload = {
            "key": f"{caller}\0{idempotency_key}",
            "request": request.model_dump(mode="json"),
            "caller": caller,
            "idem": idempotency_key,
        }
        # The request was assessed above; hand that on rather than scoring it twice.
        token = _ASSESSED.set(assessment)
        try:
            return Checkpoint.model_validate(self._create_once(payload=payload))
        finally:
            _ASSESSED.reset(token)

    def _create_from_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        request = CheckpointRequest.model_validate(payload["request"])
        assessment = _ASSESSED.get(None) or self.score(request)
        cp = self._create_with_key(request, assessment, payload["caller"], payload["idem"])
        return cp.model_dump(mode="json")

    def _create_with_key(self, request: CheckpointRequest, assessment: Assessment, caller: str, key: str) -> Checkpoint:
        checkpoint_id = idempotent_checkpoint_id(caller, key)
        try:
            return self._store(request, assessment, caller, checkpoint_id)
        except AlreadyExists:
            existing = self.repo.get(checkpoint_id)
            if existing.request != request:
                raise IdempotencyKeyReused() from None
            return existing

    def _store(self, request: CheckpointRequest, assessment: Assessment, caller: str, checkpoint_id: str) -> Checkpoint:
        now = self.clock.now()
        auto = assessment.gate.kind is GateKind.AUTO
        deadline = None if auto else now + timedelta(seconds=_total_wait(assessment))
        requested = chain_event(
            checkpoint_id=checkpoint_id,
            prev=None,
            type=EventType.REQUESTED,
            at=now,
            actor=request.requester.id,
            data={
                "caller": caller,
                "request": request.model_dump(mode="json"),
                "assessment": assessment.model_dump(mode="json"),
                "deadline": deadline.isoformat() if deadline else None,
            },
        )
        events = [requested]
        if auto:
            events.append(
                chain_event(
                    checkpoint_id=checkpoint_id,
                    prev=(requested.seq, requested.hash),
                    type=EventType.DECIDED,
                    at=now,
                    actor="policy",
                    data=_decision_data(
                        Status.APPROVED,
                        "policy",
                        "auto gate: " + assessment.explanation[0],
                        assessment,
                        requested_at=now,
                        decided_at=now,
                    ),
                )
            )
        checkpoint = Checkpoint(
            id=checkpoint_id,
            status=Status.APPROVED if auto else Status.PENDING,
            created_at=now,
            deadline=deadline,
            request=request,
            assessment=assessment,
            caller=caller,
            decided_at=now if auto else None,
            decided_by="policy" if auto else None,
            decision_reason=f"auto gate ({assessment.gate.profile})" if auto else None,
            audit_seq=events[-1].seq,
            audit_head=events[-1].hash,
        )
        self.repo.create(checkpoint, events)
        return checkpoint

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

        def change(cp: Checkpoint) -> tuple[dict[str, Any], EventType, str, dict[str, Any]]:
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
            return (
                {"outcome": outcome},
                EventType.OUTCOME_REPORTED,
                outcome.reported_by,
                outcome.model_dump(mode="json"),
            )

        return self.transition(checkpoint_id, change)

    def transition(
        self,
        checkpoint_id: str,
        change: Callable[[Checkpoint], tuple[dict[str, Any], EventType, str, dict[str, Any]]],
    ) -> Checkpoint:
        """Apply `change` (which may refuse by raising) and append its audit event, atomically.
        A concurrent writer makes the save stale: re-read and re-decide rather than overwrite."""
        for _ in range(_SAVE_ATTEMPTS):
            current = self.repo.get(checkpoint_id)
            updates, event_type, actor, data = change(current)
            event = chain_event(
                checkpoint_id=checkpoint_id,
                prev=(current.audit_seq, current.audit_head or ""),
                type=event_type,
                at=self.clock.now(),
                actor=actor,
                data=data,
            )
            updated = current.model_copy(update={**updates, "audit_seq": event.seq, "audit_head": event.hash})
            try:
                self.repo.save(updated, expected=current, event=event)
            except StaleCheckpoint:
                continue
            return updated
        raise Conflict(f"checkpoint {checkpoint_id} kept changing; retry the request")


class IdempotencyKeyReused(Conflict):
    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was already used with a different request body")


def _total_wait(assessment: Assessment) -> int:
    gate = assessment.gate
    first = gate.veto_window_seconds or gate.approval_deadline_seconds or 0
    return first + (gate.escalation_wait_seconds or 0)


def _decision_data(
    status: Status,
    decided_by: str,
    reason: str,
    assessment: Assessment,
    *,
    requested_at: datetime,
    decided_at: datetime,
) -> dict[str, Any]:
    """The fields every decision event carries (the audit-completeness SLI checks them)."""
    return {
        "status": status.value,
        "decided_by": decided_by,
        "reason": reason,
        "gate": assessment.gate.kind.value,
        "risk": assessment.risk.risk_class.value,
        "score": assessment.score.score,
        "policy_version": assessment.policy_version,
        "latency_seconds": (decided_at - requested_at).total_seconds(),
    }

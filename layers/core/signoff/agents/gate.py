"""Ask Signoff before an agent's tool call, and wait with the gate's semantics.

`AgentGate` turns one tool call (tool name, arguments, the agent's confidence and validations,
risk facts) into a checkpoint request bound to the SHA-256 digest of the canonical arguments,
creates it, and waits until Signoff decides: an auto gate answers at once; a soft gate runs when
its veto window passes unless someone vetoes (Signoff's fail-open timeout approves it); a hard gate
waits for approvals. Anything but APPROVED raises a typed `NotApproved`, and an approval is checked
against the digest of the arguments the tool is about to get.

Signoff is the judge: the gate never approves by itself, and when it stops waiting it withdraws the
checkpoint (so nobody approves a call that will not happen) and raises `NotDecided`."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from signoff.agents.arguments import digest as digest_of
from signoff.agents.arguments import summary as summary_of
from signoff.agents.errors import ArgumentsChanged, Cancelled, Denied, Expired, NotApproved, NotDecided
from signoff.tools.client import SignoffClientError

MAX_POLL_SECONDS = 10.0
MAX_FAILURES = 5  # consecutive transient failures tolerated while creating or waiting
GRACE_SECONDS = 300.0  # past the checkpoint's own deadline (and escalation), before giving up
_REFUSALS: dict[str, type[NotApproved]] = {"DENIED": Denied, "EXPIRED": Expired, "CANCELLED": Cancelled}


class CheckpointApi(Protocol):
    """What the gate needs of the Signoff API (`signoff.tools.client.SignoffClient` has it)."""

    def create(self, request: dict[str, Any], idempotency_key: str) -> tuple[int, dict[str, Any]]: ...

    def get(self, checkpoint_id: str) -> dict[str, Any]: ...

    def cancel(self, checkpoint_id: str, reason: str | None = None) -> dict[str, Any]: ...

    def outcome(
        self, checkpoint_id: str, outcome: str, details: str | None = None, reported_by: str | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ToolCall:
    """One call an agent wants to make, and the evidence it brings."""

    tool: str
    arguments: Mapping[str, Any]
    confidence: float | None = None  # the model's own confidence in the call, 0-1
    validations: Sequence[tuple[str, bool]] | Mapping[str, bool] = ()
    risk: Mapping[str, Any] = field(default_factory=dict)  # RiskFacts fields
    rationale: str | None = None  # why the agent wants it, in its words
    call_id: str | None = None  # the framework's tool-call id: a retry of the same call finds the same checkpoint
    conversation_url: str | None = None


@dataclass(frozen=True)
class Approval:
    """Signoff approved this call: for these arguments only (`digest`), with these conditions."""

    tool: str
    checkpoint_id: str
    digest: str
    gate: str
    decided_by: str | None
    reason: str | None
    conditions: dict[str, Any]

    def check(self, arguments: Mapping[str, Any]) -> None:
        """Raise `ArgumentsChanged` unless `arguments` are exactly the approved ones."""
        if digest_of(arguments) != self.digest:
            raise ArgumentsChanged(self.tool, self.checkpoint_id, "arguments changed", digest=self.digest)


class AgentGate:
    """Signoff for one agent: who it is, where it acts, and the defaults of its evidence.

    `signals` and `risk` give the defaults every call starts from (Signals and RiskFacts fields of a
    checkpoint request). What is not known scores nothing: a call with no model confidence, no
    observability and no history gets a low score and so a human gate, and a call with no risk facts
    is taken as one that cannot be rolled back."""

    def __init__(
        self,
        api: CheckpointApi,
        *,
        agent: str,
        environment: str,
        service: str,
        display_name: str | None = None,
        signals: Mapping[str, Any] | None = None,
        risk: Mapping[str, Any] | None = None,
        framework: str = "sdk",
        conversation_url: str | None = None,
        run_id: str | None = None,
        timeout: float | None = None,
        poll: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.api = api
        self.agent = agent
        self.environment = environment
        self.service = service
        self.display_name = display_name
        self.signals: dict[str, Any] = {
            "model_confidence": 0.0,
            "observability_alignment": 0.0,
            "historical_success": 0.0,
        }
        self.signals.update(signals or {})
        self.risk = {"blast_radius_pct": 0.0, "rollback_available": False, **(risk or {})}
        self.framework = framework
        self.conversation_url = conversation_url
        self.run_id = run_id
        self.timeout = timeout
        self.poll = poll
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._clock = clock
        self._now = now

    # -- the request -------------------------------------------------------------------------------

    def request(self, call: ToolCall) -> dict[str, Any]:
        """The checkpoint request for a tool call (the body of POST /v1/checkpoints)."""
        digest = digest_of(call.arguments)  # first: refuses arguments with no canonical form
        shown = summary_of(call.arguments)
        signals: dict[str, Any] = dict(self.signals)
        if call.confidence is not None:
            signals["model_confidence"] = float(call.confidence)
        checks = call.validations.items() if isinstance(call.validations, Mapping) else call.validations
        if checks:
            signals["validation"] = [{"name": name, "passed": bool(ok)} for name, ok in checks]
        who = self.display_name or self.agent
        summary = f"Agent {who} asks to call {call.tool}({shown})"
        if call.rationale:
            summary += f". Why: {call.rationale}"
        tool_call: dict[str, Any] = {
            "tool": call.tool,
            "arguments_digest": digest,
            "arguments_summary": shown,
            "framework": self.framework,
        }
        conversation = call.conversation_url or self.conversation_url
        if conversation:
            tool_call["conversation_url"] = conversation
        body: dict[str, Any] = {
            "action": "call",
            "target": call.tool,
            "environment": self.environment,
            "service": self.service,
            "summary": summary[:2000],
            "requester": {"id": self.agent, "kind": "agent"},
            "signals": signals,
            "risk": {**self.risk, **call.risk},
            "tool_call": tool_call,
        }
        if self.display_name:
            body["requester"]["display_name"] = self.display_name
        if call.call_id:
            body["request_id"] = call.call_id[:128]
        if self.run_id:
            body["workflow_id"] = self.run_id
        return body

    def idempotency_key(self, call: ToolCall, digest: str) -> str:
        """Stable for one tool call (its id, tool and arguments): a retry or a resumed run finds the
        checkpoint it already made, while a new call, or new arguments, make a new one."""
        call_id = call.call_id or uuid.uuid4().hex
        seed = "\n".join((self.agent, call.tool, digest, call_id))
        return "agent-" + hashlib.sha256(seed.encode()).hexdigest()

    # -- sync --------------------------------------------------------------------------------------

    def open(self, call: ToolCall) -> tuple[dict[str, Any], dict[str, Any]]:
        """Create (or, for a call with a `call_id`, find again) the call's checkpoint without waiting:
        (the request, the checkpoint as the API returned it)."""
        body = self.request(call)
        key = self.idempotency_key(call, body["tool_call"]["arguments_digest"])
        return body, self._retrying(lambda: self.api.create(body, key)[1])

    def ask(self, call: ToolCall) -> Approval:
        """Create the checkpoint and wait for the decision: the `Approval`, or a `NotApproved`."""
        body, cp = self.open(call)
        give_up_at = self._clock() + self._patience(cp)
        delay, get = self.poll, functools.partial(self.api.get, str(cp.get("id")))
        while cp.get("status") == "PENDING":
            remaining = give_up_at - self._clock()
            if remaining <= 0:
                self._withdraw(cp)
                raise NotDecided(call.tool, cp.get("id"), digest=body["tool_call"]["arguments_digest"])
            self._sleep(min(delay, remaining))
            cp = self._retrying(get)
            delay = min(delay * 1.5, MAX_POLL_SECONDS)
        return self._decided(call, body, cp)

    def report(self, approval: Approval, error: BaseException | None) -> None:
        """Tell Signoff how the approved call went (an outcome feeds calibration); never raises for
        the API's sake: the tool already ran."""
        outcome, details = ("success", None) if error is None else ("failure", type(error).__name__)
        try:
            self.api.outcome(approval.checkpoint_id, outcome, details=details, reported_by=self.agent)
        except SignoffClientError:
            pass  # an outcome is evidence, not control: losing one does not undo the call

    # -- async -------------------------------------------------------------------------------------

    async def ask_async(self, call: ToolCall) -> Approval:
        """`ask` for event loops: the HTTP calls run in a worker thread, the waits never block the loop.
        Cancelling the task withdraws the checkpoint."""
        body, cp = await asyncio.to_thread(self.open, call)
        give_up_at = self._clock() + self._patience(cp)
        delay, get = self.poll, functools.partial(self.api.get, str(cp.get("id")))
        try:
            while cp.get("status") == "PENDING":
                remaining = give_up_at - self._clock()
                if remaining <= 0:
                    await asyncio.to_thread(self._withdraw, cp)
                    raise NotDecided(call.tool, cp.get("id"), digest=body["tool_call"]["arguments_digest"])
                await self._async_sleep(min(delay, remaining))
                cp = await asyncio.to_thread(self._retrying, get)
                delay = min(delay * 1.5, MAX_POLL_SECONDS)
        except asyncio.CancelledError:
            self._withdraw(cp)
            raise
        return self._decided(call, body, cp)

    async def report_async(self, approval: Approval, error: BaseException | None) -> None:
        await asyncio.to_thread(self.report, approval, error)

    # -- shared ------------------------------------------------------------------------------------

    def _patience(self, cp: dict[str, Any]) -> float:
        """How long to wait: the caller's timeout, else until the checkpoint's deadline (plus its
        escalation and a grace), by which Signoff's timeout rule has decided."""
        if self.timeout is not None:
            return self.timeout
        gate = (cp.get("assessment") or {}).get("gate") or {}
        deadline = cp.get("deadline")
        if not deadline:
            return GRACE_SECONDS
        left = (dt.datetime.fromisoformat(str(deadline)) - self._now()).total_seconds()
        return max(left, 0.0) + float(gate.get("escalation_wait_seconds") or 0) + GRACE_SECONDS

    def _decided(self, call: ToolCall, body: dict[str, Any], cp: dict[str, Any]) -> Approval:
        digest = body["tool_call"]["arguments_digest"]
        status = str(cp.get("status"))
        details = {
            "reason": cp.get("decision_reason"),
            "decided_by": cp.get("decided_by"),
            "conditions": cp.get("conditions"),
            "digest": digest,
        }
        if status != "APPROVED":
            refusal = _REFUSALS.get(status, NotApproved)
            raise refusal(call.tool, cp.get("id"), **details)
        approved = ((cp.get("request") or {}).get("tool_call") or {}).get("arguments_digest")
        if approved != digest:
            # Not the checkpoint of these arguments (an idempotency key reused elsewhere): no approval.
            raise ArgumentsChanged(call.tool, cp.get("id"), "approved for other arguments", digest=approved)
        gate = ((cp.get("assessment") or {}).get("gate") or {}).get("kind", "")
        return Approval(
            tool=call.tool,
            checkpoint_id=str(cp["id"]),
            digest=digest,
            gate=str(gate),
            decided_by=cp.get("decided_by"),
            reason=cp.get("decision_reason"),
            conditions=dict(cp.get("conditions") or {}),
        )

    def _retrying(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Call the API; retry what may succeed later (throttling, 5xx, no answer) with backoff.
        Retries reuse the same idempotency key, so a create that did land is not made twice."""
        delay = 0.5
        for attempt in range(1, MAX_FAILURES + 1):
            try:
                return call()
            except SignoffClientError as exc:
                if not exc.transient or attempt == MAX_FAILURES:
                    raise
            self._sleep(delay)
            delay = min(delay * 2, MAX_POLL_SECONDS)
        raise AssertionError("unreachable")  # pragma: no cover

    def _withdraw(self, cp: dict[str, Any]) -> None:
        """Cancel a checkpoint nobody will act on any more; if it was decided meanwhile, so be it."""
        try:
            self.api.cancel(str(cp["id"]), reason="the agent stopped waiting for a decision")
        except SignoffClientError:
            pass  # already decided, or unreachable: its own deadline will close it

"""The agent SDK against an in-memory Signoff API: the request a tool call becomes, the digest an
approval is bound to, the decorator and the context manager (sync and async), and each refusal.
Time is the fake's: a wait advances it, and a person decides while the agent waits."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest

from signoff.agents import (
    AgentGate,
    ArgumentsChanged,
    Cancelled,
    Denied,
    Expired,
    NotApproved,
    NotDecided,
    ToolCall,
    canonical,
    digest,
    require_signoff,
    summary,
)
from signoff.agents.arguments import UnsupportedArgument
from signoff.domain.models import CheckpointRequest
from signoff.testing.signoff_api import FakeSignoffApi

pytestmark = pytest.mark.unit


def approve_by(person: str) -> Any:
    return lambda cp: ("APPROVED", person, "ok")


def gate_for(api: FakeSignoffApi, **kwargs: Any) -> AgentGate:
    return AgentGate(
        api,
        agent="billing-agent",
        display_name="Billing agent",
        environment="production",
        service="billing",
        sleep=api.sleep,
        async_sleep=api.asleep,
        clock=api.clock,
        now=api.now,
        **kwargs,
    )


# -- arguments ----------------------------------------------------------------------------------


def test_the_digest_is_of_the_canonical_arguments_whatever_their_order() -> None:
    a = {"order": "o-1", "amount": 12.5, "meta": {"b": 1, "a": [1, 2]}}
    b = {"meta": {"a": [1, 2], "b": 1}, "amount": 12.5, "order": "o-1"}
    assert canonical(a) == '{"amount":12.5,"meta":{"a":[1,2],"b":1},"order":"o-1"}'
    assert digest(a) == digest(b) and digest(a).startswith("sha256:") and len(digest(a)) == 71
    assert digest({**a, "amount": 12.6}) != digest(a)


@dataclass
class Order:
    id: str
    at: dt.date


def test_plain_data_types_have_one_form_and_anything_else_is_refused() -> None:
    assert canonical({"o": Order("o-1", dt.date(2026, 1, 2)), "t": ("x", 1)}) == (
        '{"o":{"at":"2026-01-02","id":"o-1"},"t":["x",1]}'
    )
    with pytest.raises(UnsupportedArgument, match=r"arguments\.client: a object"):
        canonical({"client": object()})
    with pytest.raises(UnsupportedArgument, match=r"arguments\.x: nan"):
        canonical({"x": float("nan")})
    with pytest.raises(UnsupportedArgument, match="key 1"):
        canonical({"m": {1: "a"}})


def test_approvers_see_arguments_redacted_and_truncated() -> None:
    shown = summary(
        {
            "api_key": "abc",
            "note": "mail jane.doe@example.com, token ghp_" + "a" * 36,
            "body": "x" * 500,
            "nested": {"db_password": "hunter2"},
        }
    )
    assert "abc" not in shown and "hunter2" not in shown and "jane.doe" not in shown and "ghp_" not in shown
    assert '"api_key": "[REDACTED]"' in shown and '"db_password": "[REDACTED]"' in shown
    assert "(500 chars)" in shown
    assert len(summary({"items": ["y" * 100] * 50})) == 600


# -- the request --------------------------------------------------------------------------------


def test_a_tool_call_becomes_a_valid_checkpoint_request_bound_to_its_digest() -> None:
    gate = gate_for(FakeSignoffApi(), risk={"blast_radius_pct": 5}, conversation_url="https://chat.example.com/c/1")
    body = gate.request(
        ToolCall(
            "refund",
            {"order": "o-1", "amount": 10},
            confidence=0.8,
            validations={"order-exists": True, "under-limit": False},
            risk={"production_data": True},
            rationale="the customer was charged twice",
            call_id="call_1",
        )
    )
    request = CheckpointRequest.model_validate(body)  # what the API accepts
    assert request.tool_call is not None
    assert request.tool_call.arguments_digest == digest({"order": "o-1", "amount": 10})
    assert request.tool_call.conversation_url == "https://chat.example.com/c/1"
    assert request.requester.kind == "agent" and request.requester.id == "billing-agent"
    assert request.signals.model_confidence == 0.8 and [c.passed for c in request.signals.validation] == [True, False]
    assert request.risk.production_data and request.risk.blast_radius_pct == 5 and not request.risk.rollback_available
    assert request.request_id == "call_1" and "charged twice" in request.summary and "refund(" in request.summary


def test_what_is_not_known_scores_nothing() -> None:
    body = gate_for(FakeSignoffApi()).request(ToolCall("ls", {}))
    assert body["signals"] == {"model_confidence": 0.0, "observability_alignment": 0.0, "historical_success": 0.0}
    assert body["risk"] == {"blast_radius_pct": 0.0, "rollback_available": False}


# -- the decorator, sync ------------------------------------------------------------------------


def test_an_approved_call_runs_once_and_reports_its_outcome() -> None:
    api = FakeSignoffApi(decide=approve_by("bob@example.com"))
    runs: list[tuple[str, float]] = []

    @require_signoff(gate_for(api), confidence=0.9)
    def refund(order: str, amount: float = 5.0) -> str:
        runs.append((order, amount))
        return "refunded"

    assert refund("o-1") == "refunded"
    assert runs == [("o-1", 5.0)]
    (cp,) = api.checkpoints.values()
    assert cp["request"]["tool_call"]["arguments_digest"] == digest({"order": "o-1", "amount": 5.0})
    assert api.outcomes == [(cp["id"], "success", None)]


def test_a_denied_call_never_runs_and_the_agent_gets_the_reason() -> None:
    api = FakeSignoffApi(decide=lambda cp: ("DENIED", "carol@example.com", "not during the freeze"))
    runs: list[str] = []

    @require_signoff(gate_for(api))
    def drop_table(name: str) -> None:
        runs.append(name)

    with pytest.raises(Denied) as denied:
        drop_table("orders")
    assert runs == [] and api.outcomes == []
    assert denied.value.reason == "not during the freeze" and denied.value.decided_by == "carol@example.com"
    assert "denied the call to drop_table by carol@example.com: not during the freeze" in denied.value.for_agent()


@pytest.mark.parametrize(("status", "error"), [("EXPIRED", Expired), ("CANCELLED", Cancelled)])
def test_an_undecided_call_raises_its_own_error(status: str, error: type[NotApproved]) -> None:
    api = FakeSignoffApi(decide=lambda cp: (status, "timeout", "nobody answered"))
    tool = require_signoff(gate_for(api), "restart")(lambda: "ran")
    with pytest.raises(error):
        tool()


def test_changed_arguments_need_a_new_approval() -> None:
    approved: list[str] = []

    def decide(cp: dict[str, Any]) -> tuple[str, str, str]:
        if '"o-1"' in cp["request"]["tool_call"]["arguments_summary"]:
            approved.append(cp["id"])
            return ("APPROVED", "bob@example.com", "ok")
        return ("DENIED", "bob@example.com", "only o-1 was agreed")

    api = FakeSignoffApi(decide=decide)

    @require_signoff(gate_for(api))
    def refund(order: str) -> str:
        return order

    assert refund("o-1") == "o-1"
    with pytest.raises(Denied):
        refund("o-2")
    assert len(api.checkpoints) == 2 and len(approved) == 1


def test_arguments_mutated_while_waiting_are_not_covered_by_the_approval() -> None:
    items = ["a"]

    def decide(cp: dict[str, Any]) -> tuple[str, str, str]:
        items.append("b")  # something else changes the list while a person approves
        return ("APPROVED", "bob@example.com", "ok")

    api = FakeSignoffApi(decide=decide)
    runs: list[list[str]] = []
    tool = require_signoff(gate_for(api), "delete")(lambda items: runs.append(items))
    with pytest.raises(ArgumentsChanged):
        tool(items)
    assert runs == []


def test_an_approval_for_other_arguments_is_no_approval() -> None:
    api = FakeSignoffApi(decide=approve_by("bob"))
    real_create = api.create

    def tampered(request: dict[str, Any], key: str) -> tuple[int, dict[str, Any]]:
        request = json.loads(json.dumps(request))
        request["tool_call"]["arguments_digest"] = digest({"x": 1})
        return real_create(request, key)

    api.create = tampered  # type: ignore[method-assign]
    with pytest.raises(ArgumentsChanged):
        require_signoff(gate_for(api), "t")(lambda x: x)(2)


def test_a_soft_gate_runs_after_its_window_and_the_gate_never_decides_itself() -> None:
    # Signoff approves a soft gate when its veto window closes (fail-open): the SDK only waits.
    windows = iter([None, None, ("APPROVED", "timeout", "veto window passed")])
    api = FakeSignoffApi(gate="soft", decide=lambda cp: next(windows))
    assert require_signoff(gate_for(api), "restart")(lambda: "ran")() == "ran"
    assert api.elapsed > 0


def test_an_agent_that_stops_waiting_withdraws_its_checkpoint() -> None:
    api = FakeSignoffApi()  # nobody ever answers
    with pytest.raises(NotDecided) as stopped:
        require_signoff(gate_for(api, timeout=60), "restart")(lambda: "ran")()
    assert api.cancelled == [stopped.value.checkpoint_id] and api.elapsed == 60


def test_by_default_it_waits_until_the_checkpoint_deadline_and_a_grace() -> None:
    api = FakeSignoffApi()
    with pytest.raises(NotDecided):
        require_signoff(gate_for(api), "restart")(lambda: "ran")()
    assert api.elapsed == 600 + 300  # the fake's 10-minute deadline, then the grace


def test_an_auto_gate_runs_at_once() -> None:
    api = FakeSignoffApi(gate="auto")
    assert require_signoff(gate_for(api), "ls")(lambda path: path)("/tmp") == "/tmp"
    assert api.elapsed == 0


def test_a_failing_tool_reports_a_failure_and_raises() -> None:
    api = FakeSignoffApi(gate="auto")

    def broken() -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        require_signoff(gate_for(api), "write")(broken)()
    assert [o[1:] for o in api.outcomes] == [("failure", "RuntimeError")]


def test_a_method_is_bound_without_self() -> None:
    api = FakeSignoffApi(gate="auto")

    class Tools:
        @require_signoff(gate_for(api), exclude=("ctx",))
        def close(self, ticket: str, ctx: object = None) -> str:
            return ticket

    assert Tools().close("T-1", ctx=object()) == "T-1"
    (cp,) = api.checkpoints.values()
    assert cp["request"]["tool_call"]["arguments_digest"] == digest({"ticket": "T-1"})


def test_the_same_tool_call_id_finds_the_same_checkpoint() -> None:
    api = FakeSignoffApi(gate="auto")
    tool = require_signoff(gate_for(api), "ls", call_id="call_7")(lambda: None)
    tool()
    tool()
    assert len(api.checkpoints) == 1


# -- context managers and async -----------------------------------------------------------------


def test_the_context_manager_runs_its_body_only_when_approved() -> None:
    api = FakeSignoffApi(decide=approve_by("bob"), conditions={"canary_percent": 5})
    with require_signoff(gate_for(api), "scale", arguments={"replicas": 3}) as approval:
        assert approval.conditions == {"canary_percent": 5} and approval.decided_by == "bob"
        approval.check({"replicas": 3})
        with pytest.raises(ArgumentsChanged):
            approval.check({"replicas": 30})
    assert [o[1] for o in api.outcomes] == ["success"]

    denied = FakeSignoffApi(decide=lambda cp: ("DENIED", "carol", "no"))
    ran = False
    with pytest.raises(Denied), require_signoff(gate_for(denied), "scale", arguments={"replicas": 3}):
        ran = True
    assert not ran


def test_async_tools_and_context_managers_wait_without_blocking() -> None:
    api = FakeSignoffApi(decide=approve_by("bob"))
    gate = gate_for(api)

    @require_signoff(gate)
    async def send(to: str) -> str:
        await asyncio.sleep(0)
        return f"sent to {to}"

    async def scenario() -> list[str]:
        results = [await send("ops")]
        async with require_signoff(gate, "page", arguments={"who": "oncall"}) as approval:
            results.append(approval.tool)
        return results

    assert asyncio.run(scenario()) == ["sent to ops", "page"]
    assert len(api.outcomes) == 2

    denied = FakeSignoffApi(decide=lambda cp: ("DENIED", "carol", "no"))
    with pytest.raises(Denied):
        asyncio.run(require_signoff(gate_for(denied))(send.__wrapped__)("ops"))  # type: ignore[attr-defined]


def test_a_cancelled_async_wait_withdraws_the_checkpoint() -> None:
    api = FakeSignoffApi()
    gate = gate_for(api)

    async def scenario() -> None:
        started = asyncio.Event()

        async def waiting(seconds: float) -> None:
            started.set()
            await asyncio.Event().wait()  # forever: until cancelled

        gate._async_sleep = waiting
        task = asyncio.create_task(gate.ask_async(ToolCall("t", {})))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert len(api.cancelled) == 1


def test_the_context_manager_needs_a_tool_and_arguments() -> None:
    with pytest.raises(TypeError, match="tool's name and its arguments"), require_signoff(gate_for(FakeSignoffApi())):
        pass

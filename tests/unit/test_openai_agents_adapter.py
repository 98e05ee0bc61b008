"""The OpenAI Agents SDK adapter, against the real library with a scripted model (no network): the
model calls a gated tool; Signoff (an in-memory API) approves or denies; the run resumes from its
interruption and the tool runs, or the model reads Signoff's reason as the tool's result."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, ModelResponse, RunConfig, function_tool
from agents.items import TResponseInputItem
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from signoff.agents import AgentGate, digest
from signoff.agents.openai_agents import needs_approval, run
from signoff.testing.signoff_api import FakeSignoffApi

pytestmark = pytest.mark.unit


class ScriptedModel(Model):
    """First turn: call `refund` with the given arguments; then say what the tool answered."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments
        self.seen: list[Any] = []

    async def get_response(
        self, system_instructions: Any, input: str | list[TResponseInputItem], *args: Any, **kwargs: Any
    ) -> ModelResponse:
        self.seen.append(input)
        outputs = (
            [i for i in input if isinstance(i, dict) and i.get("type") == "function_call_output"]
            if isinstance(input, list)
            else []
        )
        if outputs:
            text = f"tool said: {outputs[-1]['output']}"
            message = ResponseOutputMessage(
                id="msg_1",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text=text, annotations=[])],
            )
            return ModelResponse(output=[message], usage=Usage(), response_id=None)
        call = ResponseFunctionToolCall(
            id="fc_1", type="function_call", call_id="call_1", name="refund", arguments=json.dumps(self.arguments)
        )
        return ModelResponse(output=[call], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


def scenario(api: FakeSignoffApi, arguments: dict[str, Any]) -> tuple[str, list[str]]:
    gate = AgentGate(
        api,
        agent="billing-agent",
        environment="production",
        service="billing",
        framework="openai-agents",
        sleep=api.sleep,
        async_sleep=api.asleep,
        clock=api.clock,
        now=api.now,
    )
    runs: list[str] = []

    def refund(order: str, cents: int) -> str:
        """Refund part of an order."""
        runs.append(f"{order}:{cents}")
        return f"refunded {cents} on {order}"

    tool = function_tool(refund, needs_approval=needs_approval(gate, "refund"))
    agent = Agent(name="billing", instructions="refund when asked", tools=[tool], model=ScriptedModel(arguments))
    # No tracing: it would export to OpenAI (and the test may not reach the network).
    result = asyncio.run(run(agent, "refund o-1", gate, run_config=RunConfig(tracing_disabled=True)))
    return str(result.final_output), runs


def test_an_approved_call_resumes_the_run_and_the_tool_runs_once() -> None:
    api = FakeSignoffApi(decide=lambda cp: ("APPROVED", "grace@example.com", "ok"))
    output, runs = scenario(api, {"order": "o-1", "cents": 1250})
    assert runs == ["o-1:1250"] and output == "tool said: refunded 1250 on o-1"
    (cp,) = api.checkpoints.values()
    assert cp["request"]["tool_call"]["arguments_digest"] == digest({"order": "o-1", "cents": 1250})
    assert cp["request"]["tool_call"]["framework"] == "openai-agents" and cp["request"]["request_id"] == "openai-call_1"


def test_a_denied_call_never_runs_and_the_model_reads_the_reason() -> None:
    api = FakeSignoffApi(decide=lambda cp: ("DENIED", "grace@example.com", "refunds over 10 EUR need a ticket"))
    output, runs = scenario(api, {"order": "o-1", "cents": 1250})
    assert runs == [] and "refunds over 10 EUR need a ticket" in output and len(api.checkpoints) == 1


def test_an_auto_approved_call_does_not_interrupt_the_run() -> None:
    api = FakeSignoffApi(gate="auto")
    output, runs = scenario(api, {"order": "o-1", "cents": 5})
    assert runs == ["o-1:5"] and output == "tool said: refunded 5 on o-1" and api.elapsed == 0

"""The LangChain/LangGraph middleware, against the real libraries with a scripted chat model (no
network): the model calls tools; gated ones wait for Signoff (an in-memory API) and run only when
approved; a refusal reaches the model as the tool's result; ungated tools run as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import tool

from signoff.agents import AgentGate, digest
from signoff.agents.langchain_middleware import SignoffMiddleware
from signoff.testing.signoff_api import FakeSignoffApi

pytestmark = pytest.mark.unit


class ToolCallingFake(GenericFakeChatModel):
    """A scripted chat model that accepts tools (the agent binds them) and ignores them."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:
        return self


def script(*calls: tuple[str, dict[str, Any]]) -> Iterator[BaseMessage]:
    yield AIMessage(
        content="", tool_calls=[{"name": n, "args": a, "id": f"call_{i}"} for i, (n, a) in enumerate(calls)]
    )
    yield AIMessage(content="done")


def agent_with(api: FakeSignoffApi, runs: list[str], *calls: tuple[str, dict[str, Any]]) -> Any:
    gate = AgentGate(
        api, agent="ops-agent", environment="production", service="checkout", framework="langgraph",
        sleep=api.sleep, async_sleep=api.asleep, clock=api.clock, now=api.now,
    )  # fmt: skip

    @tool
    def restart(service: str) -> str:
        """Restart a service."""
        runs.append(f"restart {service}")
        return f"restarted {service}"

    @tool
    def status(service: str) -> str:
        """Read a service's status."""
        runs.append(f"status {service}")
        return "healthy"

    middleware = SignoffMiddleware(gate, tools={"restart"}, risk={"restart": {"blast_radius_pct": 40}})
    return create_agent(ToolCallingFake(messages=script(*calls)), tools=[restart, status], middleware=[middleware])


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def test_an_approved_call_runs_once_and_an_ungated_one_runs_as_before() -> None:
    api = FakeSignoffApi(decide=lambda cp: ("APPROVED", "grace@example.com", "ok"))
    runs: list[str] = []
    agent = agent_with(api, runs, ("restart", {"service": "checkout"}), ("status", {"service": "checkout"}))
    result = agent.invoke({"messages": [{"role": "user", "content": "restart checkout"}]})
    assert sorted(runs) == ["restart checkout", "status checkout"]
    assert sorted(m.content for m in tool_messages(result)) == ["healthy", "restarted checkout"]
    (cp,) = api.checkpoints.values()  # only the gated tool asked
    request = cp["request"]
    assert request["tool_call"]["arguments_digest"] == digest({"service": "checkout"})
    assert request["risk"]["blast_radius_pct"] == 40 and request["request_id"] == "langchain-call_0"
    assert api.outcomes == [(cp["id"], "success", None)]


def test_a_denied_call_never_runs_and_the_model_reads_the_reason() -> None:
    api = FakeSignoffApi(decide=lambda cp: ("DENIED", "grace@example.com", "a release is in progress"))
    runs: list[str] = []
    agent = agent_with(api, runs, ("restart", {"service": "checkout"}))
    result = agent.invoke({"messages": [{"role": "user", "content": "restart checkout"}]})
    (message,) = tool_messages(result)
    assert runs == [] and message.status == "error" and "a release is in progress" in str(message.content)
    assert result["messages"][-1].content == "done"


def test_the_async_path_waits_without_blocking_and_gates_the_same_way() -> None:
    api = FakeSignoffApi(decide=lambda cp: ("DENIED", "grace@example.com", "not now"))
    runs: list[str] = []
    agent = agent_with(api, runs, ("restart", {"service": "checkout"}))
    result = asyncio.run(agent.ainvoke({"messages": [{"role": "user", "content": "restart checkout"}]}))
    assert runs == [] and "not now" in str(tool_messages(result)[0].content)

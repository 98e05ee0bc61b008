"""Signoff for LangChain agents on LangGraph (the `agents-langchain` extra): a middleware that asks
Signoff, instead of a person at the terminal, before the agent's tools run.

    agent = create_agent(model, tools=[refund, lookup], middleware=[SignoffMiddleware(gate, tools={"refund"})])

Each gated call becomes a checkpoint bound to the digest of its arguments (keyed by the model's
tool-call id, so a resumed graph finds the same checkpoint) and waits with the gate's semantics.
Approved, the tool runs; refused, it never runs and the model reads Signoff's reason as the tool's
result (an error `ToolMessage`), so it can tell the user or try something else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import ToolMessage
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.types import Command

from signoff.agents.errors import NotApproved
from signoff.agents.gate import AgentGate, ToolCall

Result = ToolMessage | Command[Any]


class SignoffMiddleware(AgentMiddleware):
    """Gate the agent's tool calls: those named in `tools` (all when None), with per-tool risk facts."""

    def __init__(
        self,
        gate: AgentGate,
        tools: Collection[str] | None = None,
        risk: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self.gate = gate
        self.gated = None if tools is None else frozenset(tools)  # (`tools` is the middleware's own tools)
        self.risk = dict(risk or {})

    def _call(self, request: ToolCallRequest) -> ToolCall | None:
        name = str(request.tool_call["name"])
        if self.gated is not None and name not in self.gated:
            return None
        call_id = request.tool_call.get("id")
        return ToolCall(
            tool=name,
            arguments=dict(request.tool_call["args"]),
            risk=self.risk.get(name, {}),
            call_id=f"langchain-{call_id}" if call_id else None,
        )

    @staticmethod
    def _refused(request: ToolCallRequest, refused: NotApproved) -> ToolMessage:
        return ToolMessage(
            content=refused.for_agent(),
            tool_call_id=str(request.tool_call.get("id") or ""),
            name=str(request.tool_call["name"]),
            status="error",
        )

    @staticmethod
    def _failed(result: Result) -> BaseException | None:
        return RuntimeError("tool error") if isinstance(result, ToolMessage) and result.status == "error" else None

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Result]) -> Result:
        call = self._call(request)
        if call is None:
            return handler(request)
        try:
            approval = self.gate.ask(call)
        except NotApproved as refused:
            return self._refused(request, refused)
        result = handler(request)
        self.gate.report(approval, self._failed(result))
        return result

    async def awrap_tool_call(
        self, request: ToolCallRequest, handler: Callable[[ToolCallRequest], Awaitable[Result]]
    ) -> Result:
        call = self._call(request)
        if call is None:
            return await handler(request)
        try:
            approval = await self.gate.ask_async(call)
        except NotApproved as refused:
            return self._refused(request, refused)
        result = await handler(request)
        await self.gate.report_async(approval, self._failed(result))
        return result

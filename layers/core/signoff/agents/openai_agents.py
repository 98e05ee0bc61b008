"""Signoff for the OpenAI Agents SDK (the `agents-openai` extra): the SDK's own human-in-the-loop
points, answered by Signoff instead of a person at the terminal.

- `needs_approval(gate)`: the `needs_approval` callable of a function tool. It opens the call's
  checkpoint (bound to the digest of the parsed arguments, keyed by the model's call id): an auto
  gate approves at once and the tool runs without interrupting the run; any other gate interrupts.
- `resolve(result, gate)`: for each interruption of a run, wait for Signoff's decision on that
  call's checkpoint (the same one: same call id, same arguments) and approve it, or reject it with
  Signoff's reason as the message the model reads. `run(agent, input, gate)` loops until the run
  finishes.

    refund = function_tool(refund_order, needs_approval=needs_approval(gate))
    result = await run(Agent(name="billing", tools=[refund]), "refund order o-1", gate)
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from agents import Agent, RunContextWrapper, Runner, RunResult, ToolApprovalItem
from agents.run_state import RunState

from signoff.agents.errors import NotApproved
from signoff.agents.gate import AgentGate, ToolCall

ApprovalPolicy = Callable[[RunContextWrapper[Any], dict[str, Any], str], Awaitable[bool]]
MAX_TURNS_OF_INTERRUPTIONS = 20


def _call(tool: str, arguments: dict[str, Any], call_id: str) -> ToolCall:
    return ToolCall(tool=tool, arguments=arguments, call_id=f"openai-{call_id}")


def needs_approval(gate: AgentGate, tool: str) -> ApprovalPolicy:
    """`needs_approval` for the function tool named `tool`: False only when Signoff approved the call
    at once (an auto gate)."""

    async def policy(context: RunContextWrapper[Any], arguments: dict[str, Any], call_id: str) -> bool:
        _, cp = await asyncio.to_thread(gate.open, _call(tool, arguments, call_id))
        return cp.get("status") != "APPROVED"

    return policy


def _arguments(item: ToolApprovalItem) -> tuple[str, dict[str, Any], str]:
    raw = item.raw_item
    get = raw.get if isinstance(raw, dict) else lambda key: getattr(raw, key, None)
    text = get("arguments") or "{}"
    arguments = json.loads(text) if isinstance(text, str) else dict(text)
    return str(item.tool_name or get("name")), arguments, str(get("call_id"))


async def resolve(result: RunResult, gate: AgentGate) -> RunState[Any]:
    """The run's state with every pending interruption approved or rejected as Signoff decided."""
    state = result.to_state()
    for item in result.interruptions:
        tool, arguments, call_id = _arguments(item)
        try:
            await gate.ask_async(_call(tool, arguments, call_id))
        except NotApproved as refused:
            state.reject(item, rejection_message=refused.for_agent())
        else:
            state.approve(item)
    return state


async def run(agent: Agent[Any], input: str, gate: AgentGate, **kwargs: Any) -> RunResult:
    """`Runner.run`, with Signoff deciding every interruption, until the run ends."""
    result = await Runner.run(agent, input, **kwargs)
    for _ in range(MAX_TURNS_OF_INTERRUPTIONS):
        if not result.interruptions:
            return result
        result = await Runner.run(agent, await resolve(result, gate), **kwargs)
    raise RuntimeError(f"the run was still interrupted after {MAX_TURNS_OF_INTERRUPTIONS} rounds of approvals")

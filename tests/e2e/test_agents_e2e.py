"""AI agents' tool calls end to end on the local stack: the agent SDK (`require_signoff`) asks the
API, the approval state machine runs on moto's interpreter, people click signed Slack buttons, and
the tool runs once approved, never when denied or vetoed, and only for the arguments approved.

The agent waits in a worker thread, as an agent process would, while the test clicks. Gates (the
fast test policy): an agent call with no evidence in staging scores low -> hard 'review' (1
approver, minutes); a confident staging call -> soft 'veto-10m' (a test vetoes it); a confident
production call -> soft 'veto-5s' (fail-open: it runs when the window passes)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from signoff.agents import AgentGate, Denied, digest, require_signoff
from signoff.tools.client import SignoffClient
from tests.e2e.conftest import LocalSignoff, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

APPROVER = "grace@example.com"
# The soft sample's evidence: 79/100 with every check passing (medium band for low and medium risk).
SOFT_SIGNALS = {"model_confidence": 0.7, "observability_alignment": 0.6, "historical_success": 0.9}
CHECKS = {"dry-run": True, "policy-lint": True}


@pytest.fixture
def agent() -> str:
    return f"agent-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=2) as executor:
        yield executor


def gate(signoff: LocalSignoff, agent: str, environment: str = "staging", **kwargs: Any) -> AgentGate:
    return AgentGate(
        SignoffClient(signoff.url, sign=False),
        agent=agent,
        display_name="Cleanup agent",
        environment=environment,
        service="checkout",
        conversation_url="https://agents.example.com/runs/e2e",
        poll=0.2,
        **kwargs,
    )


def pending_call(
    signoff: LocalSignoff, agent: str, arguments: dict[str, Any], agent_call: Future[Any] | asyncio.Task[Any]
) -> dict[str, Any]:
    """The pending checkpoint this agent made for these exact arguments, once its card is posted."""
    wanted = digest(arguments)

    def find() -> dict[str, Any] | None:
        if agent_call.done():  # the agent stopped early: say why
            raise AssertionError(f"the agent's call ended before a decision: {agent_call.result()!r}")
        for cp in signoff.call("GET", "/v1/checkpoints?status=pending&limit=100").body["items"]:
            tool_call = cp["request"].get("tool_call") or {}
            if cp["request"]["requester"]["id"] == agent and tool_call.get("arguments_digest") == wanted:
                return cp if signoff.cards(cp["id"]) else None
        return None

    found: dict[str, Any] = eventually(find)
    return found


def deny(signoff: LocalSignoff, checkpoint_id: str, action: str, reason: str) -> None:
    clicked = signoff.act(APPROVER, checkpoint_id, action)
    if clicked["views"]:  # a reason is asked for
        signoff.submit(APPROVER, clicked["views"][0], reason)


def outcome(future: Future[Any]) -> Any:
    return future.result(timeout=600)


def test_a_hard_gated_call_waits_for_a_click_runs_once_and_new_arguments_need_a_new_approval(
    signoff: LocalSignoff, agent: str, pool: ThreadPoolExecutor
) -> None:
    runs: list[tuple[str, int]] = []

    @require_signoff(gate(signoff, agent), rationale="duplicate charge reported by the customer")
    def refund(order: str, cents: int) -> str:
        runs.append((order, cents))
        return f"refunded {cents} on {order}"

    # Given the agent calls a hard-gated tool: it waits, and nothing has run
    first = pool.submit(refund, "o-1", 1250)
    cp = pending_call(signoff, agent, {"order": "o-1", "cents": 1250}, first)
    assert cp["assessment"]["gate"]["kind"] == "hard" and runs == []
    # The card shows the tool, the agent, the arguments and their digest, and the conversation
    card = str(signoff.cards(cp["id"])[0]["blocks"])
    assert "refund" in card and "Cleanup agent" in card and digest({"order": "o-1", "cents": 1250}) in card
    assert "agents.example.com/runs/e2e" in card
    # When an approver approves with a signed click / Then the tool runs, once
    signoff.approve(APPROVER, cp["id"])
    assert outcome(first) == "refunded 1250 on o-1"
    assert runs == [("o-1", 1250)]
    # And the trail records the digest with the decision, and the outcome the SDK reported
    events = signoff.events(cp["id"])
    decided = next(e for e in events if e["type"] == "decided")
    assert decided["data"]["arguments_digest"] == digest({"order": "o-1", "cents": 1250})
    assert eventually(lambda: signoff.checkpoint(cp["id"]).get("outcome"))["outcome"] == "success"

    # When the agent calls again with changed arguments / Then that needs its own approval
    second = pool.submit(refund, "o-1", 9900)
    again = pending_call(signoff, agent, {"order": "o-1", "cents": 9900}, second)
    assert again["id"] != cp["id"] and runs == [("o-1", 1250)]
    # And a denial stops it: the tool never runs and the agent gets the reason
    deny(signoff, again["id"], "deny", "only 12.50 was agreed")
    with pytest.raises(Denied) as denied:
        outcome(second)
    assert denied.value.reason is not None and "only 12.50 was agreed" in denied.value.reason
    assert denied.value.decided_by and "only 12.50 was agreed" in denied.value.for_agent()
    assert runs == [("o-1", 1250)]


def test_a_soft_gated_call_runs_after_its_veto_window(
    signoff: LocalSignoff, agent: str, pool: ThreadPoolExecutor
) -> None:
    runs: list[str] = []
    prod = gate(signoff, agent, "production", signals=SOFT_SIGNALS, risk={"rollback_available": True})

    @require_signoff(prod, validations=CHECKS)
    def restart(pool_name: str) -> str:
        runs.append(pool_name)
        return "restarted"

    call = pool.submit(restart, "checkout-workers")
    cp = pending_call(signoff, agent, {"pool_name": "checkout-workers"}, call)
    assert (cp["assessment"]["gate"]["kind"], cp["assessment"]["gate"]["profile"]) == ("soft", "veto-5s")
    # Nobody vetoes: when the window passes Signoff approves it, and the tool runs
    assert outcome(call) == "restarted" and runs == ["checkout-workers"]
    assert signoff.checkpoint(cp["id"])["status"] == "APPROVED"


def test_a_veto_stops_a_soft_gated_call(signoff: LocalSignoff, agent: str, pool: ThreadPoolExecutor) -> None:
    runs: list[str] = []
    staging = gate(signoff, agent, signals=SOFT_SIGNALS, risk={"rollback_available": True, "blast_radius_pct": 10})
    restart: Callable[[str], str] = require_signoff(staging, "restart", validations=CHECKS)(
        lambda pool_name: runs.append(pool_name) or "restarted"
    )
    call = pool.submit(restart, "checkout-workers")
    cp = pending_call(signoff, agent, {"pool_name": "checkout-workers"}, call)
    assert (cp["assessment"]["gate"]["kind"], cp["assessment"]["gate"]["profile"]) == ("soft", "veto-10m")
    deny(signoff, cp["id"], "veto", "a release is in progress")
    with pytest.raises(Denied):
        outcome(call)
    assert runs == []


# -- the MCP gateway -------------------------------------------------------------------------------


def test_the_mcp_gateway_gates_a_destructive_tool_and_passes_a_read_only_one(signoff: LocalSignoff, agent: str) -> None:
    from mcp import Client, types
    from mcp.server.mcpserver import MCPServer

    from signoff.agents.mcp_gateway import Gateway

    calls: list[str] = []
    files = MCPServer("files")

    @files.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
    def read_file(path: str) -> str:
        calls.append(f"read {path}")
        return f"contents of {path}"

    @files.tool(annotations=types.ToolAnnotations(destructiveHint=True))
    def delete_file(path: str) -> str:
        calls.append(f"delete {path}")
        return f"deleted {path}"

    def said(result: types.CallToolResult) -> str:
        return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))

    async def scenario() -> None:
        gateway_gate = gate(signoff, agent, framework="mcp-gateway")
        async with Client(files) as upstream, Client(Gateway(upstream, gateway_gate).server()) as client:
            # A read-only tool passes straight through: no checkpoint
            read = await client.call_tool("read_file", {"path": "/srv/app.log"})
            assert said(read) == "contents of /srv/app.log" and calls == ["read /srv/app.log"]
            # A destructive one waits for Signoff; approved by a signed click, it runs once
            deleting = asyncio.create_task(client.call_tool("delete_file", {"path": "/srv/old.log"}))
            cp = await asyncio.to_thread(pending_call, signoff, agent, {"path": "/srv/old.log"}, deleting)
            assert cp["request"]["risk"]["rollback_available"] is False
            assert cp["request"]["tool_call"]["framework"] == "mcp-gateway"
            await asyncio.to_thread(signoff.approve, APPROVER, cp["id"])
            assert said(await deleting) == "deleted /srv/old.log"
            # Denied, it never runs and the agent reads why
            denying = asyncio.create_task(client.call_tool("delete_file", {"path": "/srv/audit.log"}))
            cp2 = await asyncio.to_thread(pending_call, signoff, agent, {"path": "/srv/audit.log"}, denying)
            await asyncio.to_thread(deny, signoff, cp2["id"], "deny", "audit logs are kept for a year")
            refused = await denying
            assert refused.is_error and "audit logs are kept for a year" in said(refused)
        assert calls == ["read /srv/app.log", "delete /srv/old.log"]
        events = signoff.events(cp["id"])
        decided = next(e for e in events if e["type"] == "decided")
        assert decided["data"]["arguments_digest"] == digest({"path": "/srv/old.log"})

    asyncio.run(scenario())

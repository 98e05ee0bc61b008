"""The MCP gateway against the real `mcp` SDK, in process: an MCP client lists and calls the tools of
a fronted MCP server through the gateway, which passes read-only tools, asks Signoff (an in-memory
API here; the local stack in tests/e2e/test_agents_e2e.py) for the others, and never forwards what
a rule denies or a person refused."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types
from mcp.server.mcpserver import MCPServer

from signoff.agents import AgentGate, digest
from signoff.agents.mcp_gateway import Gateway, Rule, ToolRules, destructive, risk_facts
from signoff.testing.signoff_api import FakeSignoffApi

pytestmark = pytest.mark.unit


def fronted(calls: list[str]) -> MCPServer:
    server = MCPServer("files")

    @server.tool(annotations=types.ToolAnnotations(readOnlyHint=True))
    def read_file(path: str) -> str:
        calls.append(f"read {path}")
        return f"contents of {path}"

    @server.tool(annotations=types.ToolAnnotations(destructiveHint=True))
    def delete_file(path: str) -> str:
        calls.append(f"delete {path}")
        return f"deleted {path}"

    @server.tool(annotations=types.ToolAnnotations(destructiveHint=False, idempotentHint=True))
    def touch(path: str) -> str:
        calls.append(f"touch {path}")
        return f"touched {path}"

    @server.tool()
    def wipe_disk() -> str:
        calls.append("wipe")
        return "wiped"

    return server


def run(api: FakeSignoffApi, rules: ToolRules, scenario: Callable[[Client], Awaitable[Any]], calls: list[str]) -> Any:
    gate = AgentGate(
        api,
        agent="files-agent",
        environment="production",
        service="files",
        framework="mcp-gateway",
        sleep=api.sleep,
        async_sleep=api.asleep,
        clock=api.clock,
        now=api.now,
    )

    async def main() -> Any:
        async with Client(fronted(calls)) as upstream, Client(Gateway(upstream, gate, rules).server()) as agent:
            return await scenario(agent)

    return asyncio.run(main())


RULES = ToolRules(rules={"wipe_disk": Rule.DENY}, risk={"delete_file": {"blast_radius_pct": 30}})


def text(result: types.CallToolResult) -> str:
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


def test_the_gateway_lists_the_fronted_tools_without_the_denied_ones() -> None:
    calls: list[str] = []

    async def scenario(agent: Client) -> list[str]:
        return [t.name for t in (await agent.list_tools()).tools]

    assert sorted(run(FakeSignoffApi(), RULES, scenario, calls)) == ["delete_file", "read_file", "touch"]


def test_a_read_only_tool_passes_without_a_checkpoint() -> None:
    calls: list[str] = []
    api = FakeSignoffApi()

    async def scenario(agent: Client) -> types.CallToolResult:
        return await agent.call_tool("read_file", {"path": "/etc/motd"})

    result = run(api, RULES, scenario, calls)
    assert not result.is_error and text(result) == "contents of /etc/motd"
    assert calls == ["read /etc/motd"] and api.checkpoints == {}


def test_a_destructive_tool_runs_only_once_signoff_approves() -> None:
    calls: list[str] = []
    api = FakeSignoffApi(decide=lambda cp: ("APPROVED", "grace@example.com", "ok"))

    async def scenario(agent: Client) -> types.CallToolResult:
        return await agent.call_tool("delete_file", {"path": "/tmp/old.log"})

    result = run(api, RULES, scenario, calls)
    assert text(result) == "deleted /tmp/old.log" and calls == ["delete /tmp/old.log"]
    (cp,) = api.checkpoints.values()
    request = cp["request"]
    assert request["tool_call"]["tool"] == "delete_file" and request["tool_call"]["framework"] == "mcp-gateway"
    assert request["tool_call"]["arguments_digest"] == digest({"path": "/tmp/old.log"})
    assert request["risk"]["rollback_available"] is False and request["risk"]["blast_radius_pct"] == 30
    assert "destructive" in request["summary"]
    assert api.outcomes == [(cp["id"], "success", None)]


def test_a_refused_call_is_never_forwarded_and_the_agent_reads_why() -> None:
    calls: list[str] = []
    api = FakeSignoffApi(decide=lambda cp: ("DENIED", "grace@example.com", "logs are evidence in an incident"))

    async def scenario(agent: Client) -> list[types.CallToolResult]:
        return [
            await agent.call_tool("delete_file", {"path": "/var/log/app.log"}),
            await agent.call_tool("wipe_disk", {}),
            await agent.call_tool("no_such_tool", {}),
        ]

    denied, ruled_out, unknown = run(api, RULES, scenario, calls)
    assert denied.is_error and "denied the call to delete_file by grace@example.com" in text(denied)
    assert "logs are evidence in an incident" in text(denied)
    assert ruled_out.is_error and text(ruled_out) == "the gateway's rules deny wipe_disk"
    assert unknown.is_error and "unknown tool" in text(unknown)
    assert calls == [] and len(api.checkpoints) == 1


def test_annotations_feed_the_rules_and_the_risk_facts(tmp_path: Path) -> None:
    def tool(**hints: Any) -> types.Tool:
        return types.Tool(name="t", input_schema={"type": "object"}, annotations=types.ToolAnnotations(**hints))

    assert destructive(tool()) and destructive(tool(destructiveHint=True))
    assert not destructive(tool(destructiveHint=False)) and not destructive(tool(readOnlyHint=True))
    assert risk_facts(tool()) == {"rollback_available": False}
    assert ToolRules().rule(tool(readOnlyHint=True)) is Rule.ALLOW and ToolRules().rule(tool()) is Rule.ASK
    rules = tmp_path / "rules.yaml"
    rules.write_text("default: ask\ntools: {t: deny}\nrisk: {t: {blast_radius_pct: 5}}\n")
    loaded = ToolRules.from_yaml(rules)
    assert loaded.rule(tool()) is Rule.DENY and loaded.default is Rule.ASK and loaded.risk["t"]["blast_radius_pct"] == 5
    rules.write_text("tools: {t: maybe}\n")
    with pytest.raises(ValueError, match="allow, ask or deny"):
        ToolRules.from_yaml(rules)


def test_the_command_line_refuses_bad_rules_before_starting_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from signoff.agents.mcp_gateway import main

    rules = tmp_path / "rules.yaml"
    rules.write_text("tools: {delete_file: sometimes}\n")
    argv = ["--url", "http://127.0.0.1:9", "--agent", "a", "--environment", "production", "--service", "files"]
    assert main([*argv, "--rules", str(rules), "--", "never-started-server"]) == 2
    assert "allow, ask or deny" in capsys.readouterr().err

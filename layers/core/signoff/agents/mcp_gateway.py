"""An MCP gateway: an MCP server that fronts another MCP server and asks Signoff before its tools run.

The agent connects to the gateway instead of the fronted server. The gateway lists the fronted
server's tools (without those a rule denies) and gates each call by a per-tool rule:

- `allow`: passed straight through (by default, tools annotated `readOnlyHint`);
- `ask`: a Signoff checkpoint bound to the digest of the call's arguments; the call is forwarded
  only once approved (by default, every tool that is not read-only);
- `deny`: never forwarded.

Tool annotations feed the risk facts: a destructive tool (`destructiveHint`, which MCP assumes
when a tool is not read-only) cannot be rolled back. A refusal reaches the agent as a tool error
carrying Signoff's reason, so the model can tell the user why; the checkpoint's audit trail holds
the decision and the digest. Annotations are hints from the fronted server: rules name tools
explicitly where it matters.

Run it over stdio in front of a local server (needs the `mcp` extra):

    python -m signoff.agents.mcp_gateway --url https://…/live --agent files-agent \\
        --environment production --service files --rules rules.yaml -- npx some-mcp-server
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio
import yaml
from mcp import Client, StdioServerParameters, types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server

from signoff.agents.errors import NotApproved
from signoff.agents.gate import AgentGate, ToolCall


class Rule(StrEnum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True)
class ToolRules:
    """Per-tool rules (by tool name), the default for tools not named (None: from annotations), and
    per-tool risk facts added to every checkpoint of that tool."""

    rules: Mapping[str, Rule] = field(default_factory=dict)
    default: Rule | None = None
    risk: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: Path) -> ToolRules:
        """rules.yaml: `tools: {name: allow|ask|deny}`, `default: ask`, `risk: {name: {blast_radius_pct: 50}}`."""
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping with tools, default and risk")
        try:
            rules = {str(name): Rule(rule) for name, rule in (data.get("tools") or {}).items()}
            default = Rule(data["default"]) if data.get("default") else None
        except ValueError as exc:
            raise ValueError(f"{path}: {exc} (a rule is allow, ask or deny)") from None
        return cls(rules=rules, default=default, risk=dict(data.get("risk") or {}))

    def rule(self, tool: types.Tool) -> Rule:
        if tool.name in self.rules:
            return self.rules[tool.name]
        if self.default is not None:
            return self.default
        return Rule.ALLOW if read_only(tool) else Rule.ASK


def read_only(tool: types.Tool) -> bool:
    return bool(tool.annotations and tool.annotations.read_only_hint)


def destructive(tool: types.Tool) -> bool:
    """MCP's defaults: a tool that is not read-only is destructive unless it says otherwise."""
    if read_only(tool):
        return False
    hint = tool.annotations.destructive_hint if tool.annotations else None
    return hint is not False


def risk_facts(tool: types.Tool) -> dict[str, Any]:
    """What the annotations say about the risk of calling the tool."""
    return {"rollback_available": not destructive(tool)}


def _hints(tool: types.Tool) -> str:
    notes = ["destructive" if destructive(tool) else "read-only" if read_only(tool) else "not destructive"]
    if tool.annotations and tool.annotations.idempotent_hint:
        notes.append("idempotent")
    if not tool.annotations or tool.annotations.open_world_hint is not False:
        notes.append("open world")
    return ", ".join(notes)


def refusal(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


class Gateway:
    """The gateway's state: the fronted server's client, the rules, Signoff."""

    def __init__(self, upstream: Client, gate: AgentGate, rules: ToolRules | None = None) -> None:
        self.upstream = upstream
        self.gate = gate
        self.rules = rules or ToolRules()
        self._tools: dict[str, types.Tool] = {}

    async def tools(self) -> list[types.Tool]:
        """The fronted server's tools, every page, without the denied ones."""
        found: list[types.Tool] = []
        cursor: str | None = None
        while True:
            page = await self.upstream.list_tools(cursor=cursor)
            found += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        self._tools = {t.name: t for t in found}
        return [t for t in found if self.rules.rule(t) is not Rule.DENY]

    async def call(self, name: str, arguments: dict[str, Any] | None, call_id: str | None) -> types.CallToolResult:
        tool = self._tools.get(name)
        if tool is None:
            await self.tools()  # a client may call without listing first
            tool = self._tools.get(name)
        if tool is None:
            return refusal(f"unknown tool: {name}")
        rule = self.rules.rule(tool)
        if rule is Rule.DENY:
            return refusal(f"the gateway's rules deny {name}")
        if rule is Rule.ALLOW:
            return await self.upstream.call_tool(name, arguments)
        args = arguments or {}
        call = ToolCall(
            tool=name,
            arguments=args,
            risk={**risk_facts(tool), **self.rules.risk.get(name, {})},
            rationale=f"MCP tool ({_hints(tool)})" + (f": {tool.description[:300]}" if tool.description else ""),
            call_id=call_id,
        )
        try:
            approval = await self.gate.ask_async(call)
        except NotApproved as refused:
            return refusal(refused.for_agent())
        result = await self.upstream.call_tool(name, args)
        await self.gate.report_async(approval, RuntimeError("tool error") if result.is_error else None)
        return result

    def server(self, name: str = "signoff-gateway") -> Server[Any]:
        """The MCP server agents connect to."""

        async def list_tools(
            ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
        ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=await self.tools())

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
        ) -> types.CallToolResult:
            call_id = f"mcp-{ctx.request_id}" if ctx.request_id is not None else None
            return await self.call(params.name, params.arguments, call_id)

        return Server(name, on_list_tools=list_tools, on_call_tool=call_tool)


# -- command line ---------------------------------------------------------------------------------


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m signoff.agents.mcp_gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the Signoff API's URL")
    parser.add_argument("--agent", required=True, help="the agent's identity, as approvers see it")
    parser.add_argument("--environment", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--rules", type=Path, help="rules.yaml (tools: {name: allow|ask|deny}, default, risk)")
    parser.add_argument("--no-sign", dest="sign", action="store_false", default=None, help="local stack only")
    parser.add_argument("command", nargs="+", help="the fronted MCP server's command (after --)")
    return parser.parse_args(argv)


@contextlib.asynccontextmanager
async def _fronted(command: list[str]) -> AsyncIterator[Client]:
    async with Client(StdioServerParameters(command=command[0], args=command[1:])) as client:
        yield client


async def _serve(args: argparse.Namespace) -> None:
    from signoff.tools.client import SignoffClient, is_loopback_url

    sign = args.sign if args.sign is not None else not is_loopback_url(args.url)
    gate = AgentGate(
        SignoffClient(args.url, sign=sign),
        agent=args.agent,
        environment=args.environment,
        service=args.service,
        framework="mcp-gateway",
    )
    rules = ToolRules.from_yaml(args.rules) if args.rules else ToolRules()
    async with _fronted(args.command) as upstream, stdio_server() as (read, write):
        server = Gateway(upstream, gate, rules).server()
        await server.run(read, write, server.create_initialization_options())


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        anyio.run(_serve, args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Signoff for AI agents: ask before a tool call, run it only on an approval bound to its arguments.

Client side only (never in the Lambda layer): the SDK (`AgentGate`, `require_signoff`), the
framework adapters (`openai_agents`, `langchain`) and the MCP gateway (`mcp_gateway`), each of
the latter behind its optional extra."""

from signoff.agents.arguments import canonical, digest, summary
from signoff.agents.errors import ArgumentsChanged, Cancelled, Denied, Expired, NotApproved, NotDecided
from signoff.agents.gate import AgentGate, Approval, CheckpointApi, ToolCall
from signoff.agents.guard import require_signoff

__all__ = [
    "AgentGate",
    "Approval",
    "ArgumentsChanged",
    "Cancelled",
    "CheckpointApi",
    "Denied",
    "Expired",
    "NotApproved",
    "NotDecided",
    "ToolCall",
    "canonical",
    "digest",
    "require_signoff",
    "summary",
]

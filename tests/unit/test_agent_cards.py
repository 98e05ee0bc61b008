"""An AI agent's tool call on the approver's card and in the audit trail: the tool, the agent, the
redacted arguments and their digest, a link back to the conversation; both chat surfaces render
them, and the requested and decided events record the digest the approval is bound to."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from signoff.agents import digest, summary
from signoff.audit.events import EventType
from signoff.domain.acts import Act
from signoff.domain.cards import build_card
from signoff.surfaces.slack.blocks import card_blocks
from signoff.surfaces.teams.cards import adaptive_card
from tests.gates import CAROL, GRACE, Gates, actor, gates

pytestmark = pytest.mark.unit

ARGUMENTS = {"table": "orders", "where": "created < 2020", "api_token": "s3cr3t-value"}
DIGEST = digest(ARGUMENTS)
TOOL_CALL = {
    "tool": "delete_rows",
    "arguments_digest": DIGEST,
    "arguments_summary": summary(ARGUMENTS),
    "conversation_url": "https://agents.example.com/runs/42",
    "framework": "mcp-gateway",
}
AGENT = {"id": "cleanup-agent", "display_name": "Cleanup agent", "kind": "agent"}


@pytest.fixture
def g() -> Iterator[Gates]:
    wired = gates()
    yield wired
    wired.assert_chains()


def test_the_card_shows_the_tool_the_agent_the_arguments_and_their_digest(g: Gates) -> None:
    cp = g.create("hard", {"tool_call": TOOL_CALL, "requester": AGENT})
    card = build_card(cp)
    assert card.evidence[:3] == [
        "Tool: delete_rows, called by agent Cleanup agent (cleanup-agent) via mcp-gateway",
        f"Arguments: {summary(ARGUMENTS)}",
        f"Arguments digest: {DIGEST} (the approval holds for these exact arguments only)",
    ]
    assert card.links[0] == ("Agent conversation", "https://agents.example.com/runs/42")
    assert "s3cr3t-value" not in repr(card)


def test_both_surfaces_render_the_tool_call(g: Gates) -> None:
    card = build_card(g.create("hard", {"tool_call": TOOL_CALL, "requester": AGENT}))
    for rendered in (json.dumps(card_blocks(card)), json.dumps(adaptive_card(card)).replace("\\\\", "")):
        # Teams escapes markdown (delete\_rows): compare without the backslashes.
        assert DIGEST in rendered and "delete_rows" in rendered and "agents.example.com/runs/42" in rendered


def test_a_card_without_a_tool_call_is_unchanged(g: Gates) -> None:
    card = build_card(g.create("hard"))
    assert not any(line.startswith(("Tool:", "Arguments")) for line in card.evidence)
    assert all(title != "Agent conversation" for title, _ in card.links)


def test_the_trail_records_the_digest_when_asked_and_when_decided(g: Gates) -> None:
    cp = g.create("hard", {"tool_call": TOOL_CALL, "requester": AGENT})
    g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="keep the history")
    (requested,) = g.of_type(cp.id, EventType.REQUESTED)
    (decided,) = g.of_type(cp.id, EventType.DECIDED)
    assert requested.data["request"]["tool_call"]["arguments_digest"] == DIGEST
    assert decided.data["arguments_digest"] == DIGEST and decided.data["status"] == "DENIED"


def test_a_decision_without_a_tool_call_has_no_digest(g: Gates) -> None:
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(GRACE), Act.DENY, comment="no")
    (decided,) = g.of_type(cp.id, EventType.DECIDED)
    assert "arguments_digest" not in decided.data


@pytest.mark.parametrize(
    ("field", "value"),
    [("arguments_digest", "md5:abc"), ("arguments_digest", "sha256:" + "A" * 64), ("conversation_url", "ftp://x")],
)
def test_a_malformed_tool_call_is_refused(g: Gates, field: str, value: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=f"tool_call.{field}"):
        g.create("hard", {"tool_call": {**TOOL_CALL, field: value}})

"""Block Kit rendering of cards and the modals behind their buttons: every section, ids only on
buttons, Slack's limits with giant evidence, requester text escaped, outcome instead of buttons."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from signoff.domain.acts import Act, Actor
from signoff.domain.cards import build_card
from signoff.domain.models import Checkpoint
from signoff.ports import TaskToken
from signoff.surfaces.slack import blocks
from signoff.surfaces.slack.blocks import Form, card_blocks, clip, details_view, text_length
from signoff.testing.memory import FixedClock, InMemoryCheckpointRepository
from signoff.usecases.decisions import DecisionService
from tests.helpers import derived_policy
from tests.slackfakes import TASK_TOKEN, make_checkpoint, shipped_routing

pytestmark = pytest.mark.unit

ALL_ACTS = {f"signoff:{a.value}" for a in Act if a is not Act.VETO}


def _sections(rendered: list[blocks.Block]) -> list[str]:
    return [b["text"]["text"] for b in rendered if b["type"] == "section"]


def _texts(rendered: list[blocks.Block]) -> str:
    return json.dumps(rendered, ensure_ascii=False)


def _voted(cp: Checkpoint, *names_and_acts: tuple[str, Act, str | None]) -> Checkpoint:
    repo = InMemoryCheckpointRepository()
    repo.create(cp, [])
    decisions = DecisionService(repo, FixedClock(cp.created_at + timedelta(minutes=5)), None)
    routing = shipped_routing()
    for name, act, comment in names_and_acts:
        person = routing.routing.person(f"{name}@example.com")
        assert person is not None
        actor = Actor(surface="slack", handle=f"slack:T0SIGNOFF/{name}", person=person.id, name=person.name)
        result = decisions.act(
            cp.id,
            actor,
            act,
            comment=comment,
            conditions={"canary_percent": 5} if act is Act.APPROVE_WITH_CONDITIONS else None,
        )
        assert result.ok, result.message
    return repo.get(cp.id)


def test_a_hard_gate_card_shows_every_section_and_one_button_per_action() -> None:
    # Given a pending two-person checkpoint
    cp = make_checkpoint("hard")

    # When it is rendered
    rendered = card_blocks(build_card(cp))

    # Then the header, score and band, why, risk, evidence, recommendation, deadline, votes and ids show
    assert rendered[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": build_card(cp).title, "emoji": True},
    }
    text = "\n".join(_sections(rendered))
    assert "*Confidence Score: 50/100 (Manual Review Required)*" in text
    assert "*Why this score*" in text and "blast_radius -20" in text and "production_data -15" in text
    assert "High risk (rule production-migration)" in text and "rollback available (2 min)" in text
    assert "Diff: Adds orders.fulfilment_state" in text and "Tests unit: 1204 passed, 0 failed, coverage 98%" in text
    assert "<https://runbooks.example.com/service-api/migrations|Runbook>" in text
    assert "*Recommendation*\nApprove if the migration window is acceptable" in text
    assert "If no response by 13:00 UTC this request is denied automatically." in text
    assert "0 of 2 approvals: none yet" in text
    context = rendered[-1]["elements"][0]["text"]
    assert f"checkpoint `{cp.id}`" in context and "request `req-7731`" in context
    assert "workflow `release-2024-11-21`" in context and f"policy `{cp.assessment.policy_version}`" in context
    # And the buttons are the card's buttons, each carrying the checkpoint id and nothing else
    (actions,) = [b for b in rendered if b["type"] == "actions"]
    assert [e["action_id"] for e in actions["elements"]] == [f"signoff:{b.act.value}" for b in build_card(cp).buttons]
    assert {e["action_id"] for e in actions["elements"]} == ALL_ACTS
    assert {e["value"] for e in actions["elements"]} == {cp.id}


def test_a_soft_gate_card_says_when_it_runs_and_guards_the_veto() -> None:
    cp = make_checkpoint("soft")

    rendered = card_blocks(build_card(cp))

    assert ":hourglass_flowing_sand: *Runs at 12:10 UTC unless vetoed.*" in _sections(rendered)
    (actions,) = [b for b in rendered if b["type"] == "actions"]
    veto = actions["elements"][0]
    assert (
        veto["action_id"] == "signoff:veto"
        and veto["style"] == "danger"
        and veto["confirm"]["confirm"]["text"] == "Veto"
    )
    assert not any("approvals" in s for s in _sections(rendered))  # no N-of-M line on a soft gate


def test_nothing_rendered_carries_a_task_token_only_checkpoint_ids() -> None:
    # Given a checkpoint whose workflow token is stored server-side
    cp = make_checkpoint("hard")
    repo = InMemoryCheckpointRepository()
    repo.create(cp, [])
    repo.put_token(cp.id, TaskToken(token=TASK_TOKEN, phase="initial", expires_at=cp.created_at))
    card = build_card(repo.get(cp.id))

    # When the card, a notice and every modal are rendered
    rendered = [
        card_blocks(card),
        blocks.notice_blocks("Escalated", card),
        blocks.deny_view(card),
        blocks.comment_view(card),
        blocks.conditions_view(card, comment_required=True),
        blocks.info_view(card),
        details_view(repo.get(cp.id)),
    ]

    # Then no token appears anywhere, and every button value and modal metadata is the id alone
    dumped = _texts(rendered)  # type: ignore[arg-type]
    assert TASK_TOKEN not in dumped and "token" not in dumped.lower()
    assert set(re.findall(r'"value": "([^"]*)"', dumped)) == {cp.id}
    assert set(re.findall(r'"private_metadata": "([^"]*)"', dumped)) == {cp.id}


def test_giant_evidence_stays_within_slacks_limits() -> None:
    # Given a request with every field at its maximum, full of characters Slack escapes
    big = {
        "summary": "Σ<&>" * 500,
        "target": "t" * 200,
        "action": "a" * 200,
        "evidence.diff_summary": "- <removed> & + <added>\n" * 166,
        "evidence.tests": [
            {"name": f"suite-{i}-" + "x" * 100, "passed": 10**6, "failed": i, "coverage_pct": 99.5} for i in range(20)
        ],
        "evidence.links": [
            {"title": "T|>" * 60, "url": "https://example.com/" + "p" * 1500 + f"?i={i}|x"} for i in range(20)
        ],
        "evidence.recommendation": "r&" * 500,
        "risk.customer_impact": "c<" * 150,
    }
    cp = make_checkpoint("hard", big)

    # When the card and the details modal are rendered
    card = build_card(cp)
    rendered = card_blocks(card)
    details = details_view(cp)

    # Then Slack's limits hold: 50 blocks, header 150, sections 3000, context 2000, ~13k characters
    assert len(rendered) <= blocks.MAX_BLOCKS and len(details["blocks"]) <= blocks.MAX_VIEW_BLOCKS
    assert len(rendered[0]["text"]["text"]) <= blocks.MAX_HEADER and rendered[0]["text"]["text"].endswith("…")
    for block in [*rendered, *details["blocks"]]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= blocks.MAX_SECTION
        if block["type"] == "context":
            assert all(len(e["text"]) <= blocks.MAX_CONTEXT for e in block["elements"])
    assert text_length(rendered) < 12_000
    assert len(blocks.fallback_text(card)) <= 500
    # And what was cut says so, without leaving half an entity or half a link behind
    evidence = next(s for s in _sections(rendered) if s.startswith("*Evidence*"))
    assert "…" in evidence
    assert not re.search(r"&[a-z]*…|&[a-z]*$", evidence)
    assert evidence.count("<") == evidence.count(">")


def test_requester_text_cannot_ping_a_channel_or_forge_a_link() -> None:
    cp = make_checkpoint("hard", {"summary": "<!channel> see <https://evil.example|the runbook> & approve"})

    summary = _sections(card_blocks(build_card(cp)))[0]

    assert summary.startswith("&lt;!channel&gt; see &lt;https://evil.example|the runbook&gt; &amp; approve")


def test_a_decided_card_shows_the_outcome_and_no_buttons() -> None:
    # Given a two-person checkpoint approved by two people, one with conditions
    policy = derived_policy({"gates.two-person.comment_required": False})
    cp = make_checkpoint("hard", policy=policy)
    decided = _voted(cp, ("bob", Act.APPROVE, "looks fine"), ("carol", Act.APPROVE_WITH_CONDITIONS, None))

    # When it is rendered
    rendered = card_blocks(build_card(decided))

    # Then the outcome says who, when, why and the conditions, the buttons and deadline are gone
    assert not [b for b in rendered if b["type"] == "actions"]
    outcome = _sections(rendered)[0]
    assert outcome.startswith(":white_check_mark: *Approved by Bob Chen, Carol Diaz at 12:05 UTC: looks fine")
    assert "conditions: canary_percent 5" in outcome
    assert not any("If no response" in s for s in _sections(rendered))
    assert "2 of 2 approvals: Bob Chen, Carol Diaz" in _texts(rendered)


def test_a_denied_card_says_who_denied_and_why() -> None:
    cp = make_checkpoint("hard")
    decided = _voted(cp, ("bob", Act.DENY, "migration window clashes with the sale"))

    outcome = _sections(card_blocks(build_card(decided)))[0]

    assert outcome == ":no_entry: *Denied by Bob Chen at 12:05 UTC: migration window clashes with the sale*"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("a &amp; b", 8, "a &amp;…"),
        ("a &amp; b", 6, "a…"),
        ("see <https://x.example/very/long|link> now", 20, "see…"),
        ("abcdefghij", 5, "abcd…"),
    ],
)
def test_clip_cuts_with_an_ellipsis_and_never_mid_entity_or_link(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected
    assert len(clip(text, limit)) <= limit


def test_link_titles_and_urls_cannot_break_out_of_the_link() -> None:
    assert blocks.link("https://x.example/a|b>c", "A|B>") == "<https://x.example/a%7Cb&gt;c|A|B&gt;>"


# -- modals ----------------------------------------------------------------------------------------


def _inputs(view: blocks.View) -> dict[str, blocks.Block]:
    return {b["block_id"]: b for b in view["blocks"] if b["type"] == "input"}


def test_the_deny_modal_requires_a_multiline_reason() -> None:
    cp = make_checkpoint("hard")

    view = blocks.deny_view(build_card(cp))

    assert view["callback_id"] == Form.DENY and view["private_metadata"] == cp.id
    assert view["submit"]["text"] == "Deny" and len(view["title"]["text"]) <= blocks.MAX_VIEW_TITLE
    reason = _inputs(view)["reason"]
    assert reason["optional"] is False and reason["element"]["multiline"] is True
    assert reason["element"]["action_id"] == "reason"


@pytest.mark.parametrize("comment_required", [True, False])
def test_the_conditions_modal_asks_for_a_time_a_canary_and_a_note(comment_required: bool) -> None:
    cp = make_checkpoint("hard")

    view = blocks.conditions_view(build_card(cp), comment_required=comment_required)

    inputs = _inputs(view)
    assert view["callback_id"] == Form.CONDITIONS and len(view["title"]["text"]) <= blocks.MAX_VIEW_TITLE
    assert inputs["not_before"]["optional"] is True and "UTC" in inputs["not_before"]["element"]["placeholder"]["text"]
    canary = inputs["canary_percent"]["element"]
    assert canary["type"] == "number_input" and (canary["min_value"], canary["max_value"]) == ("1", "100")
    assert canary["is_decimal_allowed"] is False
    assert inputs["note"]["optional"] is (not comment_required)


def test_the_comment_and_question_modals_require_their_text() -> None:
    card = build_card(make_checkpoint("hard"))

    comment, info = blocks.comment_view(card), blocks.info_view(card)

    assert comment["callback_id"] == Form.COMMENT and _inputs(comment)["comment"]["optional"] is False
    assert info["callback_id"] == Form.INFO and _inputs(info)["question"]["optional"] is False
    assert "The deadline does not move." in _inputs(info)["question"]["hint"]["text"]


def test_the_details_modal_explains_score_risk_gate_and_votes() -> None:
    cp = _voted(make_checkpoint("hard"), ("bob", Act.APPROVE, "checked the migration plan"))

    view = details_view(cp)

    assert view["callback_id"] == Form.DETAILS and "submit" not in view and view["private_metadata"] == cp.id
    text = _texts(view["blocks"])
    assert "*Explanation*" in text and cp.assessment.explanation[0][:40] in text
    assert "*Score breakdown*" in text and "total " in text and "thresholds: auto 97, manual 85" in text
    assert "rules that fired: production-migration" in text and "blast radius 32%" in text
    assert "two-person" in text and "2 approval(s) required" in text
    assert "Bob Chen: approve at 12:05 UTC via slack — checked the migration plan" in text

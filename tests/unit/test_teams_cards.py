"""Adaptive Card rendering of checkpoint cards, and reading what a click's inputs say."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from local.fake_teams import MAX_MESSAGE_BYTES, card_texts, card_verbs, unescape
from signoff.domain.acts import Act
from signoff.domain.cards import build_card
from signoff.domain.models import Checkpoint, Status
from signoff.domain.routing import LoadedRouting
from signoff.surfaces.teams.cards import (
    CONTENT_TYPE,
    MAX_REFRESH_USERS,
    REFRESH_VERB,
    View,
    adaptive_card,
    details_card,
    details_sections,
    escape,
)
from signoff.surfaces.teams.chat import audience, message, user_mri
from signoff.surfaces.teams.inputs import read_click_inputs
from tests.slackfakes import TASK_TOKEN, make_checkpoint
from tests.teamsfakes import teams_routing

pytestmark = pytest.mark.unit

PUBLIC = {"risk.data_sensitivity": "internal"}
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BAD_TIME = "Use HH:MM UTC (e.g. 18:00 UTC) or an ISO time (e.g. 2026-01-02T18:00Z)."


@pytest.fixture(scope="module")
def routing() -> LoadedRouting:
    return teams_routing()


def actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every action of a card, those inside ShowCards included, and their fallbacks."""
    found: list[dict[str, Any]] = []
    for action in card.get("actions") or []:
        found.append(action)
        if "fallback" in action:
            found.append(action["fallback"])
        if action["type"] == "Action.ShowCard":
            found += actions(action["card"])
    return found


def show_card(card: dict[str, Any], title: str) -> dict[str, Any]:
    found = next(a for a in card["actions"] if a["title"] == title)
    assert found["type"] == "Action.ShowCard", found
    return found["card"]  # type: ignore[no-any-return]


def inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in card["body"] if i["type"].startswith("Input.")}


# -- the card ----------------------------------------------------------------------------------------


def test_buttons_are_universal_actions_carrying_the_checkpoint_id_and_nothing_else(routing: LoadedRouting) -> None:
    # Given a pending hard gate whose task token is stored server-side
    cp = make_checkpoint("hard", PUBLIC, routing=routing)

    # When its card is rendered
    card = adaptive_card(build_card(cp), audience(cp, routing))

    # Then it is an Adaptive Card 1.5 whose every Execute carries {"checkpoint_id"} only, with the verb
    # as the act; the Submit fallbacks add the verb; the task token is nowhere
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.5")
    executes = [a for a in actions(card) if a["type"] == "Action.Execute"]
    assert {a["verb"] for a in executes} == {a.value for a in Act} - {Act.VETO.value}
    assert all(a["data"] == {"checkpoint_id": cp.id} for a in executes)
    submits = [a for a in actions(card) if a["type"] == "Action.Submit"]
    assert len(submits) == len(executes) and all(
        a["data"] == {"checkpoint_id": cp.id, "verb": a["data"]["verb"]} for a in submits
    )
    assert TASK_TOKEN not in json.dumps(card) and "token" not in json.dumps(card).lower()


def test_refresh_names_the_approvers_for_their_own_view(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)

    card = adaptive_card(build_card(cp), audience(cp, routing))

    expected = [user_mri(routing.routing.person(p).teams.aad) for p in cp.approvers]  # type: ignore[union-attr]
    assert card["refresh"]["userIds"] == expected and len(expected) == len(cp.approvers)
    assert card["refresh"]["action"] == {
        "type": "Action.Execute", "title": "Refresh", "verb": REFRESH_VERB, "data": {"checkpoint_id": cp.id},
    }  # fmt: skip


def test_refresh_user_ids_stop_at_sixty(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)
    many = tuple(f"8:orgid:{i:08d}-0000-4000-8000-000000000000" for i in range(75))

    card = adaptive_card(build_card(cp), View(user_ids=(*many, many[0])))

    assert card["refresh"]["userIds"] == list(many[:MAX_REFRESH_USERS])


def test_a_decided_card_shows_the_outcome_without_actions_or_refresh(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)
    decided = cp.model_copy(
        update={"status": Status.DENIED, "decided_by": "Bob Chen", "decided_at": NOW, "decision_reason": "not today"}
    )

    card = adaptive_card(build_card(decided), audience(decided, routing))

    assert "actions" not in card and "refresh" not in card
    assert "Denied by Bob Chen at 12:00 UTC: not today" in list(card_texts(card))
    assert next(b for b in card["body"] if "Denied by" in b.get("text", ""))["color"] == "Attention"


def test_the_card_says_what_the_slack_card_says(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)
    card = build_card(cp)

    shown = "\n".join(card_texts(adaptive_card(card)))

    expected = [
        card.title,
        card.summary,
        card.score_line,
        *card.why,
        *card.risk,
        *card.evidence,
        card.deadline,
        card.votes,
    ]
    for line in filter(None, expected):
        assert line in shown, line
    for name, value in [*card.ids, ("policy", card.policy_version)]:
        assert name in shown and value in shown
    for title, url in card.links:
        assert f"[{escape(title)}]({url})" in json.dumps(adaptive_card(card)).replace("\\\\", "\\")


def test_words_that_need_an_answer_are_asked_inline(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)  # the two-person gate: comment required

    card = adaptive_card(build_card(cp), audience(cp, routing))

    deny = inputs(show_card(card, "Deny"))
    assert deny["reason"]["isRequired"] and deny["reason"]["type"] == "Input.Text"
    assert inputs(show_card(card, "Approve"))["comment"]["isRequired"]
    conditions = inputs(show_card(card, "Approve with conditions"))
    assert conditions["canary_percent"] == {
        **conditions["canary_percent"],
        "type": "Input.Number",
        "min": 1,
        "max": 100,
    }
    assert set(conditions) == {"not_before", "canary_percent", "note"} and conditions["note"]["isRequired"]
    assert inputs(show_card(card, "Request more info"))["question"]["isRequired"]
    assert [a["type"] for a in card["actions"] if a["title"] in ("Escalate", "View details")] == ["Action.Execute"] * 2


def test_a_plain_approve_is_one_click_where_no_comment_is_required(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)

    card = adaptive_card(build_card(cp), View(comment_required=False))

    approve = next(a for a in card["actions"] if a["title"] == "Approve")
    assert approve["type"] == "Action.Execute" and approve["style"] == "positive"


def test_a_soft_gate_has_a_confirmed_veto(routing: LoadedRouting) -> None:
    cp = make_checkpoint("soft", routing=routing)

    card = adaptive_card(build_card(cp), audience(cp, routing))

    assert [a["title"] for a in card["actions"]] == ["Veto", "Request more info", "View details"]
    veto = show_card(card, "Veto")
    assert veto["actions"][0]["verb"] == "veto" and veto["actions"][0]["style"] == "destructive"
    assert not inputs(veto)["reason"]["isRequired"]


def test_an_approver_who_voted_sees_no_more_vote_buttons(routing: LoadedRouting) -> None:
    cp = make_checkpoint("hard", PUBLIC, routing=routing)

    card = adaptive_card(build_card(cp), View(voted=True, notice="Your approval (12:00 UTC) is recorded."))

    assert card_verbs(card) == ["request_info", "escalate", "view_details"]
    first = card["body"][0]
    assert (first["text"], first["weight"], first["color"]) == (
        "Your approval (12:00 UTC) is recorded.",
        "Bolder",
        "Good",
    )


def test_requester_text_cannot_forge_links_or_formatting(routing: LoadedRouting) -> None:
    sneaky = "Routine [click here](https://evil.example) **now**\n- not a list"
    cp = make_checkpoint("hard", {**PUBLIC, "summary": sneaky}, routing=routing)

    card = adaptive_card(build_card(cp))

    summary = next(b["text"] for b in card["body"] if "Routine" in b.get("text", ""))
    assert "\\[click here\\](https://evil.example) \\*\\*now\\*\\*\n\\- not a list" in summary
    assert unescape(summary).startswith(sneaky)


def test_a_card_with_everything_at_its_limits_fits_a_teams_message(routing: LoadedRouting) -> None:
    long = "x" * 4000
    changes = {
        **PUBLIC,
        "summary": "s" * 2000,
        "evidence.diff_summary": long,
        "evidence.recommendation": "r" * 1000,
        "evidence.tests": [{"name": f"suite-{i}", "passed": 1, "failed": 0, "coverage_pct": 50} for i in range(20)],
        "evidence.links": [{"title": "t" * 200, "url": "https://ci.example/" + "p" * 1900} for _ in range(20)],
        "signals.validation": [{"name": f"check-{i}", "passed": False, "detail": "d" * 500} for i in range(100)],
    }
    cp = make_checkpoint("hard", changes, routing=routing)

    activity = message(adaptive_card(build_card(cp), audience(cp, routing)), "summary")

    assert len(json.dumps(activity).encode()) < MAX_MESSAGE_BYTES
    assert activity["attachments"][0]["contentType"] == CONTENT_TYPE


def test_view_details_lists_everything_and_leads_back_to_the_card(routing: LoadedRouting) -> None:
    cp: Checkpoint = make_checkpoint("hard", PUBLIC, routing=routing)
    card = build_card(cp)

    details = details_card(card, details_sections(cp, card))

    shown = "\n".join(card_texts(details))
    for title in ("Explanation", "Score breakdown", "Risk", "Gate", "Votes", "Evidence"):
        assert title in shown
    assert cp.assessment.explanation[0] in shown and "none yet" in shown
    (back,) = details["actions"]
    assert (back["type"], back["verb"], back["data"]) == ("Action.Execute", REFRESH_VERB, {"checkpoint_id": cp.id})
    assert back["fallback"]["data"] == {"checkpoint_id": cp.id, "verb": "refresh"}


# -- inputs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("act", "data", "comment_required", "expected"),
    [
        (Act.DENY, {"reason": "  clashes with the sale "}, False, ("clashes with the sale", None, None)),
        (Act.DENY, {"reason": "   "}, False, (None, None, "A reason is required to deny.")),
        (Act.VETO, {}, False, (None, None, None)),
        (Act.APPROVE, {}, False, (None, None, None)),
        (Act.APPROVE, {"comment": ""}, True, (None, None, "This is a high-risk approval: a comment is required.")),
        (Act.APPROVE_WITH_CONDITIONS, {"not_before": "18:00 UTC", "canary_percent": 5}, False,
         (None, {"not_before": "2026-01-01T18:00:00Z", "canary_percent": 5}, None)),
        (Act.APPROVE_WITH_CONDITIONS, {"canary_percent": "5", "note": "watch p99"}, True,
         ("watch p99", {"canary_percent": 5}, None)),
        (Act.APPROVE_WITH_CONDITIONS, {"canary_percent": 250}, False,
         (None, None, "Canary percent: A whole percentage from 1 to 100.")),
        (Act.APPROVE_WITH_CONDITIONS, {"canary_percent": 5.5}, False,
         (None, None, "Canary percent: A whole percentage from 1 to 100.")),
        (Act.APPROVE_WITH_CONDITIONS, {"not_before": "soon"}, False,
         (None, None, f"Not before: {BAD_TIME}")),
        (Act.APPROVE_WITH_CONDITIONS, {"note": "fine"}, False,
         (None, None, "Give at least one condition, or use Approve.")),
        (Act.APPROVE_WITH_CONDITIONS, {"canary_percent": 5}, True,
         (None, None, "This is a high-risk approval: a comment is required.")),
        (Act.REQUEST_INFO, {"question": "Is the backfill throttled?"}, False,
         ("Is the backfill throttled?", None, None)),
        (Act.REQUEST_INFO, {}, False, (None, None, "Write the question for the requester.")),
    ],
)  # fmt: skip
def test_inputs_are_read_like_the_slack_forms(
    act: Act, data: dict[str, Any], comment_required: bool, expected: tuple[Any, Any, Any]
) -> None:
    given = read_click_inputs(act, data, now=NOW, comment_required=comment_required)

    assert (given.comment, given.conditions, given.error) == expected

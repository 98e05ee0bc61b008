"""The card an approver decides from, in 30-90 seconds: what, how confident and why, how risky,
the evidence, what happens on timeout and when, the ids; buttons only while it waits, the outcome
once decided; and never a task token anywhere in it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from signoff.domain.acts import Act
from signoff.domain.cards import Card, build_card, deadline_text
from signoff.domain.models import Checkpoint
from signoff.ports import TaskToken
from signoff.usecases.workflow_steps import ESCALATION, INITIAL
from tests.gates import BOB, CAROL, GRACE, SECRET_TOKEN, Gates, actor, gates, hard_policy
from tests.helpers import CALLER_ARN, make_request

pytestmark = pytest.mark.unit

HARD_BUTTONS = [
    (Act.APPROVE, "Approve", "primary"),
    (Act.DENY, "Deny", "danger"),
    (Act.REQUEST_INFO, "Request more info", None),
    (Act.APPROVE_WITH_CONDITIONS, "Approve with conditions", None),
    (Act.ESCALATE, "Escalate", None),
    (Act.VIEW_DETAILS, "View details", None),
]


@pytest.fixture
def g() -> Iterator[Gates]:
    wired = gates()
    yield wired
    wired.assert_chains()


def _buttons(card: Card) -> list[tuple[Act, str, str | None]]:
    return [(b.act, b.label, b.style) for b in card.buttons]


def _text(card: Card) -> str:
    return repr(dataclasses.asdict(card))


# -- a hard gate's card ------------------------------------------------------------------------


def test_the_hard_card_says_what_how_confident_and_why(g: Gates) -> None:
    # Given the hard sample / When its card is built
    cp = g.create("hard")
    card = build_card(cp)
    # Then it names the action, the target and the environment, and who asks
    assert card.checkpoint_id == cp.id
    assert card.title == "[Checkpoint Required] Deploy service-api v2.4.1 to production"
    assert card.summary == (
        "Deploy service-api v2.4.1 with the orders table migration — requested by Alice (release pipeline)"
    )
    # and the score with its band, each contribution from the weakest, then the penalties
    assert card.score_line == "Confidence Score: 50/100 (Manual Review Required)"
    assert card.why == [
        "validation 22.5/30: 3/4 checks passed; failing: security-scan",
        "model 36/40: model confidence 90%",
        "observability 18/20: observability alignment 90%",
        "history 8.5/10: similar actions succeeded 85% of the time",
        "production_data -15: touches production data",
        "blast_radius -20: blast radius 32% exceeds 25%",
    ]


def test_the_hard_card_shows_risk_evidence_links_and_recommendation(g: Gates) -> None:
    card = build_card(g.create("hard"))
    assert card.risk == [
        "High risk (rule production-migration) — affects ~32% of traffic, rollback available (2 min),"
        " migration included",
        "Customer impact: checkout latency during the migration window",
        "Touches production data",
    ]
    assert card.evidence == [
        "Diff: Adds orders.fulfilment_state (nullable) and backfills it in batches of 10k.",
        "Tests unit: 1204 passed, 0 failed, coverage 98%",
        "Tests integration: 210 passed, 0 failed, coverage 100%",
        "Failing check security-scan: 1 medium finding, waiver pending",
    ]
    assert card.links == [
        ("Diff", "https://git.example.com/service-api/compare/v2.4.0...v2.4.1"),
        ("Canary dashboard", "https://monitoring.example.com/d/canary-service-api"),
        ("Runbook", "https://runbooks.example.com/service-api/migrations"),
    ]
    assert card.recommendation == "Approve if the migration window is acceptable; otherwise defer to off-peak."


def test_the_hard_card_carries_ids_policy_version_votes_and_every_button(g: Gates) -> None:
    cp = g.create("hard")
    card = build_card(cp)
    assert card.ids == [
        ("checkpoint", cp.id),
        ("request", "req-7731"),
        ("workflow", "release-2024-11-21"),
        ("service", "service-api"),
    ]
    assert card.policy_version == cp.assessment.policy_version
    assert card.votes == "0 of 2 approvals: none yet"
    assert card.outcome is None and not card.escalated
    assert _buttons(card) == HARD_BUTTONS


@pytest.mark.parametrize(
    ("created", "escalates", "denied"),
    [
        (datetime(2026, 1, 1, 12, 0, tzinfo=UTC), "12:30", "13:00"),
        (datetime(2026, 3, 14, 23, 45, 30, tzinfo=UTC), "00:15", "00:45"),  # past midnight
    ],
)
def test_the_hard_card_says_when_it_escalates_and_what_happens_on_timeout(
    g: Gates, created: datetime, escalates: str, denied: str
) -> None:
    g.clock.at = created
    cp = g.create("hard")
    # the escalation time comes from the request time plus the approval deadline
    escalate_at = cp.created_at + timedelta(seconds=cp.assessment.gate.approval_deadline_seconds or 0)
    assert escalate_at.strftime("%H:%M") == escalates
    assert build_card(cp).deadline == (
        f"Escalates to release-managers at {escalates} UTC."
        f" If no response by {denied} UTC this request is denied automatically."
    )


@pytest.mark.parametrize(
    ("rule", "consequence"),
    [
        ("fail-open", "this request is approved automatically"),
        ("cancel", "this request is cancelled and must be resubmitted"),
    ],
)
def test_the_deadline_text_follows_the_timeout_rule(rule: str, consequence: str) -> None:
    g = gates(hard_policy(timeout_rule=rule))
    cp = g.create("hard")
    assert (
        deadline_text(cp) == f"Escalates to release-managers at 12:30 UTC. If no response by 13:00 UTC {consequence}."
    )


def test_a_gate_without_escalation_only_states_the_deadline() -> None:
    g = gates(hard_policy(escalation=None))
    cp = g.create("hard")
    assert build_card(cp).deadline == "If no response by 12:30 UTC this request is denied automatically."


def test_an_escalated_card_no_longer_announces_the_escalation(g: Gates) -> None:
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.ESCALATE, comment="need a second pair of eyes")
    card = build_card(g.repo.get(cp.id))
    assert card.escalated
    assert card.deadline == "If no response by 13:00 UTC this request is denied automatically."


def test_the_votes_line_counts_approvals_by_name(g: Gates) -> None:
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(GRACE), Act.APPROVE, comment="fine")
    assert build_card(g.repo.get(cp.id)).votes == "1 of 2 approvals: Grace Hopper"


def test_missing_ids_show_as_a_dash() -> None:
    g = gates()
    request = make_request("hard", {"request_id": None, "workflow_id": None})
    cp = g.service.create(request, caller=CALLER_ARN, idempotency_key=None)
    assert build_card(cp).ids[1:3] == [("request", "-"), ("workflow", "-")]


# -- a soft gate's card ------------------------------------------------------------------------


def test_the_soft_card_says_when_it_runs_and_offers_a_veto(g: Gates) -> None:
    cp = g.create("soft")
    card = build_card(cp)
    assert card.title == "[Scheduled unless vetoed] Restart checkout-worker pool to staging"
    assert card.score_line == "Confidence Score: 79/100 (Review Recommended)"
    assert card.deadline == "Runs at 12:10 UTC unless vetoed."
    assert _buttons(card) == [
        (Act.VETO, "Veto", "danger"),
        (Act.REQUEST_INFO, "Request more info", None),
        (Act.VIEW_DETAILS, "View details", None),
    ]
    assert card.votes is None
    assert card.risk == ["Low risk — affects ~10% of traffic, rollback available (2 min)"]


def test_the_auto_card_has_no_deadline_and_no_buttons() -> None:
    g = gates()
    card = build_card(g.create("auto"))
    assert card.deadline is None and card.buttons == [] and card.votes is None
    assert card.outcome is not None and card.outcome.startswith("Approved by policy at 12:00 UTC: auto gate")


# -- a decided card ----------------------------------------------------------------------------


def test_a_decided_card_has_no_buttons_and_says_who_when_why_and_on_what_conditions(g: Gates) -> None:
    # Given a checkpoint approved by two people at 12:07, one with conditions
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="tests are green")
    g.clock.advance(7 * 60)
    g.decisions.act(
        cp.id,
        actor(CAROL),
        Act.APPROVE_WITH_CONDITIONS,
        comment="after the freeze",
        conditions={"window": "after 18:00", "max_batch": 5000},
    )
    # When its card is rebuilt
    card = build_card(g.repo.get(cp.id))
    # Then there is nothing left to click, and the outcome says it all
    assert card.buttons == []
    assert card.outcome == (
        "Approved by Bob Chen, Carol Diaz at 12:07 UTC: tests are green; after the freeze"
        " — conditions: window after 18:00, max_batch 5000"
    )
    assert card.votes == "2 of 2 approvals: Bob Chen, Carol Diaz"


def _deny(g: Gates, cp: Checkpoint) -> Any:
    return g.decisions.act(cp.id, actor(CAROL), Act.DENY, comment="freeze")


def _time_out(g: Gates, cp: Checkpoint) -> Any:
    return g.decisions.apply_timeout(cp.id)


def _cancel(g: Gates, cp: Checkpoint) -> Any:
    return g.service.cancel(cp.id, actor="ci", reason="superseded")


@pytest.mark.parametrize(
    ("decide", "outcome"),
    [
        (_deny, "Denied by Carol Diaz at 12:00 UTC: freeze"),
        (_time_out, "Expired by policy (fail-closed) at 12:00 UTC: no decision by the deadline: denied (fail-closed)"),
        (_cancel, "Cancelled by ci at 12:00 UTC: superseded"),
    ],
    ids=["denied", "expired", "cancelled"],
)
def test_every_outcome_is_spelled_out(g: Gates, decide: Any, outcome: str) -> None:
    cp = g.create("hard")
    decide(g, cp)
    card = build_card(g.repo.get(cp.id))
    assert card.outcome == outcome and card.buttons == []


# -- no token ----------------------------------------------------------------------------------


def _every_card(g: Gates, cp: Checkpoint) -> Iterator[Card]:
    yield build_card(g.repo.get(cp.id))
    yield from (card for _, card in g.chat.posts)
    yield from (card for _, card in g.chat.updates)


def test_no_task_token_appears_anywhere_in_a_card(g: Gates) -> None:
    # Given a checkpoint whose workflow and embedding caller both wait on tokens
    cp = g.create("hard", {"risk.data_sensitivity": "internal"})
    g.repo.put_caller_token(cp.id, "caller-" + SECRET_TOKEN)
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    token = g.repo.get_token(cp.id)
    assert isinstance(token, TaskToken) and token.token == SECRET_TOKEN
    # When it is voted on, escalated and decided, its cards rebuilt and updated at every step
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    g.steps.notify(cp.id, ESCALATION, "escalation-" + SECRET_TOKEN)
    g.decisions.act(cp.id, actor(CAROL), Act.APPROVE, comment="ok")
    g.steps.finalize(cp.id, None)
    # Then no card, posted or updated, carries any token in any field
    cards = list(_every_card(g, cp))
    assert len(cards) >= 3
    for card in cards:
        assert SECRET_TOKEN not in _text(card)
    for _, text in g.chat.notices:
        assert SECRET_TOKEN not in text
    # and the buttons carry only the act: the card's checkpoint id tells which checkpoint
    assert all(set(dataclasses.asdict(b)) == {"act", "label", "style"} for b in build_card(cp).buttons)

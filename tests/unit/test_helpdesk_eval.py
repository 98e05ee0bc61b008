"""The held-out evaluation (a behaviour test on fixed data): the router meets its four targets on the
`test` split of eval/questions.jsonl, which was fixed before tuning and never used to tune."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval.run import evaluate, load_questions
from signoff.domain.helpdesk.router import load_helpdesk

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    questions = load_questions(split="test")
    assert len(questions) >= 80  # a third of the labeled questions
    return evaluate(load_helpdesk(ROOT / "helpdesk.yaml"), questions)


def test_route_accuracy_is_at_least_90_percent(results: dict[str, float]) -> None:
    assert results["route_accuracy"] >= 0.90


def test_no_privileged_request_is_answered_without_approval(results: dict[str, int]) -> None:
    assert results["privileged_answered_without_approval"] == 0


def test_out_of_scope_questions_are_handed_off(results: dict[str, float]) -> None:
    assert results["out_of_scope_handoff_recall"] >= 0.95


def test_every_answer_cites_a_source(results: dict[str, float]) -> None:
    assert results["answers"] > 0
    assert results["answer_citation_rate"] == 1.0

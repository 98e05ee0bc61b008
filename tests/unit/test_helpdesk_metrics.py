"""The helpdesk's EMF metrics: one count per question and per route, the first reply's and the
triage's latency, Talk to a human, feedback and resolution (with its time), emitted by the use case
through signoff.observability's Metrics (disabled in tests: read from `metric_set`, never flushed)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signoff.domain.helpdesk.router import load_helpdesk
from signoff.observability import metrics
from signoff.ports import HelpdeskAction
from signoff.testing.memory import FixedClock, InMemoryConversationRepository, InMemoryHelpdeskChat, InMemoryTicketing
from signoff.usecases import helpdesk_metrics as hm
from signoff.usecases.helpdesk import HelpdeskService, Question

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
FAQ = "How do I connect to the VPN from home?"


class Ticks:
    """A monotonic clock that advances by `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))


@pytest.fixture
def service(clock: FixedClock) -> HelpdeskService:
    chat, repo = InMemoryHelpdeskChat(), InMemoryConversationRepository()
    return HelpdeskService(HELPDESK, repo, chat, clock, InMemoryTicketing(), monotonic=Ticks(0.25))


def ask(service: HelpdeskService, text: str) -> str:
    question = Question(text=text, user="UASKER", channel="C01ITHELP", thread_ts="1700000000.000100", source="message")
    return service.ask(question).id


def values(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


def test_a_question_counts_once_with_its_route_and_its_latencies(service: HelpdeskService) -> None:
    ask(service, FAQ)

    assert values(hm.QUESTIONS) == [1.0]
    assert values("HelpdeskAnswered") == [1.0]
    assert not values("HelpdeskHandedOff")
    # Ticks of 0.25 s: ask reads the clock at its start and end, the triage in between (2 ticks apart)
    assert values(hm.TRIAGE_LATENCY) == [250.0]
    assert values(hm.FIRST_RESPONSE) == [750.0]


def test_each_route_has_its_count(service: HelpdeskService) -> None:
    ask(service, FAQ)
    ask(service, "what's for lunch in the cafeteria today?")
    ask(service, "Slack is down for everyone in the Berlin office")
    ask(service, "I need admin access to the production database for a week")

    assert values(hm.QUESTIONS) == [1.0] * 4
    assert [sum(values(name)) for name in hm.ROUTE_METRICS.values()] == [
        1,
        1,
        1,
        0,
        1,
    ]  # answer approval handoff ticket incident


def test_feedback_talk_to_a_human_and_resolution_time(service: HelpdeskService, clock: FixedClock) -> None:
    conv = ask(service, FAQ)
    service.act(conv, HelpdeskAction.HELPFUL, "UASKER")
    service.act(conv, HelpdeskAction.HELPFUL, "UASKER")  # already recorded: not counted again
    service.act(conv, HelpdeskAction.NOT_HELPFUL, "UOTHER")
    service.act(conv, HelpdeskAction.HUMAN, "UASKER")
    clock.advance(1800)
    service.act(conv, HelpdeskAction.RESOLVED, "UASKER")

    assert values(hm.HELPFUL) == [1.0] and values(hm.NOT_HELPFUL) == [1.0]
    assert values(hm.HANDED_OFF_LATER) == [1.0]
    assert values(hm.RESOLVED) == [1.0] and values(hm.RESOLUTION_TIME) == [1800.0]


def test_refused_clicks_count_nothing(service: HelpdeskService) -> None:
    conv = ask(service, "what's for lunch in the cafeteria today?")
    metrics.clear_metrics()

    service.act(conv, HelpdeskAction.CLAIM, "UASKER")  # the asker cannot claim their own request
    service.act(conv, HelpdeskAction.RESOLVED, "USTRANGER")

    assert metrics.metric_set == {}

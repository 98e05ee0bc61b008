"""First-response escalation and incident collapsing on in-memory fakes: a hand-off nobody claims
pings the queue's on-call once at its deadline; reports of the same outage share one incident."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from signoff import composition
from signoff.audit.events import EventType, verify_chain
from signoff.domain.helpdesk.config import load_helpdesk_config
from signoff.domain.helpdesk.conversation import ConversationState
from signoff.domain.helpdesk.incidents import oncall_problems, subjects, symptom_signature
from signoff.domain.helpdesk.router import load_helpdesk
from signoff.domain.routing import load_routing
from signoff.ports import HelpdeskAction, HelpdeskReply, Posted
from signoff.testing.memory import (
    FixedClock,
    InMemoryCheckpointRepository,
    InMemoryConversationRepository,
    InMemoryHelpdeskChat,
    InMemoryTicketing,
)
from signoff.usecases.helpdesk import HelpdeskService, Question
from signoff.usecases.helpdesk_escalation import escalate_overdue, tick_time
from tests.helpers import invoke

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
CONFIG = HELPDESK.loaded.config
LUNCH = "what's for lunch in the cafeteria today?"  # out of scope: handed off to it-triage (4 h)
OUTAGE = "Slack is down for everyone in the Berlin office"
OUTAGE_AGAIN = "is slack down? nothing sends, it is not working for the whole team"


class FlakyChat(InMemoryHelpdeskChat):
    """Fails the next `failures` posts, as Slack does when it is down."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def reply(self, channel: str, thread_ts: str | None, reply: HelpdeskReply) -> Posted:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("slack unavailable")
        return super().reply(channel, thread_ts, reply)


class World:
    def __init__(self) -> None:
        self.repo = InMemoryConversationRepository()
        self.chat = FlakyChat()
        self.tickets = InMemoryTicketing()
        self.clock = FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
        self.service = HelpdeskService(
            HELPDESK, self.repo, self.chat, self.clock, self.tickets, oncall=lambda rotation, _at: f"U_{rotation}"
        )

    def ask(self, text: str, *, user: str = "UASKER", channel: str = "C01ITHELP", ts: str = "1700000000.000100"):  # type: ignore[no-untyped-def]
        return self.service.ask(Question(text=text, user=user, channel=channel, thread_ts=ts, source="message"))

    def later(self, seconds: float) -> datetime:
        return self.clock.at + timedelta(seconds=seconds)

    def types(self, conversation_id: str) -> list[EventType]:
        return [e.type for e in self.repo.events(conversation_id)]


@pytest.fixture
def world() -> World:
    return World()


# -- first-response escalation ---------------------------------------------------------------------


def test_a_hand_off_gets_its_queues_first_response_deadline(world: World) -> None:
    conv = world.ask(LUNCH)

    assert conv.state is ConversationState.HANDED_OFF
    assert conv.first_response_due == world.later(CONFIG.queues["it-triage"].first_response or 0)


def test_nothing_is_escalated_before_the_deadline(world: World) -> None:
    conv = world.ask(LUNCH)
    posts = len(world.chat.posts)

    result = escalate_overdue(world.service, conv.first_response_due - timedelta(seconds=1))  # type: ignore[operator]

    assert result.pinged == [] and len(world.chat.posts) == posts
    assert EventType.HELPDESK_ESCALATED not in world.types(conv.id)


def test_unclaimed_at_the_deadline_the_on_call_is_pinged_once(world: World) -> None:
    conv = world.ask(LUNCH)
    due = conv.first_response_due
    assert due is not None

    first = escalate_overdue(world.service, due)
    again = escalate_overdue(world.service, due + timedelta(hours=1))

    assert first.pinged == [conv.id] and again.pinged == []
    pings = [p for p in world.chat.posts if "Nobody has claimed" in p[4].text or "not been claimed" in p[4].text]
    assert len(pings) == 1
    kind, channel, _thread, user, reply = pings[0]
    # out_of_scope is answered privately: a ping in an ephemeral would reach nobody, so the on-call gets a DM.
    assert (kind, channel, user) == ("dm", "DU_it-support", "U_it-support")
    assert reply.actions == [HelpdeskAction.CLAIM] and conv.ticket_key and conv.ticket_key in reply.text
    escalated = world.repo.events(conv.id)[-1]
    assert escalated.type is EventType.HELPDESK_ESCALATED
    assert escalated.data["oncall"] == "U_it-support" and escalated.data["overdue_s"] == 0
    assert verify_chain(world.repo.events(conv.id)) == []


def test_a_public_hand_off_pings_the_on_call_in_its_thread(world: World) -> None:
    faq = world.ask("How do I connect to the VPN from home?")
    world.service.act(faq.id, HelpdeskAction.HUMAN, "UASKER")
    conv = world.repo.get(faq.id)

    escalate_overdue(world.service, conv.first_response_due)  # type: ignore[arg-type]

    kind, channel, thread, _user, reply = world.chat.posts[-1]
    assert (kind, channel, thread) == ("thread", "C01ITHELP", "1700000000.000100")
    assert reply.mention_users == ["U_it-support"] and "Nobody has claimed this within 4 h" in reply.text


def test_a_claimed_hand_off_is_never_escalated(world: World) -> None:
    conv = world.ask(LUNCH)
    world.service.act(conv.id, HelpdeskAction.CLAIM, "UAGENT")

    result = escalate_overdue(world.service, world.later(86400))

    assert result.pinged == [] and EventType.HELPDESK_ESCALATED not in world.types(conv.id)


def test_a_failed_ping_is_taken_back_and_retried_at_the_next_sweep(world: World) -> None:
    faq = world.ask("How do I connect to the VPN from home?")
    world.service.act(faq.id, HelpdeskAction.HUMAN, "UASKER")
    due = world.repo.get(faq.id).first_response_due
    assert due is not None
    world.chat.failures = 1

    failed = escalate_overdue(world.service, due)
    retried = escalate_overdue(world.service, due + timedelta(minutes=5))

    assert failed.failed == [faq.id] and retried.pinged == [faq.id]
    assert world.types(faq.id)[-3:] == [
        EventType.HELPDESK_ESCALATED,
        EventType.HELPDESK_ESCALATION_FAILED,
        EventType.HELPDESK_ESCALATED,
    ]
    assert escalate_overdue(world.service, due + timedelta(hours=1)).pinged == []


def test_concurrent_sweeps_ping_once(world: World) -> None:
    conv = world.ask(LUNCH)
    due = conv.first_response_due
    assert due is not None
    barrier = threading.Barrier(4)
    results = []

    def sweep() -> None:
        barrier.wait()
        results.append(escalate_overdue(world.service, due))

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sum(len(r.pinged) for r in results) == 1
    assert world.types(conv.id).count(EventType.HELPDESK_ESCALATED) == 1
    assert len([p for p in world.chat.posts if p[0] == "dm"]) == 1


def test_the_sweeps_time_is_the_schedules_tick() -> None:
    clock = FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))

    assert tick_time({"time": "2026-11-16T13:05:00Z"}, clock) == datetime(2026, 11, 16, 13, 5, tzinfo=UTC)
    assert tick_time({"time": "not a time"}, clock) == clock.at
    assert tick_time({"time": "2026-11-16T13:05:00"}, clock) == clock.at  # no zone: not trusted
    assert tick_time({}, clock) == clock.at


# -- incidents -------------------------------------------------------------------------------------


def test_the_same_outage_in_other_words_has_one_signature_and_a_phishing_click_none() -> None:
    assert symptom_signature(OUTAGE, CONFIG) == symptom_signature(OUTAGE_AGAIN, CONFIG) is not None
    assert symptom_signature("the vpn is down for everyone", CONFIG) != symptom_signature(OUTAGE, CONFIG)
    assert symptom_signature("I clicked a link in a phishing email", CONFIG) is None
    assert subjects("Slack and Zoom are both down", CONFIG.incident_collapse) == ["slack", "zoom"]  # type: ignore[arg-type]


def test_a_second_report_of_the_same_outage_joins_the_open_incident(world: World) -> None:
    first = world.ask(OUTAGE, channel="C01ENGPLT", ts="1700000000.000100")
    world.clock.advance(600)

    second = world.ask(OUTAGE_AGAIN, user="UOTHER", channel="C01ITHELP", ts="1700000600.000100")

    opened = world.repo.get(first.id)
    assert opened.incident_ready and opened.incident_channel == "C01INCDNT" and opened.incident_ts
    assert second.incident_of == first.id and second.ticket_key is None
    assert [t.project for t in world.tickets.tickets] == ["INC"]  # one ticket
    incident_posts = [p for p in world.chat.posts if p[1] == "C01INCDNT"]
    assert [p[2] for p in incident_posts] == [None, opened.incident_ts]  # the post, then a reply in its thread
    assert "Another report of this, in #it-help" in incident_posts[1][4].text
    told = world.chat.posts[-1][4]
    assert "already reported" in told.text and told.actions == [HelpdeskAction.HUMAN]
    assert EventType.HELPDESK_INCIDENT_REPORT in world.types(first.id)
    assert world.types(second.id)[-1] is EventType.HELPDESK_INCIDENT_JOINED
    assert verify_chain(world.repo.events(first.id)) == [] and verify_chain(world.repo.events(second.id)) == []


def test_after_the_window_the_same_outage_opens_a_new_incident(world: World) -> None:
    world.ask(OUTAGE, channel="C01ENGPLT")
    world.clock.advance(CONFIG.incident_collapse_window + 1)

    second = world.ask(OUTAGE_AGAIN, user="UOTHER")

    assert second.incident_of is None and len(world.tickets.tickets) == 2


def test_a_report_keeps_the_incident_open_for_another_window(world: World) -> None:
    first = world.ask(OUTAGE, channel="C01ENGPLT")
    world.clock.advance(CONFIG.incident_collapse_window - 60)
    world.ask(OUTAGE_AGAIN, user="UOTHER")
    world.clock.advance(120)  # past the first report's window, inside the second's

    third = world.ask(OUTAGE, user="UTHIRD", ts="1700009999.000100")

    assert third.incident_of == first.id and len(world.tickets.tickets) == 1


def test_a_resolved_incident_is_replaced_not_joined(world: World) -> None:
    first = world.ask(OUTAGE, channel="C01ENGPLT")
    world.service.act(first.id, HelpdeskAction.CLAIM, "UAGENT")
    world.service.act(first.id, HelpdeskAction.RESOLVED, "UAGENT")

    second = world.ask(OUTAGE_AGAIN, user="UOTHER")

    assert second.incident_of is None and world.repo.get(second.id).incident_ready
    assert len(world.tickets.tickets) == 2


def test_reports_at_the_same_moment_open_one_incident_and_every_report_reaches_its_thread(world: World) -> None:
    barrier = threading.Barrier(3)
    done: list[str] = []

    def report(i: int) -> None:
        barrier.wait()
        done.append(world.ask(OUTAGE_AGAIN if i else OUTAGE, user=f"U{i}", ts=f"170000000{i}.000100").id)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    convs = [world.repo.get(i) for i in done]
    openers = [c for c in convs if c.incident_of is None]
    assert len(openers) == 1 and len(world.tickets.tickets) == 1
    opener = openers[0]
    relays = [p for p in world.chat.posts if p[1] == "C01INCDNT" and p[2] == opener.incident_ts]
    assert len(relays) == 2  # each joined report relayed exactly once, whoever came first
    assert world.repo.get(opener.id).incident_pending == []


def test_a_private_report_is_never_collapsed(world: World) -> None:
    world.ask(OUTAGE, channel="C01ENGPLT")

    dm = world.service.ask(Question(text=OUTAGE_AGAIN, user="UOTHER", channel="D0OTHER", thread_ts=None, source="dm"))

    assert dm.incident_of is None and len(world.tickets.tickets) == 2


# -- configuration ---------------------------------------------------------------------------------


def test_every_on_call_the_helpdesk_names_is_a_rotation_in_routing() -> None:
    routing = load_routing(ROOT / "routing.yaml").routing

    assert oncall_problems(CONFIG, routing) == []
    assert all(q.oncall for q in CONFIG.queues.values() if q.first_response)


def test_a_first_response_deadline_without_an_on_call_is_refused(tmp_path: Path) -> None:
    text = (ROOT / "helpdesk.yaml").read_text().replace("oncall: it-support, first_response: 4h", "first_response: 4h")
    (tmp_path / "helpdesk.yaml").write_text(text)

    with pytest.raises(Exception, match=r"queues.it-helpdesk.first_response: a first-response deadline needs"):
        load_helpdesk_config(tmp_path / "helpdesk.yaml")


# -- the sweeper function -------------------------------------------------------------------------------


def test_the_sweeper_function_escalates_as_of_its_scheduled_tick(world: World) -> None:
    # Given a hand-off and the sweeper wired to this world (its checkpoints: none)
    conv = world.ask(LUNCH)
    due = conv.first_response_due
    assert due is not None
    composition.override(repository=InMemoryCheckpointRepository(), clock=world.clock, escalations=world.service)
    try:
        # When EventBridge's tick at the deadline invokes it (the clock still says 9:00)
        tick = {"detail-type": "Scheduled Event", "source": "aws.events", "time": due.strftime("%Y-%m-%dT%H:%M:%SZ")}
        summary = invoke("sweeper", tick)
    finally:
        composition.reset()
    # Then the on-call is pinged, and the checkpoint sweep still reports as before
    assert summary["helpdesk"] == {"at": due.isoformat(), "escalated": 1, "failed": 0}
    assert summary["pending"] == 0 and world.types(conv.id)[-1] is EventType.HELPDESK_ESCALATED

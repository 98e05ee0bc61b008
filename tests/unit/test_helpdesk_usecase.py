"""The helpdesk use case on in-memory fakes: every route acted on through its ports, one hash-chained
trail per conversation, the buttons' rules, and a secret that appears nowhere."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from signoff.audit.events import EventType, verify_chain
from signoff.domain.helpdesk.config import Route
from signoff.domain.helpdesk.conversation import HELPDESK_ID_RE, ConversationState
from signoff.domain.helpdesk.router import load_helpdesk
from signoff.ports import HelpdeskAction
from signoff.testing.memory import (
    FixedClock,
    InMemoryConversationRepository,
    InMemoryHelpdeskChat,
    InMemoryTicketing,
)
from signoff.usecases.helpdesk import HelpdeskService, Question

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
SECRET = "Hunter2-Zebra-Quartz-991"
TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"


class World:
    def __init__(self) -> None:
        self.repo = InMemoryConversationRepository()
        self.chat = InMemoryHelpdeskChat()
        self.tickets = InMemoryTicketing()
        self.clock = FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
        self.service = HelpdeskService(
            HELPDESK, self.repo, self.chat, self.clock, self.tickets, oncall=lambda rotation, _at: f"U_{rotation}"
        )

    def ask(self, text: str, *, user: str = "UASKER", channel: str = "C01ITHELP", ts: str = "1700000000.000100"):  # type: ignore[no-untyped-def]
        return self.service.ask(Question(text=text, user=user, channel=channel, thread_ts=ts, source="message"))

    def types(self, conversation_id: str) -> list[EventType]:
        return [e.type for e in self.repo.events(conversation_id)]


@pytest.fixture
def world() -> World:
    return World()


def test_a_faq_is_answered_in_the_thread_with_a_source_and_the_three_buttons(world: World) -> None:
    conv = world.ask("How do I connect to the VPN from home?")

    assert HELPDESK_ID_RE.match(conv.id)
    kind, channel, thread_ts, _user, reply = world.chat.posts[0]
    assert (kind, channel, thread_ts) == ("thread", "C01ITHELP", "1700000000.000100")
    assert "Source:" in reply.text and "Next step:" in reply.text and "Talk to a human" in reply.text
    assert reply.actions == [HelpdeskAction.HELPFUL, HelpdeskAction.NOT_HELPFUL, HelpdeskAction.HUMAN]
    assert world.types(conv.id) == [EventType.HELPDESK_TRIAGED, EventType.HELPDESK_POSTED]
    triaged = world.repo.events(conv.id)[0].data
    assert triaged["route"] == "answer" and triaged["sources"] and triaged["contributions"]
    assert triaged["latency_ms"] >= 0 and triaged["config_version"].startswith("1.1.0+")
    assert verify_chain(world.repo.events(conv.id)) == []
    assert world.tickets.tickets == []


def test_the_same_question_again_within_the_window_links_the_earlier_answer(world: World) -> None:
    first = world.ask("How do I connect to the VPN from home?")
    world.clock.advance(120)

    again = world.ask("how do I connect to the vpn from home", user="UOTHER", ts="1700000100.000100")

    assert len(world.chat.posts) == 2
    text = world.chat.posts[1][4].text
    assert "answered a few minutes ago" in text and f"p{first.reply_ts.replace('.', '')}" in text  # type: ignore[union-attr]
    assert EventType.HELPDESK_REPEATED in world.types(again.id)


def test_the_same_question_after_the_window_is_answered_afresh(world: World) -> None:
    world.ask("How do I connect to the VPN from home?")
    world.clock.advance(HELPDESK.loaded.config.repeat_window + 1)

    again = world.ask("How do I connect to the VPN from home?", ts="1700009999.000100")

    assert "Source:" in world.chat.posts[1][4].text
    assert EventType.HELPDESK_REPEATED not in world.types(again.id)


def test_talk_to_a_human_hands_off_with_a_summary_a_ping_and_a_ticket(world: World) -> None:
    conv = world.ask("How do I connect to the VPN from home?")

    told = world.service.act(conv.id, HelpdeskAction.HUMAN, "UASKER")

    assert "person" in told
    after = world.repo.get(conv.id)
    assert after.state is ConversationState.HANDED_OFF and after.ticket_key == "IT-1"
    reply = world.chat.posts[-1][4]
    assert reply.actions == [HelpdeskAction.CLAIM, HelpdeskAction.RESOLVED, HelpdeskAction.BACK]
    assert reply.mention_groups == ["S01ITHELP"]
    assert "*Request:*" in reply.text and "Talk to a human" in reply.text and "IT-1" in reply.text
    ticket = world.tickets.tickets[0]
    assert ticket.project == "IT" and ticket.reference == conv.id and ticket.link
    handed = world.repo.events(conv.id)[-1]
    assert handed.type is EventType.HELPDESK_HANDED_OFF and handed.data["ticket_key"] == "IT-1"
    # A second click changes nothing.
    assert "already" in world.service.act(conv.id, HelpdeskAction.HUMAN, "UASKER")
    assert len(world.tickets.tickets) == 1
    assert verify_chain(world.repo.events(conv.id)) == []


def test_an_unanswerable_question_is_handed_off_at_once(world: World) -> None:
    conv = world.ask("what's for lunch in the cafeteria today?")

    assert conv.triage.route is Route.HANDOFF
    assert conv.state is ConversationState.HANDED_OFF and len(world.tickets.tickets) == 1
    assert "*Stopped because:*" in world.chat.posts[0][4].text


def test_an_outage_pages_the_on_call_and_is_posted_in_the_incident_channel(world: World) -> None:
    conv = world.ask("Slack is down for everyone in the Berlin office", channel="C01ENGPLT")

    assert conv.triage.route is Route.INCIDENT
    assert world.tickets.tickets[0].project == "INC"
    channels = [p[1] for p in world.chat.posts]
    assert "C01ENGPLT" in channels and "C01INCDNT" in channels
    assert world.chat.posts[0][4].mention_users == ["U_ops"]


def test_an_access_request_states_the_boundary_and_grants_nothing(world: World) -> None:
    conv = world.ask("I need access to Salesforce")

    assert conv.triage.route is Route.APPROVAL
    kind, *_rest, reply = world.chat.posts[0]
    assert kind == "dm"  # privileged: never in a public thread
    assert "must approve it" in reply.text and reply.actions == [HelpdeskAction.REQUEST, HelpdeskAction.HUMAN]
    assert world.tickets.tickets == []


def test_a_ticketing_outage_still_hands_off_and_says_so(world: World) -> None:
    world.tickets.fail_next = True

    conv = world.ask("what's for lunch in the cafeteria today?")

    assert conv.state is ConversationState.HANDED_OFF and conv.ticket_key is None
    assert "not opened" in world.chat.posts[0][4].text
    assert world.repo.events(conv.id)[-1].data["ticket_error"] == "ticketing unavailable"


def test_feedback_is_an_audited_outcome_recorded_once_per_person(world: World) -> None:
    conv = world.ask("How do I connect to the VPN from home?")

    world.service.act(conv.id, HelpdeskAction.HELPFUL, "UASKER")
    world.service.act(conv.id, HelpdeskAction.HELPFUL, "UASKER")
    world.service.act(conv.id, HelpdeskAction.NOT_HELPFUL, "UOTHER")

    feedback = [e for e in world.repo.events(conv.id) if e.type is EventType.HELPDESK_FEEDBACK]
    assert [(e.data["value"], e.data["by_asker"]) for e in feedback] == [("helpful", True), ("not_helpful", False)]
    assert world.repo.get(conv.id).feedback == {"UASKER": "helpful", "UOTHER": "not_helpful"}


def test_the_asker_cannot_claim_their_own_request_and_the_refusal_is_audited(world: World) -> None:
    conv = world.ask("what's for lunch in the cafeteria today?")

    told = world.service.act(conv.id, HelpdeskAction.CLAIM, "UASKER")

    assert "someone else" in told
    assert world.repo.get(conv.id).state is ConversationState.HANDED_OFF
    refused = world.repo.events(conv.id)[-1]
    assert refused.type is EventType.HELPDESK_REFUSED and refused.data["reason"] == "asker"


def test_claim_resolve_and_back_to_the_bot_follow_their_rules(world: World) -> None:
    conv = world.ask("what's for lunch in the cafeteria today?")

    assert world.service.act(conv.id, HelpdeskAction.CLAIM, "UAGENT") == "It is yours."
    assert "Only the asker" in world.service.act(conv.id, HelpdeskAction.BACK, "USTRANGER")
    assert "Only the asker or" in world.service.act(conv.id, HelpdeskAction.RESOLVED, "USTRANGER")
    assert world.service.act(conv.id, HelpdeskAction.RESOLVED, "UAGENT") == "Marked resolved."

    assert world.repo.get(conv.id).state is ConversationState.RESOLVED
    assert world.types(conv.id)[-2:] == [EventType.HELPDESK_REFUSED, EventType.HELPDESK_RESOLVED]
    assert any("<@UAGENT> is on it." in t for t in world.chat.texts())
    assert verify_chain(world.repo.events(conv.id)) == []


@pytest.mark.parametrize("secret_text", [f"my password is {SECRET}", f"the bot token {TOKEN} stopped working"])
def test_a_secret_appears_nowhere(world: World, caplog: pytest.LogCaptureFixture, secret_text: str) -> None:
    secret = SECRET if SECRET in secret_text else TOKEN
    caplog.set_level(logging.DEBUG)

    conv = world.ask(f"help, {secret_text}, what now?")
    world.service.act(conv.id, HelpdeskAction.CLAIM, "UAGENT")

    assert conv.triage.redacted
    stored = [json.dumps(e.model_dump(mode="json")) for e in world.repo.events(conv.id)]
    stored.append(world.repo.get(conv.id).model_dump_json())
    posted = [p[4].model_dump_json() for p in world.chat.posts]
    tickets = [t.model_dump_json() for t in world.tickets.tickets]
    assert tickets, "a message with a secret is handed off with a ticket"
    for blob in [*stored, *posted, *tickets, caplog.text]:
        assert secret not in blob
    assert "Rotate" in world.chat.posts[0][4].text or "Change that password" in world.chat.posts[0][4].text

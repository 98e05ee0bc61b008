"""The helpdesk's Slack entry points on the bolt app, driven by signed Events API payloads, /ask-it and
button clicks through the same verification as production, lazy listeners inline, the fake Web API on
loopback. Conversations on the DynamoDB adapter (moto) in one test, in-memory elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.fake_slack import FakeSlack, block_actions_payload, interactivity_body, slash_command_body
from signoff.adapters.helpdesk_store import DynamoConversationRepository
from signoff.adapters.teams_store import DynamoActivityLog
from signoff.audit.events import EventType, verify_chain
from signoff.domain.helpdesk.router import load_helpdesk
from signoff.ports import ActivityLog, ConversationRepository
from signoff.surfaces.slack.app import InlineLazyListenerRunner, build_app, handle, request_handler
from signoff.surfaces.slack.chat import web_client
from signoff.surfaces.slack.helpdesk import HelpdeskListeners, SlackHelpdeskChat
from signoff.testing.memory import (
    FixedClock,
    InMemoryActivityLog,
    InMemoryCheckpointRepository,
    InMemoryConversationRepository,
    InMemoryTicketing,
    InMemoryWorkflow,
)
from signoff.usecases.decisions import DecisionService
from signoff.usecases.helpdesk import HelpdeskService
from tests.helpers import FakeLambdaContext, api_event
from tests.slackfakes import SIGNING_SECRET, fake_slack, shipped_routing, signed_request

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
TEAM = "T0SIGNOFF"
ASKER = "U0ASKER"
FAQ = "How do I connect to the VPN from home?"


@dataclass
class Desk:
    fake: FakeSlack
    repo: ConversationRepository = field(default_factory=InMemoryConversationRepository)
    claims: ActivityLog = field(default_factory=InMemoryActivityLog)
    tickets: InMemoryTicketing = field(default_factory=InMemoryTicketing)

    def __post_init__(self) -> None:
        routing = shipped_routing()
        self.client = web_client(self.fake.token, self.fake.url)
        clock = FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
        self.service = HelpdeskService(HELPDESK, self.repo, SlackHelpdeskChat(self.client), clock, self.tickets)
        app = build_app(
            signing_secret=SIGNING_SECRET,
            client=self.client,
            decisions=DecisionService(InMemoryCheckpointRepository(), clock, InMemoryWorkflow()),
            routing=routing,
            repository=InMemoryCheckpointRepository(),
            helpdesk=HelpdeskListeners(self.service, self.claims),
        )
        self.handler = request_handler(app, InlineLazyListenerRunner())
        self._n = 0

    def send(self, body: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        signed = {**signed_request(body, SIGNING_SECRET), **(headers or {})}
        return handle(api_event("POST", "/slack/events", body=body, headers=signed), FakeLambdaContext(), self.handler)

    def post_as_user(self, channel: str, text: str) -> str:
        """The employee's message, as Slack stores it (the thread the bot answers in)."""
        return str(self.client.chat_postMessage(channel=channel, text=text)["ts"])

    def event(self, text: str, *, channel: str = "C01ITHELP", type_: str = "message", **extra: Any) -> dict[str, Any]:
        self._n += 1
        ts = extra.pop("ts", None) or self.post_as_user(channel, text)
        event = {"type": type_, "user": ASKER, "text": text, "channel": channel, "ts": ts, "channel_type": "channel"}
        return {
            "token": "legacy",
            "team_id": TEAM,
            "api_app_id": "A0SIGNOFF",
            "type": "event_callback",
            "event_id": f"Ev{self._n:08d}",
            "event_time": 1700000000,
            "event": {**event, **extra},
        }

    def bot_replies(self, channel: str = "C01ITHELP") -> list[Any]:
        """The bot's thread replies in `channel`, oldest first."""
        found = [m for (ch, _), replies in self.fake.threads().items() if ch == channel for m in replies]
        return sorted(found, key=lambda m: m.ts)

    def click(self, user: str, conversation_id: str, act: str, channel: str, ts: str) -> dict[str, Any]:
        payload = block_actions_payload(TEAM, user, conversation_id, act, channel, ts, "1.2.trigger")
        payload["actions"][0]["action_id"] = f"helpdesk:{act}"
        return self.send(interactivity_body(payload))


@pytest.fixture
def desk() -> Iterator[Desk]:
    with fake_slack() as fake:
        yield Desk(fake)


def _all_texts(desk: Desk) -> str:
    return json.dumps([c.params for c in desk.fake.calls()])


def test_url_verification_is_answered_with_the_challenge(desk: Desk) -> None:
    body = json.dumps(
        {
            "token": "legacy",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )

    response = desk.send(body)

    assert response["statusCode"] == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response["body"]


def test_an_unsigned_event_is_refused_and_nothing_runs(desk: Desk) -> None:
    body = json.dumps(desk.event(FAQ))

    response = desk.send(body, headers={"X-Slack-Signature": "v0=" + "0" * 64})

    assert response["statusCode"] == 401 and desk.bot_replies() == []


def test_a_faq_in_a_helpdesk_channel_gets_a_threaded_cited_answer_with_three_buttons(desk: Desk) -> None:
    response = desk.send(json.dumps(desk.event(FAQ)))

    assert response["statusCode"] == 200
    [reply] = desk.bot_replies()
    assert "Source:" in reply.block_text() and "Next step:" in reply.block_text()
    assert reply.action_ids() == ["helpdesk:helpful", "helpdesk:not_helpful", "helpdesk:human"]


def test_a_retried_delivery_changes_nothing(desk: Desk) -> None:
    body = json.dumps(desk.event(FAQ))

    desk.send(body)
    desk.send(body, headers={"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    assert len(desk.bot_replies()) == 1


def test_a_mention_and_its_message_event_are_answered_once(desk: Desk) -> None:
    listeners_bot = "U0SIGNOFFBOT"
    mention = desk.event(f"<@{listeners_bot}> {FAQ}", type_="app_mention")
    message = {**mention, "event_id": "EvOTHER", "event": {**mention["event"], "type": "message"}}

    desk.send(json.dumps(mention))
    desk.send(json.dumps(message))

    assert len(desk.bot_replies()) == 1


@pytest.mark.parametrize(
    "extra",
    [
        {"bot_id": "B0SIGNOFF"},  # a bot, this one included
        {"subtype": "message_changed"},  # an edit
        {"subtype": "channel_join"},  # a join
        {"channel": "C0NOTHELP"},  # a channel helpdesk.yaml does not list
    ],
)
def test_bot_messages_edits_joins_and_other_channels_are_ignored(desk: Desk, extra: dict[str, Any]) -> None:
    channel = extra.get("channel", "C01ITHELP")
    response = desk.send(
        json.dumps(desk.event(FAQ, channel=channel, **{k: v for k, v in extra.items() if k != "channel"}))
    )

    assert response["statusCode"] == 200
    assert desk.bot_replies(channel) == []
    assert not desk.fake.calls("chat.postEphemeral")


def test_a_direct_message_is_answered_in_the_dm(desk: Desk) -> None:
    dm = FakeSlack.dm_channel(ASKER)

    desk.send(json.dumps(desk.event(FAQ, channel=dm, channel_type="im")))

    assert any("Source:" in m.block_text() for m in desk.bot_replies(dm))


def test_ask_it_acks_at_once_and_answers_the_asker_privately(desk: Desk) -> None:
    response = desk.send(slash_command_body(TEAM, ASKER, FAQ, command="/ask-it", channel="C01ITHELP"))

    assert response["statusCode"] == 200 and "Looking into it" in response["body"]
    [ephemeral] = desk.fake.ephemerals(ASKER)
    assert "Source:" in json.dumps(ephemeral)


def test_talk_to_a_human_hands_off_with_a_ticket_and_the_asker_cannot_claim_it(desk: Desk) -> None:
    desk.send(json.dumps(desk.event(FAQ)))
    [answer] = desk.bot_replies()
    conversation_id = json.loads(json.dumps(answer.blocks))[-1]["elements"][0]["value"]

    desk.click(ASKER, conversation_id, "human", "C01ITHELP", answer.ts)
    desk.click(ASKER, conversation_id, "claim", "C01ITHELP", answer.ts)

    handoff = desk.bot_replies()[-1]
    assert "*Request:*" in handoff.block_text() and "IT-1" in handoff.block_text()
    assert handoff.action_ids() == ["helpdesk:claim", "helpdesk:resolved", "helpdesk:back"]
    assert "<!subteam^S01ITHELP>" in json.dumps(handoff.blocks)
    assert any("someone else must claim" in str(e["text"]) for e in desk.fake.ephemerals(ASKER))
    types = [e.type for e in desk.repo.events(conversation_id)]
    assert types[-2:] == [EventType.HELPDESK_HANDED_OFF, EventType.HELPDESK_REFUSED]


def test_a_secret_in_a_message_reaches_no_slack_call_ticket_or_trail(desk: Desk) -> None:
    secret = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
    text = f"our deploy bot token {secret} leaked, what do I do?"
    event = desk.event(text, ts="1700000000.000100")
    desk.fake.reset()  # the employee's own message is Slack's, not ours
    desk.client.chat_postMessage(channel="C01ITHELP", text="(root)")  # a thread root for the reply

    desk.send(json.dumps({**event, "event": {**event["event"], "ts": desk.fake.messages("C01ITHELP")[0].ts}}))

    calls = json.dumps([c.params for c in desk.fake.calls() if c.params.get("text") != "(root)"])
    assert desk.fake.calls("chat.postMessage")[-1].params["channel"] == ASKER  # a secret: answered by DM
    assert desk.tickets.tickets and secret not in calls
    assert all(secret not in t.model_dump_json() for t in desk.tickets.tickets)
    events = [e for conv in desk.repo._events for e in desk.repo.events(conv)]  # type: ignore[attr-defined]
    assert events and all(secret not in json.dumps(e.model_dump(mode="json")) for e in events)


def test_conversations_and_claims_on_dynamodb_chain_and_archive_like_checkpoints(tables: Any) -> None:
    with fake_slack() as fake:
        repo = DynamoConversationRepository(tables.table_name, tables.client)
        claims = DynamoActivityLog(tables.idempotency_table_name, tables.client, prefix="slack-event#")
        desk = Desk(fake, repo=repo, claims=claims)
        body = json.dumps(desk.event(FAQ))

        desk.send(body)
        desk.send(body, headers={"X-Slack-Retry-Num": "2"})

        assert len(desk.bot_replies()) == 1
        items = tables.items()
        events = [i for i in items if i["item_type"]["S"] == "audit_event"]
        assert {i["pk"]["S"][:3] for i in events} == {"HD#"}
        conversation_id = events[0]["checkpoint_id"]["S"]
        assert verify_chain(repo.events(conversation_id)) == []
        assert [e.type for e in repo.events(conversation_id)] == [EventType.HELPDESK_TRIAGED, EventType.HELPDESK_POSTED]
        claimed = boto3.client("dynamodb").scan(TableName=tables.idempotency_table_name)["Items"]
        assert [c["id"]["S"].split("#")[0] for c in claimed] == ["slack-event"]

"""Bedrock on the Slack path: the ack answers with no model call (and no Bedrock client built); the
model drafts in the lazy half only, and its grounded answer is what gets posted in the thread."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.lazy_listener import LazyListenerRunner
from slack_bolt.request import BoltRequest

from local.fake_slack import FakeSlack
from signoff.adapters.bedrock import bedrock_adapter
from signoff.domain.helpdesk.config import BedrockModel
from signoff.domain.helpdesk.router import load_helpdesk
from signoff.surfaces.slack.app import InlineLazyListenerRunner, build_app, handle, request_handler
from signoff.surfaces.slack.chat import web_client
from signoff.surfaces.slack.helpdesk import HelpdeskListeners, SlackHelpdeskChat
from signoff.testing.memory import (
    FixedClock,
    InMemoryActivityLog,
    InMemoryCheckpointRepository,
    InMemoryConversationRepository,
    InMemoryWorkflow,
)
from signoff.usecases.decisions import DecisionService
from signoff.usecases.helpdesk import HelpdeskService
from tests.helpers import FakeLambdaContext, api_event
from tests.slackfakes import SIGNING_SECRET, fake_slack, shipped_routing, signed_request

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODEL = BedrockModel(model_id="anthropic.claude-3-5-haiku-20241022-v1:0", region="us-east-1")
FAQ = "How do I connect to the VPN from home?"


class CountingBedrock:
    """A bedrock-runtime client that answers Converse in its wire shape and counts the calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def converse(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        text = "Open GlobalProtect and connect to the portal [1]. Sign in with Okta [1]."
        return {"output": {"message": {"role": "assistant", "content": [{"text": text}]}}, "stopReason": "end_turn"}


class DeferredLazyRunner(LazyListenerRunner):
    """Keeps lazy listeners for later, as Lambda does (it re-invokes the function after the ack)."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []
        self.inline = InlineLazyListenerRunner()

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        self.pending.append(lambda: self.inline.start(function, request))


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fake_slack() as slack:
        yield slack


def test_the_ack_makes_no_model_call_and_the_lazy_half_posts_the_grounded_draft(fake: FakeSlack) -> None:
    bedrock = CountingBedrock()
    built: list[str] = []
    desk = load_helpdesk(ROOT / "helpdesk.yaml")
    adapt = bedrock_adapter(MODEL, "Lumen Freight", desk.knowledge, runtime_client=bedrock)
    desk.adapt = lambda models: (built.append("bedrock"), adapt(models))[1]
    client = web_client(fake.token, fake.url)
    clock = FixedClock(datetime(2026, 11, 16, 9, 0, tzinfo=UTC))
    service = HelpdeskService(desk, InMemoryConversationRepository(), SlackHelpdeskChat(client), clock)
    app = build_app(
        signing_secret=SIGNING_SECRET,
        client=client,
        decisions=DecisionService(InMemoryCheckpointRepository(), clock, InMemoryWorkflow()),
        routing=shipped_routing(),
        repository=InMemoryCheckpointRepository(),
        helpdesk=HelpdeskListeners(service, InMemoryActivityLog()),
    )
    runner = DeferredLazyRunner()
    handler = request_handler(app, runner)
    ts = str(client.chat_postMessage(channel="C01ITHELP", text=FAQ)["ts"])
    event = {"type": "message", "user": "U0ASKER", "text": FAQ, "channel": "C01ITHELP", "ts": ts}
    body = json.dumps(
        {"team_id": "T0SIGNOFF", "api_app_id": "A0", "type": "event_callback", "event_id": "Ev1", "event": event}
    )

    # The ack: 200, and neither a model call nor even a Bedrock client
    response = handle(
        api_event("POST", "/slack/events", body=body, headers=signed_request(body, SIGNING_SECRET)),
        FakeLambdaContext(),
        handler,
    )
    assert response["statusCode"] == 200
    assert bedrock.calls == [] and built == []
    assert len(runner.pending) == 1

    # The lazy half: one Converse call, and its cited answer in the thread
    runner.pending.pop()()
    assert len(bedrock.calls) == 1 and built == ["bedrock"]
    replies = [m for (ch, _), rs in fake.threads().items() if ch == "C01ITHELP" for m in rs]
    [reply] = replies
    assert "Open GlobalProtect and connect to the portal. Sign in with Okta." in reply.block_text()
    assert "Source: Connecting to the VPN" in reply.block_text()

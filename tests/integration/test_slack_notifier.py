"""SlackChat (the Chat port on Slack's Web API) against the fake Slack: channel and DM posts, in-place
updates, thread replies with mentions, escalation notices, unreachable recipients, retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError

from local.fake_slack import FakeSlack
from signoff.domain.cards import build_card
from signoff.domain.models import MessageRef
from signoff.domain.routing import LoadedRouting
from signoff.surfaces.slack.blocks import card_blocks
from signoff.surfaces.slack.chat import SlackChat, web_client
from tests.slackfakes import fake_slack, make_checkpoint, routing_with, shipped_routing

pytestmark = pytest.mark.integration


@pytest.fixture
def routing() -> LoadedRouting:
    return shipped_routing()


@pytest.fixture
def fake(routing: LoadedRouting) -> Iterator[FakeSlack]:
    with fake_slack(routing) as f:
        yield f


@pytest.fixture
def chat(fake: FakeSlack, routing: LoadedRouting) -> SlackChat:
    return SlackChat(web_client(fake.token, fake.url), routing)


def test_a_card_posted_to_a_channel_comes_back_as_a_ref(fake: FakeSlack, chat: SlackChat) -> None:
    card = build_card(make_checkpoint("hard"))

    ref = chat.post_card("C0RELEASE", None, card)

    assert ref is not None and (ref.surface, ref.channel, ref.kind) == ("slack", "C0RELEASE", "card")
    (message,) = fake.messages("C0RELEASE")
    assert message.ts == ref.ts and message.blocks == card_blocks(card)
    (call,) = fake.calls("chat.postMessage")
    assert call.params["unfurl_links"] is False and call.token == fake.token


def test_a_card_for_a_person_goes_to_their_direct_messages(fake: FakeSlack, chat: SlackChat) -> None:
    ref = chat.post_card(None, "carol@example.com", build_card(make_checkpoint("hard")))

    assert ref is not None and ref.channel == FakeSlack.dm_channel("U0CAROL")
    assert [c.params["users"] for c in fake.calls("conversations.open")] == ["U0CAROL"]


def test_a_person_without_a_slack_id_is_found_by_email_or_reported_unreachable(fake: FakeSlack) -> None:
    routing = routing_with(
        {"people": [{"id": "henry@example.com", "name": "Henry Ito"}, {"id": "ivy@example.com", "name": "Ivy"}]}
    )
    chat = SlackChat(web_client(fake.token, fake.url), routing)
    fake.add_user("U0HENRY", name="Henry Ito", email="henry@example.com")
    card = build_card(make_checkpoint("hard"))

    henry = chat.post_card(None, "henry@example.com", card)
    ivy = chat.post_card(None, "ivy@example.com", card)  # not in the Slack workspace
    nobody = chat.post_card(None, "not-in-directory@example.com", card)

    assert henry is not None and henry.channel == FakeSlack.dm_channel("U0HENRY")
    assert ivy is None and nobody is None
    assert fake.channels() == [FakeSlack.dm_channel("U0HENRY")]


def test_an_unreachable_channel_is_none_but_other_errors_raise(fake: FakeSlack, chat: SlackChat) -> None:
    card = build_card(make_checkpoint("hard"))
    fake.unknown_channels.add("C0GONE")

    assert chat.post_card("C0GONE", None, card) is None

    bad_token = SlackChat(web_client("xoxb-wrong", fake.url), shipped_routing())
    with pytest.raises(SlackApiError) as raised:
        bad_token.post_card("C0RELEASE", None, card)
    assert raised.value.response["error"] == "invalid_auth"


@pytest.mark.parametrize(
    ("status", "error", "headers"),
    [(429, "ratelimited", {"Retry-After": "0"}), (503, "service_unavailable", {})],
    ids=["rate limited", "server error"],
)
def test_rate_limits_and_server_errors_are_retried(
    fake: FakeSlack, chat: SlackChat, status: int, error: str, headers: dict[str, str]
) -> None:
    fake.fail("chat.postMessage", error, status=status, headers=headers)

    ref = chat.post_card("C0RELEASE", None, build_card(make_checkpoint("hard")))

    assert ref is not None and len(fake.calls("chat.postMessage")) == 2 and len(fake.messages("C0RELEASE")) == 1


def test_update_replaces_the_card_in_place_and_tolerates_a_deleted_message(fake: FakeSlack, chat: SlackChat) -> None:
    cp = make_checkpoint("soft")
    ref = chat.post_card("C0PAYMENTS", None, build_card(cp))
    assert ref is not None
    cancelled = cp.model_copy(update={"status": "CANCELLED", "decided_by": "ops", "decided_at": cp.created_at})

    chat.update_card(ref, build_card(cancelled))
    chat.update_card(MessageRef(surface="slack", channel="C0PAYMENTS", ts="1.000000"), build_card(cancelled))

    (message,) = fake.messages("C0PAYMENTS")
    assert message.updates == 1 and message.action_ids() == []
    assert "Cancelled by ops at 12:00 UTC" in message.block_text()


def test_a_reply_goes_in_the_thread_and_mentions_the_person(fake: FakeSlack, chat: SlackChat) -> None:
    ref = chat.post_card("C0RELEASE", None, build_card(make_checkpoint("hard")))
    assert ref is not None

    chat.reply(ref, "Is the <backfill> throttled?", mention="alice@example.com")

    (reply,) = fake.replies("C0RELEASE", ref.ts)
    assert reply.text == "<@U0ALICE> Is the &lt;backfill&gt; throttled?"


def test_an_escalation_notice_says_why_and_carries_the_card(fake: FakeSlack, chat: SlackChat) -> None:
    card = build_card(make_checkpoint("hard"))

    ref = chat.post_notice("C0LEADS", None, "Escalated to team-leads: no decision yet", card)

    assert ref is not None and ref.kind == "escalation"
    (notice,) = fake.messages("C0LEADS")
    assert notice.text == "Escalated to team-leads: no decision yet"
    assert notice.blocks[0]["text"]["text"] == ":rotating_light: Escalated to team-leads: no decision yet"
    assert notice.blocks[1:] == card_blocks(card)

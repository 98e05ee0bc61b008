"""SlackChat (the Chat port on Slack's Web API) against the fake Slack: channel and DM posts, in-place
updates, thread replies with mentions, escalation notices, unreachable recipients, retries."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from local.fake_slack import FakeSlack
from signoff.domain.cards import build_card
from signoff.domain.models import MessageRef
from signoff.domain.routing import LoadedRouting
from signoff.surfaces.slack.blocks import card_blocks
from signoff.surfaces.slack.chat import SlackChat, SlackChatError, web_client
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
    # Retried at once: the backoff between retries is slack_sdk's, not what these tests check.
    return SlackChat(web_client(fake.token, fake.url, interval=NO_WAIT), routing)


NO_WAIT = FixedValueRetryIntervalCalculator(0.0)


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
    # and it says what it is: a refusal trying again will not change
    assert isinstance(raised.value, SlackChatError)
    assert (raised.value.code, raised.value.transient, raised.value.unreachable) == ("invalid_auth", False, False)
    assert len([c for c in fake.calls("chat.postMessage") if c.token == "xoxb-wrong"]) == 1  # not retried


def test_delivering_to_a_refused_channel_says_why(fake: FakeSlack, chat: SlackChat) -> None:
    fake.unknown_channels.add("C0GONE")
    with pytest.raises(SlackChatError) as raised:
        chat.deliver_card("C0GONE", None, build_card(make_checkpoint("hard")))
    assert (raised.value.code, raised.value.transient, raised.value.unreachable) == ("channel_not_found", False, True)
    assert str(raised.value).startswith("slack chat.postMessage: 200 channel_not_found")


@pytest.mark.parametrize(
    ("status", "error"),
    [(200, "internal_error"), (200, "service_unavailable"), (503, "service_unavailable")],
    ids=["ok-false-internal-error", "ok-false-unavailable", "http-503"],
)
def test_transient_errors_are_retried_with_backoff_then_posted_once(
    fake: FakeSlack, chat: SlackChat, status: int, error: str
) -> None:
    # Given Slack failing twice (ok:false with HTTP 200 is retried too: slack_sdk's own handlers skip it)
    fake.fail("chat.postMessage", error, status=status, times=2)
    # When a card is posted
    ref = chat.post_card("C0RELEASE", None, build_card(make_checkpoint("hard")))
    # Then the third try got through, and the channel has the card once
    assert ref is not None and len(fake.calls("chat.postMessage")) == 3
    assert len(fake.messages("C0RELEASE")) == 1


def test_a_transient_error_outlasting_the_retries_is_raised_as_transient(fake: FakeSlack, chat: SlackChat) -> None:
    fake.fail("chat.postMessage", "internal_error", status=500, times=5)
    with pytest.raises(SlackChatError) as raised:
        chat.post_card("C0RELEASE", None, build_card(make_checkpoint("hard")))
    assert (raised.value.code, raised.value.status, raised.value.transient) == ("internal_error", 500, True)
    assert len(fake.calls("chat.postMessage")) == 3  # the first try and two retries
    assert fake.messages("C0RELEASE") == []


def test_a_card_update_that_keeps_failing_raises_its_code_without_the_card(fake: FakeSlack, chat: SlackChat) -> None:
    cp = make_checkpoint("soft")
    ref = chat.post_card("C0PAYMENTS", None, build_card(cp))
    assert ref is not None
    fake.fail("chat.update", "ratelimited", status=429, times=5, headers={"Retry-After": "0"})
    with pytest.raises(SlackChatError) as raised:
        chat.update_card(ref, build_card(cp))
    assert (raised.value.code, raised.value.transient, raised.value.retry_after) == ("ratelimited", True, 0.0)
    assert cp.request.summary not in str(raised.value) and "blocks" not in str(raised.value)
    assert len(fake.calls("chat.update")) == 3


def test_a_dropped_connection_is_retried_then_raised_as_transient(fake: FakeSlack, routing: LoadedRouting) -> None:
    # Given nothing listening where Slack should be (a closed local port; the fake keeps loopback open)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api/"
    chat = SlackChat(web_client("xoxb-test", url, interval=NO_WAIT), routing)
    # When a card is posted
    with pytest.raises(SlackChatError) as raised:
        chat.post_card("C0RELEASE", None, build_card(make_checkpoint("hard")))
    # Then it says so as something that may pass
    assert (raised.value.code, raised.value.status, raised.value.transient) == ("connection_failed", None, True)


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

"""The Bot Connector client and TeamsChat against the fake connector on 127.0.0.1: the bot token
(client credentials, cached, renewed), where it may be sent, retries, and the Chat port."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import formatdate

import pytest

from local.fake_teams import FakeTeams
from signoff.domain.cards import build_card
from signoff.domain.models import MessageRef
from signoff.ports import ConversationReference
from signoff.surfaces.teams.chat import TeamsChat
from signoff.surfaces.teams.connector import SCOPE, BotConnector, BotCredentials, ConnectorError, UntrustedServiceUrl
from signoff.testing.memory import InMemoryReferenceStore
from tests.slackfakes import make_checkpoint
from tests.teamsfakes import CHANNELS, teams_routing

pytestmark = pytest.mark.integration

CARD = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.5", "body": []}}]}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1_767_268_800.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeTeams]:
    with FakeTeams() as f:
        yield f


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def bot(fake: FakeTeams, clock: Clock) -> BotConnector:
    return BotConnector(
        BotCredentials(fake.app_id, fake.app_password, fake.tenant),
        login_url=fake.login_url,
        trusted_hosts=[fake.host],
        sleep=clock.sleep,
        clock=lambda: clock.now,
    )


def test_the_bot_token_comes_from_client_credentials_and_is_reused_until_near_expiry(
    fake: FakeTeams, bot: BotConnector, clock: Clock
) -> None:
    # When the bot posts twice
    bot.send(fake.service_url, CHANNELS["release"], CARD)
    bot.send(fake.service_url, CHANNELS["release"], CARD)

    # Then one token was asked for, the Entra ID way, and both posts carried it
    (asked,) = fake.calls("token")
    assert asked.path == f"/{fake.tenant}/oauth2/v2.0/token"
    assert asked.body == {"grant_type": "client_credentials", "client_id": fake.app_id,
                          "client_secret": fake.app_password, "scope": SCOPE}  # fmt: skip
    assert len({c.token for c in fake.calls("send")}) == 1

    # When the token is within five minutes of expiring, a new one is fetched
    clock.now += fake.token_lifetime - 299
    bot.send(fake.service_url, CHANNELS["release"], CARD)
    assert len(fake.calls("token")) == 2


def test_a_rejected_token_is_renewed_once(fake: FakeTeams, bot: BotConnector) -> None:
    bot.send(fake.service_url, CHANNELS["release"], CARD)
    fake.revoke_tokens()

    bot.send(fake.service_url, CHANNELS["release"], CARD)

    assert [c.operation for c in fake.calls()] == ["token", "send", "send", "token", "send"]


def test_wrong_credentials_fail_loudly_with_the_oauth_error_code(fake: FakeTeams) -> None:
    bot = BotConnector(
        BotCredentials(fake.app_id, "wrong", fake.tenant), login_url=fake.login_url, trusted_hosts=[fake.host]
    )

    with pytest.raises(ConnectorError) as failed:
        bot.send(fake.service_url, CHANNELS["release"], CARD)

    assert (failed.value.status, failed.value.code) == (401, "invalid_client")
    assert "wrong" not in str(failed.value)


@pytest.mark.parametrize(
    "service_url",
    [
        "https://smba.evil.example/teams/",
        "https://smba.trafficmanager.net.evil.example/teams/",
        "https://botframework.com.evil.example/",
        "http://smba.trafficmanager.net/teams/",  # not https
        "http://10.0.0.5/teams/",
    ],
)
def test_the_bot_token_is_never_sent_to_a_host_off_the_allow_list(
    fake: FakeTeams, bot: BotConnector, service_url: str
) -> None:
    with pytest.raises(UntrustedServiceUrl):
        bot.send(service_url, CHANNELS["release"], CARD)

    assert fake.calls() == []  # not even a token was fetched


def test_the_connectors_own_hosts_are_trusted() -> None:
    from signoff.surfaces.teams.connector import CONNECTOR_HOSTS, trusted_service_url

    for url in ("https://smba.trafficmanager.net/amer/", "https://europe.webchat.botframework.com/"):
        assert trusted_service_url(url, CONNECTOR_HOSTS)
    assert not trusted_service_url("https://127.0.0.1/teams/", CONNECTOR_HOSTS)


def test_throttling_and_server_errors_are_retried_with_backoff(
    fake: FakeTeams, bot: BotConnector, clock: Clock
) -> None:
    fake.fail("send", 429, code="Throttled", headers={"Retry-After": "2"})
    fake.fail("send", 503)

    activity_id = bot.send(fake.service_url, CHANNELS["release"], CARD)

    assert activity_id and len(fake.calls("send")) == 3
    assert clock.slept[0] == 2.0 and len(clock.slept) == 2


def test_retry_after_as_an_http_date_is_honoured_up_to_ten_seconds(
    fake: FakeTeams, bot: BotConnector, clock: Clock
) -> None:
    fake.fail("send", 503, headers={"Retry-After": formatdate(clock.now + 4, usegmt=True)})
    fake.fail("send", 429, headers={"Retry-After": formatdate(clock.now + 600, usegmt=True)})

    bot.send(fake.service_url, CHANNELS["release"], CARD)

    assert clock.slept == [4.0, 10.0]


def test_it_gives_up_after_three_attempts(fake: FakeTeams, bot: BotConnector) -> None:
    fake.fail("update", 500, times=3)

    with pytest.raises(ConnectorError) as failed:
        bot.update(fake.service_url, CHANNELS["release"], "1", CARD)

    assert failed.value.status == 500 and not failed.value.unreachable and len(fake.calls("update")) == 3


# -- TeamsChat -------------------------------------------------------------------------------------------


@pytest.fixture
def chat(fake: FakeTeams, bot: BotConnector) -> TeamsChat:
    routing = teams_routing()
    for person in routing.routing.people:
        if person.teams:
            fake.add_user(person.teams.aad, name=person.name, email=person.id)
    return TeamsChat(bot, routing, InMemoryReferenceStore(), tenant_id=fake.tenant, service_url=fake.service_url)


def test_a_card_posted_to_a_channel_uses_its_stored_service_url(fake: FakeTeams, chat: TeamsChat) -> None:
    regional = f"{fake.url}/amer/"
    chat.references.put_reference(ConversationReference(
        conversation_id=CHANNELS["release"], service_url=regional, tenant_id=fake.tenant, updated_at=datetime.now(UTC),
    ))  # fmt: skip

    ref = chat.post_card(CHANNELS["release"], None, build_card(make_checkpoint("hard")))

    assert ref is not None and (ref.surface, ref.channel, ref.kind, ref.service_url) == (
        "teams", CHANNELS["release"], "card", regional,
    )  # fmt: skip
    (posted,) = fake.activities(CHANNELS["release"])
    assert (
        posted.id == ref.ts and posted.card is not None and posted.body["summary"].startswith("[Checkpoint Required]")
    )
    assert fake.calls("send")[0].path.startswith("/amer/v3/conversations/19%3Arelease%40thread.tacv2/")


def test_a_card_for_a_person_goes_to_their_one_to_one_chat_opened_once(fake: FakeTeams, chat: TeamsChat) -> None:
    card = build_card(make_checkpoint("hard"))

    first = chat.post_card(None, "carol@example.com", card)
    second = chat.post_card(None, "carol@example.com", card)

    carol = "33333333-3333-4333-8333-333333333333"
    assert first is not None and second is not None and first.channel == FakeTeams.personal_conversation(carol)
    (opened,) = fake.calls("create")
    assert opened.body["members"] == [{"id": carol}] and opened.body["bot"] == {"id": f"28:{fake.app_id}"}
    assert opened.body["tenantId"] == fake.tenant


def test_unreachable_recipients_are_reported_not_raised(fake: FakeTeams, chat: TeamsChat) -> None:
    fake.unknown_conversations.add(CHANNELS["payments"])
    card = build_card(make_checkpoint("hard"))

    assert chat.post_card(CHANNELS["payments"], None, card) is None
    assert chat.post_card(None, "nobody@example.com", card) is None  # not in the directory
    fake.users.clear()
    assert chat.post_card(None, "dave@example.com", card) is None  # the bot cannot reach him


def test_updating_a_card_that_is_gone_is_logged_and_skipped(fake: FakeTeams, chat: TeamsChat) -> None:
    ref = MessageRef(surface="teams", channel=CHANNELS["release"], ts="404", service_url=fake.service_url)

    chat.update_card(ref, build_card(make_checkpoint("hard")))

    assert [c.operation for c in fake.calls()] == ["token", "update"]

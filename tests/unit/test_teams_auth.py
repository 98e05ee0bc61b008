"""The Bot Connector's JWT, checked without a network: keys served by an in-memory JWKS, tokens
minted like the connector mints them (infra/local/fake_teams.py), a fixed clock. Fetching the
keys is tested against a JWKS on 127.0.0.1, the only address these tests may connect to."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.error import HTTPError

import jwt
import pytest

from local.fake_teams import (
    APP_ID,
    TENANT,
    Conversation,
    SigningKey,
    TeamsUser,
    installation_update,
    invoke_action,
    mint_token,
)
from signoff.surfaces.teams.auth import (
    BotAuthenticator,
    ExpiredToken,
    ForeignKey,
    KeysUnavailable,
    MalformedToken,
    MissingEndorsement,
    ServiceUrlMismatch,
    SigningKeys,
    TeamsAuthError,
    TenantNotAllowed,
    WrongAudience,
    WrongIssuer,
    activity_tenant,
    fetch_json,
)

pytestmark = pytest.mark.unit

NOW = 1_767_268_800.0  # 2026-01-01T12:00:00Z
SERVICE_URL = "https://smba.trafficmanager.net/amer/"
KEY = SigningKey.named("fake-teams-key-1")
WEBCHAT = SigningKey.named("fake-webchat-key", endorsements=("webchat",))
STRANGER = SigningKey.named("somebody-elses-key")
BOB = TeamsUser("22222222-2222-4222-8222-222222222222", "Bob Chen", "bob@example.com")
CHANNEL = Conversation("19:release@thread.tacv2", team_id="19:signoff-team@thread.tacv2")


class Jwks:
    """An in-memory JWKS endpoint that counts fetches and can fail."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.fetches = 0
        self.down = False

    def __call__(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        if self.down:
            raise OSError("connection refused")
        return {"keys": [k.jwk() for k in self.keys]}


class Clock:
    def __init__(self) -> None:
        self.wall = NOW
        self.monotonic = 1000.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jwks() -> Jwks:
    return Jwks(KEY, WEBCHAT)


@pytest.fixture
def auth(jwks: Jwks, clock: Clock) -> BotAuthenticator:
    keys = SigningKeys(
        "https://login.botframework.com/v1/.well-known/keys", fetch=jwks, monotonic=lambda: clock.monotonic
    )
    return BotAuthenticator(APP_ID, keys, [TENANT], clock=lambda: clock.wall)


def click() -> dict[str, Any]:
    return invoke_action(BOB, CHANNEL, "approve", {"checkpoint_id": "cp_x"}, service_url=SERVICE_URL, reply_to="1")


def token(activity: dict[str, Any], key: SigningKey = KEY, **claims: Any) -> str:
    return "Bearer " + mint_token(activity, key, now=NOW, **claims)


def test_a_token_the_connector_signed_for_this_bot_and_tenant_is_accepted(auth: BotAuthenticator) -> None:
    activity = click()

    caller = auth.authenticate(token(activity), activity)

    assert (caller.app_id, caller.service_url, caller.tenant_id) == (APP_ID, SERVICE_URL, TENANT)


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"audience": "another-bot-app-id"}, WrongAudience),
        ({"issuer": "https://sts.windows.net/evil/"}, WrongIssuer),
        ({"expires_in": -301}, ExpiredToken),  # expired 5 min 1 s ago: beyond the leeway
        ({"not_before": NOW + 301}, ExpiredToken),  # valid only from 5 min 1 s on
        ({"service_url": "https://smba.evil.example/amer/"}, ServiceUrlMismatch),
    ],
)
def test_a_token_that_breaks_one_claim_is_refused(
    auth: BotAuthenticator, claims: dict[str, Any], error: type[TeamsAuthError]
) -> None:
    activity = click()

    with pytest.raises(error) as refused:
        auth.authenticate(token(activity, **claims), activity)

    assert refused.value.status == 401


def test_clock_skew_within_five_minutes_is_tolerated(auth: BotAuthenticator) -> None:
    activity = click()

    auth.authenticate(token(activity, expires_in=-299), activity)
    auth.authenticate(token(activity, not_before=NOW + 299), activity)


def test_a_key_not_endorsed_for_teams_is_refused(auth: BotAuthenticator) -> None:
    activity = click()

    with pytest.raises(MissingEndorsement):
        auth.authenticate(token(activity, WEBCHAT), activity)


def test_another_rsa_key_under_the_connectors_key_id_is_refused(auth: BotAuthenticator) -> None:
    activity = click()

    with pytest.raises(ForeignKey):
        auth.authenticate(token(activity, STRANGER, kid=KEY.kid), activity)


def test_an_unknown_key_id_refetches_the_keys_once_then_refuses(
    auth: BotAuthenticator, jwks: Jwks, clock: Clock
) -> None:
    # Given the keys fetched by a first request
    activity = click()
    auth.authenticate(token(activity), activity)
    assert jwks.fetches == 1
    clock.monotonic += 61

    # When a token names a key nobody published, twice
    for _ in range(2):
        with pytest.raises(ForeignKey):
            auth.authenticate(token(activity, STRANGER), activity)

    # Then the keys were fetched once more for it, not twice (rate-limited)
    assert jwks.fetches == 2

    # And a key the connector rolls over to is found by that refetch, once the interval passed
    rolled = SigningKey.named("fake-teams-key-2")
    jwks.keys.append(rolled)
    with pytest.raises(ForeignKey):
        auth.authenticate(token(activity, rolled), activity)  # within the minute: no refetch
    clock.monotonic += 61
    auth.authenticate(token(activity, rolled), activity)
    assert jwks.fetches == 3


def test_keys_are_cached_for_a_day(auth: BotAuthenticator, jwks: Jwks, clock: Clock) -> None:
    activity = click()
    for _ in range(3):
        auth.authenticate(token(activity), activity)
    clock.monotonic += 24 * 3600
    auth.authenticate(token(activity), activity)

    assert jwks.fetches == 2


def test_without_any_keys_requests_get_a_503_and_cached_keys_survive_an_outage(
    auth: BotAuthenticator, jwks: Jwks, clock: Clock
) -> None:
    activity = click()
    jwks.down = True
    with pytest.raises(KeysUnavailable) as unavailable:
        auth.authenticate(token(activity), activity)
    assert unavailable.value.status == 503

    jwks.down = False
    auth.authenticate(token(activity), activity)
    jwks.down = True
    clock.monotonic += 24 * 3600  # stale, and the refetch fails: the copy we have still works
    auth.authenticate(token(activity), activity)


@pytest.mark.parametrize("tenant_in", ["conversation", "channelData"])
def test_a_tenant_not_on_the_allow_list_is_forbidden(auth: BotAuthenticator, tenant_in: str) -> None:
    other = Conversation("19:release@thread.tacv2", tenant="00000000-0000-4000-8000-0000000e0e0e")
    activity = invoke_action(BOB, other, "approve", {}, service_url=SERVICE_URL)
    if tenant_in == "channelData":
        del activity["conversation"]["tenantId"]

    with pytest.raises(TenantNotAllowed) as refused:
        auth.authenticate(token(activity), activity)

    assert refused.value.status == 403


def test_the_tenant_is_read_from_the_conversation_or_the_channel_data() -> None:
    activity = installation_update(BOB, CHANNEL, service_url=SERVICE_URL)
    assert activity_tenant(activity) == TENANT
    del activity["conversation"]["tenantId"]
    assert activity_tenant(activity) == TENANT
    del activity["channelData"]["tenant"]
    assert activity_tenant(activity) is None


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer " + jwt.encode({"aud": APP_ID}, "k" * 32)],
    ids=["missing", "empty", "no-token", "basic", "garbage", "hs256"],
)
def test_anything_but_an_rs256_bearer_token_with_a_key_id_is_malformed(
    auth: BotAuthenticator, authorization: str | None
) -> None:
    with pytest.raises(MalformedToken):
        auth.authenticate(authorization, click())


def test_the_error_never_quotes_the_token(auth: BotAuthenticator) -> None:
    activity = click()
    bad = token(activity, audience="another-bot-app-id")

    with pytest.raises(TeamsAuthError) as refused:
        auth.authenticate(bad, activity)

    assert bad.split()[1] not in str(refused.value) and bad.split()[1][:20] not in repr(refused.value)


# -- fetching the keys ----------------------------------------------------------------------------


@pytest.fixture
def jwks_server(loopback: None) -> Iterator[tuple[str, list[str]]]:
    """A JWKS on 127.0.0.1: /keys answers the keys, /moved redirects to them; (its URL, the paths asked)."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            body = json.dumps({"keys": [KEY.jwk()]}).encode() if self.path == "/keys" else b""
            self.send_response(200 if self.path == "/keys" else 302)
            if self.path != "/keys":
                self.send_header("Location", "/keys")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


def test_the_keys_are_read_from_the_jwks_url(jwks_server: tuple[str, list[str]]) -> None:
    url, _ = jwks_server

    assert fetch_json(f"{url}/keys") == {"keys": [KEY.jwk()]}


def test_a_redirected_jwks_url_is_not_followed(jwks_server: tuple[str, list[str]]) -> None:
    # Keys from wherever a redirect points would let that host mint tokens the bot accepts.
    url, paths = jwks_server

    with pytest.raises(HTTPError) as answered:
        fetch_json(f"{url}/moved")
    answered.value.close()

    assert answered.value.code == 302 and paths == ["/moved"]

"""Slack signing-secret rotation: during the window the secret names, requests signed with the
previous secret verify; after it, only the current one does; anything else is a 401 and changes
nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from signoff.domain.models import Status
from signoff.settings import SettingsError
from signoff.surfaces.slack.app import InlineLazyListenerRunner, build_app, request_handler
from signoff.surfaces.slack.signing import accepted_secrets
from tests.slackfakes import SIGNING_SECRET, SlackWorld, slack_world

pytestmark = pytest.mark.integration

OLD = "0ld-signing-secret-being-rotated-out"
NEW = SIGNING_SECRET


@pytest.fixture
def rotating() -> Iterator[tuple[SlackWorld, dict[str, Any]]]:
    """The Slack app reading its accepted secrets per request from a rotating secret document."""
    with slack_world() as world:
        doc: dict[str, Any] = {"signing_secret": NEW, "bot_token": world.fake.token}
        world.app = build_app(
            signing_secret=lambda: accepted_secrets(doc, world.clock.now()),
            client=world.client,
            decisions=world.decisions,
            routing=world.routing,
            repository=world.repo,
            directory=world.directory,
            chats=[world.chat],
        )
        world.handler = request_handler(world.app, InlineLazyListenerRunner())
        yield world, doc


def test_the_previous_secret_verifies_until_its_window_closes(rotating: tuple[SlackWorld, dict[str, Any]]) -> None:
    world, doc = rotating
    cp = world.open("soft")
    # Given a rotation: the previous secret is accepted for one more hour
    doc |= {
        "previous_signing_secret": OLD,
        "previous_valid_until": (world.clock.now() + timedelta(hours=1)).isoformat(),
    }
    # When Slack, not yet switched over, signs a veto with the previous secret / Then it is acted on
    assert world.send(world.click_body("dave", cp, "veto"), secret=OLD)["statusCode"] == 200
    assert world.get(cp.id).status is Status.DENIED


def test_after_the_window_only_the_current_secret_verifies(rotating: tuple[SlackWorld, dict[str, Any]]) -> None:
    world, doc = rotating
    cp = world.open("soft")
    doc |= {
        "previous_signing_secret": OLD,
        "previous_valid_until": (world.clock.now() - timedelta(seconds=1)).isoformat(),
    }
    events = len(world.events(cp.id))
    # The previous secret is refused now, and nothing is recorded
    assert world.send(world.click_body("dave", cp, "veto"), secret=OLD)["statusCode"] == 401
    assert world.get(cp.id).status is Status.PENDING and len(world.events(cp.id)) == events
    # A secret that was never ours is refused too; the current one works
    assert world.send(world.click_body("dave", cp, "veto"), secret="forged")["statusCode"] == 401
    assert world.send(world.click_body("dave", cp, "veto"), secret=NEW)["statusCode"] == 200
    assert world.get(cp.id).status is Status.DENIED


def test_a_previous_secret_without_a_window_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="previous_valid_until"):
        accepted_secrets({"signing_secret": NEW, "previous_signing_secret": OLD}, now=_now())


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)

"""The Chat port on Slack's Web API: post a card to a channel or a person's DM, update it in place,
reply in its thread, post an escalation notice. It stores nothing: callers keep the returned
`MessageRef`s (channel + ts) on the checkpoint, which is all `chat.update` needs later."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from signoff.domain.cards import Card
from signoff.domain.models import MessageRef
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.settings import SettingsError
from signoff.surfaces.slack.blocks import Block, card_blocks, clip, escape, fallback_text, notice_blocks
from signoff.surfaces.slack.identity import SURFACE, SlackDirectory, error_code

SECRET_MAX_AGE = 300  # seconds Powertools keeps the secret: a rotated bot token is picked up within 5 min
# Errors that mean "this destination cannot take the message", not "try again": the caller treats
# the recipient as unreachable. Anything else raises, so a retried step posts again.
UNREACHABLE = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "user_not_found", "users_not_found",
    "cannot_dm_bot", "user_disabled", "messages_tab_disabled", "restricted_action",
})  # fmt: skip
# Errors that mean the message to update is gone or frozen: nothing left to do.
GONE = frozenset({"message_not_found", "channel_not_found", "cant_update_message", "edit_window_closed", "is_archived"})

# slack_sdk logs request bodies at DEBUG (our cards, sensitive ones included): keep it at INFO and
# up whatever the function's log level is.
WEB_LOGGER = "signoff.surfaces.slack.web"


@dataclass(frozen=True)
class SlackCredentials:
    """The Slack app's secret (Secrets Manager JSON); repr hides both values."""

    signing_secret: str = field(repr=False)
    bot_token: str = field(repr=False)


def credentials(secret_arn: str) -> SlackCredentials:
    """Read on first use and then from Powertools' cache, refreshed every SECRET_MAX_AGE seconds."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    # botocore logs whole response bodies at DEBUG, this secret's value included.
    quiet_logger("botocore.parsers", logging.INFO)
    data = get_secret(secret_arn, transform="json", max_age=SECRET_MAX_AGE)
    missing = [k for k in ("signing_secret", "bot_token") if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise SettingsError(f"the Slack secret lacks {', '.join(missing)}")
    return SlackCredentials(signing_secret=data["signing_secret"], bot_token=data["bot_token"])


def quiet_logger(name: str, level: int) -> logging.Logger:
    """The logger `name`, kept at `level` or above whatever the function's log level is."""
    log = logging.getLogger(name)
    log.setLevel(max(log.getEffectiveLevel(), level))
    return log


def web_client(token: str | None, base_url: str | None = None, *, timeout: int = 10) -> WebClient:
    """A Web API client that waits out 429s (Retry-After) and retries 5xx and dropped connections.
    `base_url` points it at a stand-in (the local stack's fake Slack); None is Slack itself."""
    handlers = [
        ConnectionErrorRetryHandler(),
        RateLimitErrorRetryHandler(max_retry_count=2),
        # A 5xx after Slack accepted a post could double it; Slack advises retrying anyway.
        ServerErrorRetryHandler(max_retry_count=2),
    ]
    return WebClient(
        token=token,
        base_url=base_url or WebClient.BASE_URL,
        timeout=timeout,
        retry_handlers=handlers,
        logger=quiet_logger(WEB_LOGGER, logging.INFO),
    )


class SlackChat:
    """`signoff.ports.Chat` for Slack."""

    surface = SURFACE

    def __init__(self, client: WebClient, routing: LoadedRouting, directory: SlackDirectory | None = None) -> None:
        self.client = client
        self.directory = directory or SlackDirectory(routing, client)

    def post_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        return self._post(channel, person, card.checkpoint_id, "card", fallback_text(card), card_blocks(card))

    def post_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        return self._post(channel, person, card.checkpoint_id, "escalation", clip(text, 500), notice_blocks(text, card))

    def update_card(self, ref: MessageRef, card: Card) -> None:
        """Re-render in place (an escalation notice becomes the current card too): idempotent."""
        try:
            self.client.chat_update(channel=ref.channel, ts=ref.ts, text=fallback_text(card), blocks=card_blocks(card))
        except SlackApiError as exc:
            if error_code(exc) not in GONE:
                raise
            logger.warning("slack card not updated", extra=_log(card.checkpoint_id, ref.channel, error_code(exc)))

    def reply(self, ref: MessageRef, text: str, mention: str | None = None) -> None:
        user = self.directory.slack_user(mention) if mention else None
        body = (f"<@{user}> " if user else "") + escape(text)
        self.client.chat_postMessage(channel=ref.channel, thread_ts=ref.ts, text=clip(body, 3000))

    def _post(
        self, channel: str | None, person: str | None, checkpoint_id: str, kind: str, text: str, blocks: list[Block]
    ) -> MessageRef | None:
        target = channel or (self._direct(person) if person else None)
        if target is None:
            logger.warning("slack recipient unknown", extra=_log(checkpoint_id, person or "-", "no slack identity"))
            return None
        try:
            # No unfurling: a card's links are for people, and unfurlers fetch them.
            response = self.client.chat_postMessage(
                channel=target, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
        except SlackApiError as exc:
            if error_code(exc) not in UNREACHABLE:
                raise
            logger.warning("slack recipient unreachable", extra=_log(checkpoint_id, target, error_code(exc)))
            return None
        return MessageRef(surface=SURFACE, channel=str(response["channel"]), ts=str(response["ts"]), kind=kind)

    def _direct(self, person: str) -> str | None:
        """The DM channel with a directory person (conversations.open is idempotent)."""
        user = self.directory.slack_user(person)
        if user is None:
            return None
        try:
            response = self.client.conversations_open(users=user)
        except SlackApiError as exc:
            if error_code(exc) not in UNREACHABLE:
                raise
            return None
        return str(response["channel"]["id"])


def _log(checkpoint_id: str, where: str, error: str) -> dict[str, str]:
    return {"checkpoint_id": checkpoint_id, "channel": where, "error": error}

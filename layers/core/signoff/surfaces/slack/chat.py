"""The Chat port on Slack's Web API: post a card to a channel or a person's DM, update it in place,
reply in its thread, post an escalation notice. It stores nothing: callers keep the returned
`MessageRef`s (channel + ts) on the checkpoint, which is all `chat.update` needs later."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException, RemoteDisconnected
from typing import TypeVar
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.interval_calculator import RetryIntervalCalculator
from slack_sdk.http_retry.jitter import RandomJitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from signoff.adapters.http_out import retry_after_seconds
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
# Errors Slack answers (ok:false, often with HTTP 200, which slack_sdk's handlers never retry) when
# the trouble is on its side or momentary: the same call may well succeed a little later. Every
# other code (invalid_auth, token_revoked, account_inactive, missing_scope, invalid_blocks, ...)
# stays what it is however often it is tried.
TRANSIENT = frozenset({
    "ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
    "team_added_to_org",
})  # fmt: skip
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # a Slack error code, not a body excerpt

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


class TransientErrorRetryHandler(RetryHandler):
    """Retries an ok:false answer whose error is one of Slack's transient ones (`TRANSIENT`):
    Slack sends those with HTTP 200, which none of slack_sdk's built-in handlers look at."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        body = response.body if response is not None else None
        return isinstance(body, dict) and body.get("ok") is False and body.get("error") in TRANSIENT


# What a dropped or stalled connection raises through urllib: slack_sdk's default list lacks the
# read timeout (TimeoutError), the commonest one when Slack is slow.
CONNECTION_ERRORS: list[type[Exception]] = [URLError, ConnectionResetError, RemoteDisconnected, TimeoutError]
RETRIES = 2  # per handler: with the first try, up to 3 calls before a failure reaches Signoff


def web_client(
    token: str | None,
    base_url: str | None = None,
    *,
    timeout: int = 10,
    interval: RetryIntervalCalculator | None = None,
) -> WebClient:
    """A Web API client that waits out 429s (Retry-After), retries 5xx, Slack's transient ok:false
    errors and dropped or timed-out connections with backoff. `base_url` points it at a stand-in
    (the local stack's fake Slack); None is Slack itself. `interval`: the backoff between retries
    (slack_sdk's exponential backoff with jitter by default; tests pass a fixed 0)."""
    backoff = interval or BackoffRetryIntervalCalculator(backoff_factor=0.5, jitter=RandomJitter())
    handlers: list[RetryHandler] = [
        ConnectionErrorRetryHandler(
            max_retry_count=RETRIES, interval_calculator=backoff, error_types=CONNECTION_ERRORS
        ),
        RateLimitErrorRetryHandler(max_retry_count=RETRIES, interval_calculator=backoff),
        # A 5xx after Slack accepted a post could double it; Slack advises retrying anyway.
        ServerErrorRetryHandler(max_retry_count=RETRIES, interval_calculator=backoff),
        TransientErrorRetryHandler(max_retry_count=RETRIES, interval_calculator=backoff),
    ]
    return WebClient(
        token=token,
        base_url=base_url or WebClient.BASE_URL,
        timeout=timeout,
        retry_handlers=handlers,
        logger=quiet_logger(WEB_LOGGER, logging.INFO),
    )


class SlackChatError(SlackApiError):
    """A Slack call that failed after the client's own retries. `code` is Slack's error code
    (never its message or the response, which may echo the request), `status` the HTTP status
    (None: no answer at all), `transient` whether trying again later may help, `retry_after` the
    seconds Slack asked to wait, `unreachable` that the recipient cannot take messages.

    A `SlackApiError`, so callers that already handle those keep working; its shape (`code`,
    `transient`, `retry_after`) is what the approval workflow's steps read from any surface."""

    def __init__(
        self,
        operation: str,
        response: SlackResponse | None,
        *,
        code: str,
        status: int | None,
        transient: bool,
        retry_after: float | None = None,
        unreachable: bool = False,
    ) -> None:
        super().__init__(f"slack {operation}: {status or 'no answer'} {code}", response)  # type: ignore[no-untyped-call]
        self.operation = operation
        self.code = code
        self.status = status
        self.transient = transient
        self.retry_after = retry_after
        self.unreachable = unreachable


def failure(operation: str, exc: Exception, now: Callable[[], float] = time.time) -> SlackChatError:
    """`exc` (raised by the Web API client) as a SlackChatError: HTTP 5xx, 429, Slack's own
    transient codes and dropped or timed-out connections are transient; anything else is not."""
    if isinstance(exc, SlackChatError):
        return exc
    if isinstance(exc, SlackApiError):
        response: SlackResponse | None = exc.response
        status = response.status_code if response is not None else None
        code = error_code(exc)
        if not _CODE.match(code):  # a non-JSON answer (a proxy's 502 page): its status says enough
            code = f"http_{status}" if status else "unknown"
        transient = code in TRANSIENT or status == 429 or (status is not None and status >= 500)
        retry_after = retry_after_seconds(_header(response, "Retry-After"), now()) if response is not None else None
        return SlackChatError(
            operation, response, code=code, status=status, transient=transient, retry_after=retry_after,
            unreachable=code in UNREACHABLE,
        )  # fmt: skip
    code = "timeout" if isinstance(exc, TimeoutError) else "connection_failed"
    return SlackChatError(operation, None, code=code, status=None, transient=True)


def _header(response: SlackResponse, name: str) -> str | None:
    for key, value in (response.headers or {}).items():
        if key.lower() == name.lower():
            return str(value[0] if isinstance(value, list) and value else value)
    return None


# What the Web API client raises once its retry handlers give up: Slack's answer, or no answer.
_CLIENT_ERRORS = (SlackApiError, OSError, HTTPException)
T = TypeVar("T")


def _call(operation: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except _CLIENT_ERRORS as exc:
        raise failure(operation, exc) from exc


class SlackChat:
    """`signoff.ports.Chat` for Slack. Every method raises `SlackChatError` for a failure it does
    not absorb (a recipient the port answers None for, a card that is gone)."""

    surface = SURFACE

    def __init__(self, client: WebClient, routing: LoadedRouting, directory: SlackDirectory | None = None) -> None:
        self.client = client
        self.directory = directory or SlackDirectory(routing, client)

    def post_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        return _absorb_unreachable(lambda: self.deliver_card(channel, person, card))

    def post_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        return _absorb_unreachable(lambda: self.deliver_notice(channel, person, text, card))

    def deliver_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        """Like post_card, but a recipient Slack refuses raises (`unreachable`, with Slack's code)
        instead of answering None, so whoever concludes that nobody was reached can say why.
        None still means the person has no Slack identity: nothing was tried."""
        return self._post(channel, person, card.checkpoint_id, "card", fallback_text(card), card_blocks(card))

    def deliver_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        """post_notice, raising for a refused recipient like deliver_card."""
        return self._post(channel, person, card.checkpoint_id, "escalation", clip(text, 500), notice_blocks(text, card))

    def update_card(self, ref: MessageRef, card: Card) -> None:
        """Re-render in place (an escalation notice becomes the current card too): idempotent."""
        try:
            _call(
                "chat.update",
                lambda: self.client.chat_update(
                    channel=ref.channel, ts=ref.ts, text=fallback_text(card), blocks=card_blocks(card)
                ),
            )
        except SlackChatError as exc:
            if exc.code not in GONE:
                raise
            logger.warning("slack card not updated", extra=_log(card.checkpoint_id, ref.channel, exc.code))

    def reply(self, ref: MessageRef, text: str, mention: str | None = None) -> None:
        user = self.directory.slack_user(mention) if mention else None
        body = (f"<@{user}> " if user else "") + escape(text)
        _call(
            "chat.postMessage",
            lambda: self.client.chat_postMessage(channel=ref.channel, thread_ts=ref.ts, text=clip(body, 3000)),
        )

    def _post(
        self, channel: str | None, person: str | None, checkpoint_id: str, kind: str, text: str, blocks: list[Block]
    ) -> MessageRef | None:
        target = channel or (self._direct(person) if person else None)
        if target is None:
            logger.warning("slack recipient unknown", extra=_log(checkpoint_id, person or "-", "no slack identity"))
            return None
        try:
            # No unfurling: a card's links are for people, and unfurlers fetch them.
            response = _call(
                "chat.postMessage",
                lambda: self.client.chat_postMessage(
                    channel=target, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
                ),
            )
        except SlackChatError as exc:
            level = logger.warning if exc.unreachable else logger.error
            level("slack card not posted", extra=_log(checkpoint_id, target, exc.code))
            raise
        return MessageRef(surface=SURFACE, channel=str(response["channel"]), ts=str(response["ts"]), kind=kind)

    def _direct(self, person: str) -> str | None:
        """The DM channel with a directory person (conversations.open is idempotent)."""
        user = self.directory.slack_user(person)
        if user is None:
            return None
        response = _call("conversations.open", lambda: self.client.conversations_open(users=user))
        return str(response["channel"]["id"])


def _absorb_unreachable(deliver: Callable[[], MessageRef | None]) -> MessageRef | None:
    """The port's contract: a recipient that cannot take the message is None, not an error."""
    try:
        return deliver()
    except SlackChatError as exc:
        if not exc.unreachable:
            raise
        return None


def _log(checkpoint_id: str, where: str, error: str) -> dict[str, str]:
    return {"checkpoint_id": checkpoint_id, "channel": where, "error": error}

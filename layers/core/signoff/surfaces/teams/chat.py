"""The Chat port on the Bot Connector: post a card to a channel (its conversation id, from the
routing file's `Channel.teams`) or to a person's 1:1 chat with the bot, update it in place, reply
in its thread, post an escalation notice.

The service URL of a conversation comes from the reference stored when the bot was installed
there; without one, the configured default (Teams' global endpoint). Like SlackChat it stores no
messages: callers keep the returned `MessageRef`s (conversation id + activity id + service URL) on
the checkpoint, which is all an update needs later."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from signoff.domain.cards import Card
from signoff.domain.errors import NotFound
from signoff.domain.models import Checkpoint, MessageRef
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.ports import ReferenceStore
from signoff.settings import SettingsError
from signoff.surfaces.teams.cards import (
    MAX_REFRESH_USERS,
    View,
    adaptive_card,
    attachment,
    escape,
    fallback_text,
    notice_card,
)
from signoff.surfaces.teams.connector import BotConnector, BotCredentials, ConnectorError, UntrustedServiceUrl

SURFACE = "teams"
DEFAULT_SERVICE_URL = "https://smba.trafficmanager.net/teams/"
VIEWS_KEPT = 256  # audiences of recent checkpoints kept per container
SECRET_MAX_AGE = 300  # seconds Powertools keeps the secret: a rotated password is picked up within 5 min

Json = dict[str, Any]


class TeamsChatError(ConnectorError):
    """A Bot Connector call that failed after the connector's own retries, with what the approval
    workflow's steps read from any surface: `transient` (no answer, 429 or 5xx: trying again later
    may help), `retry_after` (the connector already waited as asked: None), `unreachable` (the
    conversation is not there for this bot, or its service URL is not trusted)."""

    def __init__(self, operation: str, status: int | None, code: str, *, unreachable: bool | None = None) -> None:
        super().__init__(operation, status, code)
        self._unreachable = unreachable
        self.transient = not self.unreachable and (status is None or status == 429 or status >= 500)
        self.retry_after: float | None = None

    @property
    def unreachable(self) -> bool:
        return super().unreachable if self._unreachable is None else self._unreachable

    @classmethod
    def of(cls, exc: ConnectorError) -> TeamsChatError:
        return exc if isinstance(exc, TeamsChatError) else cls(exc.operation, exc.status, exc.code)


def user_mri(aad: str) -> str:
    """A person's Teams user id (MRI) from their Entra object id, as refresh.userIds wants it."""
    return f"8:orgid:{aad}"


def audience(cp: Checkpoint, routing: LoadedRouting) -> View:
    """The view every copy of a checkpoint's card shares: its approvers (with a Teams identity)
    get their own view on refresh; Approve asks for a comment where the gate requires one."""
    people = (routing.routing.person(p) for p in cp.approvers)
    ids = tuple(user_mri(p.teams.aad) for p in people if p is not None and p.teams is not None)
    return View(user_ids=ids[:MAX_REFRESH_USERS], comment_required=cp.assessment.gate.comment_required)


def message(content: Json, summary: str | None = None) -> Json:
    """A message activity carrying one Adaptive Card."""
    activity: Json = {"type": "message", "attachments": [attachment(content)]}
    if summary:
        activity["summary"] = summary
    return activity


class TeamsChat:
    """`signoff.ports.Chat` for Teams. `checkpoints` looks a checkpoint up by id (its approvers
    and gate shape the card's actions and refresh); `tenant_id` is where 1:1 chats are opened."""

    surface = SURFACE

    def __init__(
        self,
        connector: BotConnector,
        routing: LoadedRouting,
        references: ReferenceStore,
        *,
        tenant_id: str,
        service_url: str = DEFAULT_SERVICE_URL,
        checkpoints: Callable[[str], Checkpoint] | None = None,
    ) -> None:
        self.connector = connector
        self.routing = routing
        self.references = references
        self.tenant_id = tenant_id
        self.service_url = service_url
        self.checkpoints = checkpoints
        self._direct_chats: dict[str, tuple[str, str]] = {}  # aad -> (service url, conversation id)
        self._views: dict[str, View] = {}  # checkpoint id -> its audience, oldest first

    # -- the port ------------------------------------------------------------------------------

    def post_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        return _absorb_unreachable(lambda: self.deliver_card(channel, person, card))

    def post_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        return _absorb_unreachable(lambda: self.deliver_notice(channel, person, text, card))

    def deliver_card(self, channel: str | None, person: str | None, card: Card) -> MessageRef | None:
        """Like post_card, but a conversation the bot cannot reach raises (`unreachable`, with the
        connector's code) instead of answering None, so whoever concludes that nobody was reached
        can say why. None still means the person has no Teams identity: nothing was tried."""
        content = adaptive_card(card, self.view(card.checkpoint_id))
        return self._post(channel, person, card.checkpoint_id, "card", message(content, fallback_text(card)))

    def deliver_notice(self, channel: str | None, person: str | None, text: str, card: Card) -> MessageRef | None:
        """post_notice, raising for an unreachable conversation like deliver_card."""
        content = notice_card(text, card, self.view(card.checkpoint_id))
        return self._post(channel, person, card.checkpoint_id, "escalation", message(content, text[:500]))

    def update_card(self, ref: MessageRef, card: Card) -> None:
        """Re-render in place (an escalation notice becomes the current card too): idempotent."""
        activity = message(adaptive_card(card, self.view(card.checkpoint_id)), fallback_text(card))
        try:
            self.connector.update(ref.service_url or self.service_url, ref.channel, ref.ts, activity)
        except ConnectorError as exc:
            if not exc.unreachable:
                raise TeamsChatError.of(exc) from exc
            logger.warning("teams card not updated", extra=_log(card.checkpoint_id, ref.channel, exc.code))

    def reply(self, ref: MessageRef, text: str, mention: str | None = None) -> None:
        activity: Json = {"type": "message", "text": escape(text)[:4000]}
        person = self.routing.routing.person(mention) if mention else None
        if person is not None and person.teams is not None:
            tag = f"<at>{escape(person.name)}</at>"
            activity["text"] = f"{tag} {activity['text']}"
            activity["entities"] = [
                {"type": "mention", "text": tag, "mentioned": {"id": person.teams.aad, "name": person.name}}
            ]
        self.connector.reply(ref.service_url or self.service_url, ref.channel, ref.ts, activity)

    # -- helpers -------------------------------------------------------------------------------

    def view(self, checkpoint_id: str) -> View:
        """The checkpoint's audience. Approvers and gate are fixed when a checkpoint is created, so
        one read serves every card of it this container posts or updates."""
        if self.checkpoints is None:
            return View()
        if checkpoint_id not in self._views:
            try:
                found = audience(self.checkpoints(checkpoint_id), self.routing)
            except NotFound:
                return View()
            if len(self._views) >= VIEWS_KEPT:
                self._views.pop(next(iter(self._views)))
            self._views[checkpoint_id] = found
        return self._views[checkpoint_id]

    def _post(
        self, channel: str | None, person: str | None, checkpoint_id: str, kind: str, activity: Json
    ) -> MessageRef | None:
        try:
            target = self._channel(channel) if channel else self._direct(person) if person else None
            if target is None:
                if channel:  # a conversation the bot was removed from
                    raise TeamsChatError("send", 403, "bot_removed", unreachable=True)
                logger.warning("teams recipient unknown", extra=_log(checkpoint_id, person or "-", "no teams identity"))
                return None
            service_url, conversation = target
            activity_id = self.connector.send(service_url, conversation, activity)
        except ConnectorError as exc:
            failed = TeamsChatError.of(exc)
            level = logger.warning if failed.unreachable else logger.error
            level("teams card not posted", extra=_log(checkpoint_id, channel or "dm", failed.code))
            raise failed from exc
        except UntrustedServiceUrl as exc:
            logger.warning(
                "teams recipient unreachable", extra=_log(checkpoint_id, channel or "dm", "untrusted service url")
            )
            raise TeamsChatError("send", None, "untrusted_service_url", unreachable=True) from exc
        return MessageRef(surface=SURFACE, channel=conversation, ts=activity_id, kind=kind, service_url=service_url)

    def _channel(self, conversation_id: str) -> tuple[str, str] | None:
        ref = self.references.get_reference(conversation_id)
        if ref is not None and not ref.active:
            return None  # the bot was removed from it
        return (ref.service_url if ref else self.service_url), conversation_id

    def _direct(self, person_id: str) -> tuple[str, str] | None:
        """The person's 1:1 chat with the bot (opened once per container; Teams keeps one)."""
        person = self.routing.routing.person(person_id)
        if person is None or person.teams is None:
            return None
        aad = person.teams.aad
        if aad not in self._direct_chats:
            conversation = self.connector.create_conversation(self.service_url, user_aad=aad, tenant_id=self.tenant_id)
            self._direct_chats[aad] = (self.service_url, conversation)
        return self._direct_chats[aad]


def _absorb_unreachable(deliver: Callable[[], MessageRef | None]) -> MessageRef | None:
    """The port's contract: a recipient that cannot take the message is None, not an error."""
    try:
        return deliver()
    except TeamsChatError as exc:
        if not exc.unreachable:
            raise
        return None


def _log(checkpoint_id: str, where: str, error: str) -> dict[str, str]:
    return {"checkpoint_id": checkpoint_id, "conversation": where, "error": error}


# -- built from settings -------------------------------------------------------------------------


def bot_credentials(secret_arn: str) -> BotCredentials:
    """Read on first use and then from Powertools' cache, refreshed every SECRET_MAX_AGE seconds."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    # botocore logs whole response bodies at DEBUG, this secret's value included.
    logging.getLogger("botocore.parsers").setLevel(max(logging.getLogger("botocore.parsers").level, logging.INFO))
    data = get_secret(secret_arn, transform="json", max_age=SECRET_MAX_AGE)
    keys = ("app_id", "app_password", "tenant_id")
    missing = [k for k in keys if not isinstance(data, dict) or not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise SettingsError(f"the Teams secret lacks {', '.join(missing)}")
    return BotCredentials(app_id=data["app_id"], app_password=data["app_password"], tenant_id=data["tenant_id"])


def split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]

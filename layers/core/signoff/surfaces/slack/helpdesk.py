"""The helpdesk's Slack front door, on the same bolt app and route as the approval cards
(POST /v1/slack/events): `app_mention`, messages in the channels helpdesk.yaml lists, DMs to the bot,
the `/ask-it` command, and the helpdesk's buttons. Translation only: the work is HelpdeskService's.

Slack retries an event it got no 2xx for within 3 s, so the ack path only filters (bot messages,
edits, joins, channels not configured) and acks; the triage runs in a lazy listener (on Lambda an
asynchronous self-invocation with the same signed request). The lazy half first claims the message
(channel + ts) on the idempotency table with a conditional put: a retried delivery (`X-Slack-Retry-Num`,
same event), a second lazy run, and the `message` event Slack sends beside an `app_mention` for the
same post all find it claimed and change nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from signoff.domain.errors import NotFound
from signoff.domain.helpdesk.config import HelpdeskConfig
from signoff.domain.helpdesk.conversation import HELPDESK_ID_RE
from signoff.domain.routing import LoadedRouting
from signoff.observability import logger
from signoff.ports import ActivityLog, HelpdeskAction, HelpdeskReply, Posted
from signoff.surfaces.slack.blocks import escape
from signoff.surfaces.slack.identity import error_code
from signoff.usecases.helpdesk import HelpdeskService, Question

COMMAND = "/ask-it"
ACTION_ID = re.compile(r"^helpdesk:(?P<act>[a-z_]{1,20})$")
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
MAX_QUESTION = 3000  # longer messages are cut: a question, not a document
SECTION_LIMIT = 2900  # Slack's section text limit is 3,000
LABELS = {
    HelpdeskAction.HELPFUL: "Helpful",
    HelpdeskAction.NOT_HELPFUL: "Not helpful",
    HelpdeskAction.HUMAN: "Talk to a human",
    HelpdeskAction.CLAIM: "Claim",
    HelpdeskAction.RESOLVED: "Resolved",
    HelpdeskAction.BACK: "Back to the bot",
    HelpdeskAction.REQUEST: "Fill in the request",
}
PRIMARY = (HelpdeskAction.HUMAN, HelpdeskAction.CLAIM, HelpdeskAction.REQUEST)
USAGE = "Usage: `/ask-it <your question>`: I answer, start an approval or find a person."


# -- posting -------------------------------------------------------------------------------------


def reply_blocks(reply: HelpdeskReply) -> list[dict[str, Any]]:
    """Block Kit for a helpdesk message. The text is escaped (it quotes what people typed, redacted):
    only the pings below are real mentions."""
    text = escape(reply.text)
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[i : i + SECTION_LIMIT]}}
        for i in range(0, min(len(text), SECTION_LIMIT * 3), SECTION_LIMIT)
    ]
    pings = [f"<!subteam^{g}>" for g in reply.mention_groups] + [f"<@{u}>" for u in reply.mention_users]
    if pings:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " ".join(pings)}]})
    if reply.actions:
        blocks.append(
            {
                "type": "actions",
                "block_id": "helpdesk",
                "elements": [
                    {
                        "type": "button",
                        "action_id": f"helpdesk:{a.value}",
                        "text": {"type": "plain_text", "text": LABELS[a]},
                        "value": reply.conversation_id,
                        **(
                            {"style": "primary"}
                            if a in (HelpdeskAction.HUMAN, HelpdeskAction.CLAIM, HelpdeskAction.REQUEST)
                            else {}
                        ),
                    }
                    for a in reply.actions
                ],
            }
        )
    return blocks


def _fallback(reply: HelpdeskReply) -> str:
    return escape(reply.text.splitlines()[0] if reply.text else "Signoff helpdesk")[:300]


class SlackHelpdeskChat:
    """The HelpdeskChat port on Slack's Web API."""

    def __init__(self, client: WebClient) -> None:
        self.client = client

    def reply(self, channel: str, thread_ts: str | None, reply: HelpdeskReply) -> Posted:
        sent = self.client.chat_postMessage(
            channel=channel, thread_ts=thread_ts, text=_fallback(reply), blocks=reply_blocks(reply)
        )
        return Posted(channel=str(sent["channel"]), ts=str(sent["ts"]), where="thread" if thread_ts else "channel")

    def reply_privately(self, channel: str, thread_ts: str | None, user: str, reply: HelpdeskReply) -> Posted:
        self.client.chat_postEphemeral(
            channel=channel, user=user, thread_ts=thread_ts, text=_fallback(reply), blocks=reply_blocks(reply)
        )
        return Posted(channel=channel, ts=None, where="ephemeral")

    def direct(self, user: str, reply: HelpdeskReply) -> Posted:
        # Posting to a user id lands in the bot's DM with them (Slack opens it).
        sent = self.client.chat_postMessage(channel=user, text=_fallback(reply), blocks=reply_blocks(reply))
        return Posted(channel=str(sent["channel"]), ts=str(sent["ts"]), where="dm")

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return str(self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"])
        except SlackApiError:
            # Slack's documented archive form: the workspace redirects it to the message.
            return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def oncall_user(routing: LoadedRouting) -> Callable[[str, datetime], str | None]:
    """The Slack user on call for a rotation helpdesk.yaml names: a team of routing.yaml with an
    on_call rotation of that name. None when no such rotation exists (the user group is pinged)."""

    def who(rotation: str, at: datetime) -> str | None:
        team = routing.routing.teams.get(rotation)
        if team is None or team.on_call is None:
            return None
        person = routing.routing.person(team.on_call.who(at))
        return person.slack.user if person and person.slack else None

    return who


# -- reading events ------------------------------------------------------------------------------


def read_question(event: dict[str, Any], config: HelpdeskConfig, team: str | None) -> Question | None:
    """The question a message or mention asks, or None when the helpdesk must ignore it: a bot's
    message (its own included), an edit, a join or any other subtype, an empty message, or a plain
    message in a channel helpdesk.yaml does not list."""
    if event.get("bot_id") or event.get("subtype") or event.get("bot_profile"):
        return None
    user, channel, ts = str(event.get("user") or ""), str(event.get("channel") or ""), str(event.get("ts") or "")
    text = _MENTION.sub(" ", str(event.get("text") or "")).strip()[:MAX_QUESTION]
    if not (user and channel and ts and text):
        return None
    if event.get("type") == "app_mention":
        source = "mention"
    elif event.get("channel_type") == "im":
        source = "dm"
    elif config.channel(channel) is not None:
        source = "message"
    else:
        return None
    return Question(
        text=text, user=user, channel=channel, thread_ts=str(event.get("thread_ts") or ts), source=source, team=team
    )


def _mentions_bot(event: dict[str, Any], bot_user: str | None) -> bool:
    return bool(bot_user) and f"<@{bot_user}" in str(event.get("text") or "")


class HelpdeskListeners:
    def __init__(
        self, service: HelpdeskService, claims: ActivityLog, bot_user: Callable[[], str | None] | None = None
    ) -> None:
        self.service = service
        self.claims = claims
        self.bot_user = bot_user or (lambda: None)

    @property
    def config(self) -> HelpdeskConfig:
        return self.service.helpdesk.loaded.config

    def question(self, body: dict[str, Any]) -> Question | None:
        event = body.get("event") or {}
        if event.get("type") == "message" and _mentions_bot(event, self.bot_user()):
            return None  # the app_mention event of the same post answers it
        return read_question(event, self.config, body.get("team_id"))

    def work(self, body: dict[str, Any]) -> None:
        """Lazy: claim the message, then triage and answer it."""
        question = self.question(body)
        if question is None:
            return
        key = f"{question.channel}/{(body.get('event') or {}).get('ts')}"
        if not self.claims.claim(key):
            logger.info("helpdesk event already handled", extra={"event_id": body.get("event_id")})
            return
        try:
            self.service.ask(question)
        except Exception:
            # Not swallowed: the claim is released so a redelivery can do the work, then it fails loudly.
            self.claims.release(key)
            raise

    def command(self, ack: Ack, command: dict[str, Any]) -> None:
        text = str(command.get("text") or "").strip()
        if not text or text.lower() == "help":
            ack(USAGE, response_type="ephemeral")
            return
        ack("Looking into it…", response_type="ephemeral")

    def after_command(self, command: dict[str, Any]) -> None:
        text = str(command.get("text") or "").strip()[:MAX_QUESTION]
        user, channel = str(command.get("user_id") or ""), str(command.get("channel_id") or "")
        if not (text and user and channel) or text.lower() == "help":
            return
        if not self.claims.claim(f"command/{command.get('trigger_id')}"):
            return
        source = "dm" if channel.startswith("D") else "command"
        self.service.ask(
            Question(text=text, user=user, channel=channel, thread_ts=None, source=source, team=command.get("team_id"))
        )

    def after_click(self, body: dict[str, Any], client: WebClient) -> None:
        """Lazy: the click's effect, told to the clicker privately."""
        actions = body.get("actions") or []
        if len(actions) != 1:
            return
        match = ACTION_ID.match(str(actions[0].get("action_id", "")))
        conversation_id = str(actions[0].get("value", ""))
        if match is None or not HELPDESK_ID_RE.match(conversation_id):
            return
        try:
            action = HelpdeskAction(match["act"])
        except ValueError:
            return
        user = str((body.get("user") or {}).get("id") or "")
        try:
            told = self.service.act(conversation_id, action, user)
        except NotFound:
            told = "This conversation no longer exists."
        logger.info(
            "helpdesk click", extra={"conversation_id": conversation_id, "action": action.value, "user_id": user}
        )
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        if not channel:
            return
        try:
            client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=container.get("thread_ts"), text=escape(told)
            )
        except SlackApiError as exc:
            logger.warning("helpdesk ephemeral not sent", extra={"code": error_code(exc)})


def register(app: App, listeners: HelpdeskListeners) -> None:
    """Wire the helpdesk's events, command and buttons into the app."""

    # Bolt runs lazy listeners by function name and injects arguments by parameter name.
    def ack_event(ack: Ack) -> None:
        ack()

    def helpdesk_event(body: dict[str, Any]) -> None:
        listeners.work(body)

    def on_ask(ack: Ack, command: dict[str, Any]) -> None:
        listeners.command(ack, command)

    def after_ask(command: dict[str, Any]) -> None:
        listeners.after_command(command)

    def ack_click(ack: Ack) -> None:
        ack()

    def after_helpdesk_click(body: dict[str, Any], client: WebClient) -> None:
        listeners.after_click(body, client)

    app.event("app_mention")(ack=ack_event, lazy=[helpdesk_event])
    app.event("message")(ack=ack_event, lazy=[helpdesk_event])
    app.command(COMMAND)(ack=on_ask, lazy=[after_ask])
    app.action(re.compile(r"^helpdesk:"))(ack=ack_click, lazy=[after_helpdesk_click])

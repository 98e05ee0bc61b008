"""A stand-in for Slack: a small threaded HTTP server speaking the Web API's wire format on
127.0.0.1, plus signed, real-shaped requests as Slack would send them to Signoff.

The server answers `POST|GET /api/<method>` with form or JSON bodies, checks the bot token
(`Authorization: Bearer` or a `token` field) and answers `{"ok": true, ...}` or
`{"ok": false, "error": ...}` like Slack, with deterministic `ts` values. It enforces the Block Kit
limits Slack enforces (so a card that Slack would reject fails here too) and records every call in
order; the query methods give what a person would see: each channel's messages with updates
applied, thread replies, ephemerals per user, opened modals. `response_url` posts land on
`/actions/...` and are recorded too. Point a `slack_sdk.WebClient(base_url=fake.url)` at it.

Requests *to* Signoff: `signed_request` signs a body with Slack's v0 scheme;
`block_actions_payload`, `view_submission_payload` and `slash_command_body` build what Slack posts
for a button click, a modal submission and `/signoff`."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from local.loopback import LoopbackServer

BOT_TOKEN = "xoxb-signoff-local"
TEAM = "T0SIGNOFF"
APP_ID = "A0SIGNOFF"
BOT_ID = "B0SIGNOFF"
BOT_USER = "U0SIGNOFFBOT"
_TS_BASE = 1767268800  # 2026-01-01T12:00:00Z: ts values are "1767268800.000001", "…000002", …

# Block Kit limits (https://docs.slack.dev/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000
_TEXT_LIMITS = {"header": 150, "section": 3000, "context": 2000}


@dataclass(frozen=True)
class Call:
    """One Web API call as received: the method, its parameters (JSON values decoded) and token."""

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass
class Message:
    """A message as people see it now (updates applied)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0
    user: str | None = None  # a person's message (FakeSlack.say); None: posted through the Web API (the bot)

    def block_text(self) -> str:
        """Every text in the blocks, joined: what a test searches for words."""
        found: list[str] = []
        stack: list[Any] = list(self.blocks)
        while stack:
            node = stack.pop(0)
            if isinstance(node, dict):
                if isinstance(node.get("text"), str):
                    found.append(node["text"])
                stack.extend(v for v in node.values() if isinstance(v, dict | list))
            elif isinstance(node, list):
                stack.extend(node)
        return "\n".join(found)

    def action_ids(self) -> list[str]:
        return [e["action_id"] for b in self.blocks if b.get("type") == "actions" for e in b.get("elements", [])]


class SlackError(Exception):
    def __init__(self, error: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.headers = headers or {}


@dataclass
class _Scripted:
    error: str
    status: int
    times: int
    headers: dict[str, str] = field(default_factory=dict)


class FakeSlack(LoopbackServer):
    """Start with `with FakeSlack() as fake:` (or start()/stop()); `fake.url` is the API base URL."""

    thread_name = "fake-slack"

    def __init__(self, *, token: str = BOT_TOKEN, team: str = TEAM, host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.team = team
        self._lock = threading.Lock()
        super().__init__(ThreadingHTTPServer((host, port), _handler_class(self)))
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.unknown_channels: set[str] = set()
        self.expired_triggers: set[str] = set()
        self._scripted: dict[str, list[_Scripted]] = {}
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    @property
    def response_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/actions/{self.team}/1/response"

    def reset(self) -> None:
        """Forget every call and message (users, groups and scripted failures stay)."""
        with self._lock:
            self._calls: list[Call] = []
            self._messages: dict[tuple[str, str], Message] = {}
            # button value (a checkpoint id) -> the messages whose buttons ever carried it, so a
            # card is found without reading every message ever posted
            self._by_value: dict[str, dict[tuple[str, str], None]] = {}
            self._ephemerals: list[dict[str, Any]] = []
            self._views: list[dict[str, Any]] = []
            self._responses: list[dict[str, Any]] = []
            self._used_triggers: set[str] = set()
            self._seq = 0

    # -- scripting -------------------------------------------------------------------------------

    def add_user(self, user: str, *, name: str, email: str | None = None, team: str | None = None) -> None:
        profile = {"real_name": name, "display_name": name, **({"email": email} if email else {})}
        with self._lock:
            self.users[user] = {"id": user, "team_id": team or self.team, "name": name.lower(), "real_name": name,
                                "profile": profile, "deleted": False, "is_bot": False}  # fmt: skip

    def set_usergroup(self, usergroup: str, users: list[str]) -> None:
        with self._lock:
            self.usergroups[usergroup] = list(users)

    def fail(
        self, method: str, error: str, *, status: int = 200, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """The next `times` calls of `method` fail: e.g. fail("chat.postMessage", "ratelimited",
        status=429, headers={"Retry-After": "0"}) or fail("chat.update", "internal_error", status=500)."""
        with self._lock:
            self._scripted.setdefault(method, []).append(_Scripted(error, status, times, dict(headers or {})))

    @staticmethod
    def dm_channel(user: str) -> str:
        """The DM channel conversations.open gives for a user: D + the user id without its U."""
        return "D" + user[1:]

    # -- queries ---------------------------------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first, as they look now."""
        with self._lock:
            found = [m for (ch, _), m in self._messages.items() if ch == channel and m.thread_ts is None]
        return sorted(found, key=lambda m: m.ts)

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            return self._messages[(channel, ts)]

    def find(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self._messages.get((channel, ts))

    def cards_of(self, value: str) -> list[Message]:
        """Top-level messages whose buttons carried `value` when posted or updated, oldest first."""
        with self._lock:
            found = [self._messages[key] for key in self._by_value.get(value, {})]
        return sorted(found, key=lambda m: (m.ts, m.channel))

    def threads(self) -> dict[tuple[str, str], list[Message]]:
        """(channel, thread ts) -> its replies, oldest first, in one pass."""
        found: dict[tuple[str, str], list[Message]] = {}
        with self._lock:
            for (channel, _), m in self._messages.items():
                if m.thread_ts is not None:
                    found.setdefault((channel, m.thread_ts), []).append(m)
        return {key: sorted(replies, key=lambda m: m.ts) for key, replies in found.items()}

    def _index(self, message: Message) -> None:
        for block in message.blocks:
            if block.get("type") == "actions":
                for element in block.get("elements", []):
                    if isinstance(element.get("value"), str):
                        self._by_value.setdefault(element["value"], {})[(message.channel, message.ts)] = None

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        with self._lock:
            found = [m for (ch, _), m in self._messages.items() if ch == channel and m.thread_ts == thread_ts]
        return sorted(found, key=lambda m: m.ts)

    def channels(self) -> list[str]:
        """Every channel that received a message."""
        with self._lock:
            return sorted({ch for ch, _ in self._messages})

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._ephemerals if user is None or e["user"] == user]

    def views(self) -> list[dict[str, Any]]:
        """Modals opened (views.open), oldest first, as Slack stored them."""
        with self._lock:
            return list(self._views)

    def responses(self) -> list[dict[str, Any]]:
        """Bodies posted to response_url."""
        with self._lock:
            return list(self._responses)

    def say(self, channel: str, user: str, text: str, thread_ts: str | None = None) -> Message:
        """A person's message, as Slack stores it before delivering its event (the helpdesk's input)."""
        with self._lock:
            if thread_ts is not None and (channel, thread_ts) not in self._messages:
                raise SlackError("thread_not_found")
            message = Message(channel, self._next_ts(), text, [], thread_ts, user=user)
            self._messages[(channel, message.ts)] = message
        return message

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        """One Web API call; raises SlackError for an error answer."""
        with self._lock:
            self._calls.append(Call(method, params, token))
            scripted = self._scripted.get(method)
            if scripted:
                failure = scripted[0]
                failure.times -= 1
                if failure.times <= 0:
                    scripted.pop(0)
                raise SlackError(failure.error, failure.status, failure.headers)
        if token is None:
            raise SlackError("not_authed")
        if token != self.token:
            raise SlackError("invalid_auth")
        api = _API.get(method)
        if api is None:
            raise SlackError("unknown_method", status=404)
        with self._lock:
            return {"ok": True, **api(self, params)}

    def record_response(self, body: dict[str, Any]) -> None:
        with self._lock:
            self._responses.append(body)

    def _next_ts(self) -> str:
        self._seq += 1
        return f"{_TS_BASE}.{self._seq:06d}"

    def _channel(self, params: dict[str, Any]) -> str:
        channel = str(params.get("channel") or "")
        if channel.startswith("U"):  # posting to a user id goes to the DM with them, as in Slack
            channel = self.dm_channel(channel)
        if not channel or channel in self.unknown_channels:
            raise SlackError("channel_not_found")
        return channel

    def _post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        text, blocks = str(params.get("text") or ""), _blocks(params.get("blocks"))
        if not text and not blocks:
            raise SlackError("no_text")
        if len(text) > MAX_MESSAGE_TEXT:
            raise SlackError("msg_too_long")
        _check_blocks(blocks, MAX_MESSAGE_BLOCKS)
        thread_ts = params.get("thread_ts")
        if thread_ts is not None and (channel, str(thread_ts)) not in self._messages:
            raise SlackError("thread_not_found")
        ts = self._next_ts()
        message = Message(channel, ts, text, blocks, str(thread_ts) if thread_ts else None)
        self._messages[(channel, ts)] = message
        self._index(message)
        return {"channel": channel, "ts": ts, "message": _shape(message)}

    def _update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = self._channel(params), str(params.get("ts") or "")
        message = self._messages.get((channel, ts))
        if message is None:
            raise SlackError("message_not_found")
        blocks = _blocks(params.get("blocks"))
        _check_blocks(blocks, MAX_MESSAGE_BLOCKS)
        if "text" in params:
            message.text = str(params["text"])
        if "blocks" in params:
            message.blocks = blocks
            self._index(message)
        message.updates += 1
        return {"channel": channel, "ts": ts, "text": message.text, "message": _shape(message)}

    def _post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        user = str(params.get("user") or "")
        if not user:
            raise SlackError("user_not_found")
        if not params.get("text") and not params.get("blocks"):
            raise SlackError("no_text")
        ts = self._next_ts()
        self._ephemerals.append({"channel": channel, "user": user, "text": params.get("text"), "ts": ts,
                                 "blocks": _blocks(params.get("blocks"))})  # fmt: skip
        return {"message_ts": ts}

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = str(params.get("trigger_id") or "")
        if not trigger:
            raise SlackError("invalid_trigger_id")
        if trigger in self.expired_triggers:
            raise SlackError("expired_trigger_id")
        if trigger in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        self._used_triggers.add(trigger)
        view = _check_view(params.get("view"))
        self._seq += 1
        stored = {**view, "id": f"V{self._seq:08d}", "team_id": self.team, "app_id": APP_ID, "bot_id": BOT_ID,
                  "state": {"values": {}}, "hash": f"{self._seq}.fake", "trigger_id": trigger}  # fmt: skip
        self._views.append(stored)
        return {"view": stored}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = params.get("view_id")
        found = next((v for v in self._views if v["id"] == view_id), None)
        if found is None:
            raise SlackError("not_found")
        found.update(_check_view(params.get("view")))
        return {"view": found}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        email = str(params.get("email") or "").lower()
        user = next((u for u in self.users.values() if u["profile"].get("email", "").lower() == email), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": user}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1 or not users[0].startswith(("U", "W")):
            raise SlackError("user_not_found")
        return {"channel": {"id": self.dm_channel(users[0])}, "already_open": False, "no_op": False}

    def _usergroup_users(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(params.get("usergroup") or ""))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group)}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": "https://signoff.slack.com/", "team": "Signoff", "user": "signoff", "team_id": self.team,
                "user_id": BOT_USER, "bot_id": BOT_ID, "is_enterprise_install": False}  # fmt: skip


_API: dict[str, Callable[[FakeSlack, dict[str, Any]], dict[str, Any]]] = {
    "chat.postMessage": FakeSlack._post_message,
    "chat.update": FakeSlack._update,
    "chat.postEphemeral": FakeSlack._post_ephemeral,
    "views.open": FakeSlack._views_open,
    "views.update": FakeSlack._views_update,
    "users.info": FakeSlack._users_info,
    "users.lookupByEmail": FakeSlack._lookup_by_email,
    "conversations.open": FakeSlack._conversations_open,
    "usergroups.users.list": FakeSlack._usergroup_users,
    "auth.test": FakeSlack._auth_test,
}


def _shape(message: Message) -> dict[str, Any]:
    return {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "text": message.text, "ts": message.ts,
            "blocks": message.blocks, **({"thread_ts": message.thread_ts} if message.thread_ts else {})}  # fmt: skip


def _blocks(raw: Any) -> list[dict[str, Any]]:
    """Blocks arrive as a JSON array (JSON bodies) or a JSON-encoded string (form bodies)."""
    if raw is None or raw == "":
        return []
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, list) or not all(isinstance(b, dict) for b in value):
        raise SlackError("invalid_blocks_format")
    return value


def _check_blocks(blocks: list[dict[str, Any]], max_blocks: int) -> None:
    """Slack answers invalid_blocks for these; so does the fake."""
    if len(blocks) > max_blocks:
        raise SlackError("invalid_blocks")
    for block in blocks:
        limit = _TEXT_LIMITS.get(str(block.get("type")))
        texts = [block.get("text"), *((block.get("elements") or []) if block.get("type") == "context" else [])]
        for text in texts:
            if limit and isinstance(text, dict) and len(str(text.get("text", ""))) > limit:
                raise SlackError("invalid_blocks")
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if len(str(element.get("value", ""))) > 2000 or len(str(element.get("action_id", ""))) > 255:
                raise SlackError("invalid_blocks")


def _check_view(raw: Any) -> dict[str, Any]:
    view = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(view, dict) or view.get("type") != "modal":
        raise SlackError("invalid_arguments")
    title = (view.get("title") or {}).get("text", "")
    if not title or len(title) > 24 or len(str(view.get("private_metadata", ""))) > 3000:
        raise SlackError("invalid_arguments")
    _check_blocks(_blocks(view.get("blocks")), MAX_VIEW_BLOCKS)
    return view


def _handler_class(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.calls()
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            params: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            if raw:
                if "json" in (self.headers.get("Content-Type") or ""):
                    params.update(json.loads(raw))
                else:
                    params.update(parse_qsl(raw, keep_blank_values=True))
            if parts.path.startswith("/actions/"):
                fake.record_response(params)
                self._answer(200, {"ok": True})
                return
            if not parts.path.startswith("/api/"):
                self._answer(404, {"ok": False, "error": "unknown_method"})
                return
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else params.pop("token", None)
            try:
                body = fake.handle(parts.path.removeprefix("/api/"), params, token)
            except SlackError as exc:
                self._answer(exc.status, {"ok": False, "error": exc.error}, exc.headers)
                return
            self._answer(200, body)

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


# -- requests to Signoff, as Slack sends them -----------------------------------------------------


def signed_request(body: str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """Headers for `body` signed with Slack's v0 scheme: HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


def interactivity_body(payload: dict[str, Any]) -> str:
    """Interactive payloads are form-encoded: one `payload` field holding the JSON."""
    return urlencode({"payload": json.dumps(payload)})


def _user(team: str, user: str) -> dict[str, Any]:
    return {"id": user, "username": user.lower(), "name": user.lower(), "team_id": team}


def _enterprise(enterprise: str | None) -> dict[str, Any] | None:
    return {"id": enterprise, "name": "Signoff Org"} if enterprise else None


def block_actions_payload(
    team: str,
    user: str,
    checkpoint_id: str,
    act: str,
    channel: str,
    ts: str,
    trigger_id: str,
    *,
    enterprise: str | None = None,
    response_url: str | None = None,
) -> dict[str, Any]:
    """A click on a card's `signoff:<act>` button."""
    action_ts = f"{int(time.time())}.000100"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(team, user),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": trigger_id,
        "team": {"id": team, "domain": "signoff"},
        "enterprise": _enterprise(enterprise),
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "directmessage" if channel.startswith("D") else "signoff"},
        "message": {"type": "message", "user": BOT_USER, "bot_id": BOT_ID, "ts": ts, "text": "", "blocks": []},
        "state": {"values": {}},
        "actions": [
            {
                "type": "button",
                "action_id": f"signoff:{act}",
                "block_id": "signoff_actions",
                "text": {"type": "plain_text", "text": act, "emoji": True},
                "value": checkpoint_id,
                "action_ts": action_ts,
            }
        ],
    }
    if response_url:
        payload["response_url"] = response_url
    return payload


def view_submission_payload(
    team: str,
    user: str,
    callback_id: str,
    private_metadata: str,
    values: dict[str, str | None],
    trigger_id: str,
    *,
    number_inputs: frozenset[str] = frozenset({"canary_percent"}),
    enterprise: str | None = None,
    view_id: str = "V00000001",
) -> dict[str, Any]:
    """A modal submitted with `values` (block id -> typed text; each input's action id is its block
    id, as Signoff builds them)."""
    state = {
        block: {block: {"type": "number_input" if block in number_inputs else "plain_text_input", "value": text}}
        for block, text in values.items()
    }
    return {
        "type": "view_submission",
        "team": {"id": team, "domain": "signoff"},
        "user": _user(team, user),
        "api_app_id": APP_ID,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": team,
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "title": {"type": "plain_text", "text": "Signoff"},
            "blocks": [],
            "state": {"values": state},
            "hash": "1767268800.fakehash",
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": _enterprise(enterprise),
    }


def slash_command_body(
    team: str,
    user: str,
    text: str,
    *,
    command: str = "/signoff",
    channel: str = "C0SIGNOFF",
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
    enterprise: str | None = None,
    response_url: str = "https://hooks.slack.com/commands/T0SIGNOFF/1/fake",
) -> str:
    """A slash command, form-encoded as Slack posts it."""
    fields = {
        "token": "legacy-verification-token",
        "team_id": team,
        "team_domain": "signoff",
        "channel_id": channel,
        "channel_name": "signoff",
        "user_id": user,
        "user_name": user.lower(),
        "command": command,
        "text": text,
        "api_app_id": APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    if enterprise:
        fields["enterprise_id"] = enterprise
    return urlencode(fields)


def message_event(
    team: str, message: Message, *, event_id: str, mention: str | None = None, channel_type: str = "channel"
) -> dict[str, Any]:
    """The Events API callback Slack sends for a person's message (`app_mention` when `mention`, the
    bot's user id, is given and the text names it)."""
    event: dict[str, Any] = {
        "type": "app_mention" if mention else "message",
        "user": message.user,
        "text": message.text,
        "channel": message.channel,
        "ts": message.ts,
        "event_ts": message.ts,
        "channel_type": "im" if message.channel.startswith("D") else channel_type,
    }
    if message.thread_ts:
        event["thread_ts"] = message.thread_ts
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "api_app_id": APP_ID,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": int(float(message.ts)),
        "event": event,
    }

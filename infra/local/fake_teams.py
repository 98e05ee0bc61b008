"""A stand-in for Microsoft Teams' bot plumbing: a small threaded HTTP server on 127.0.0.1 playing
the Entra ID token endpoint, the Bot Connector's REST API and the connector's JWKS, plus signed,
real-shaped activities as the connector would send them to Signoff.

The server answers
  POST /{tenant}/oauth2/v2.0/token                 client credentials -> a bot token
  GET  /v1/.well-known/keys                        the JWKS (RSA keys with `endorsements`)
  POST {service}/v3/conversations                  a 1:1 chat with a person (by Entra object id)
  POST {service}/v3/conversations/{id}/activities  post (a card, a message)
  POST {service}/v3/conversations/{id}/activities/{activityId}   reply in a thread
  PUT  {service}/v3/conversations/{id}/activities/{activityId}   update in place
  GET  {service}/v3/conversations/{id}/members/{userId}          a member's profile
where {service} is the service URL's path (`/teams/` by default). Connector calls need the token
the token endpoint issued; cards must be Adaptive Cards within Teams' ~28 KB. Every call is
recorded in order, and each activity is kept as people see it now (updates applied).

Requests *to* Signoff: `mint` signs a JWT the way the connector does (RS256, kid, iss, aud,
serviceurl, nbf/exp) with the published key, an unendorsed one, or any other; the builders make
invoke (adaptiveCard/action), installationUpdate, conversationUpdate and message activities."""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from local.loopback import LoopbackServer

APP_ID = "5160ff00-0000-4000-8000-00000000b07a"
APP_PASSWORD = "signoff-local-bot-password"
TENANT = "5160ff00-0000-4000-8000-00000000c0de"
ISSUER = "https://api.botframework.com"
SCOPE = "https://api.botframework.com/.default"
CHANNEL = "msteams"
MAX_MESSAGE_BYTES = 28 * 1024  # Teams refuses bigger messages (card included)
_ID_BASE = 1767268800000  # 2026-01-01T12:00:00Z in ms: activity ids "1767268800001", "…002", …

Json = dict[str, Any]
_MESSAGE_IDS = itertools.count(1)


# -- keys and tokens -------------------------------------------------------------------------------


@cache
def _rsa(name: str) -> rsa.RSAPrivateKey:
    # Generating a key takes a while: one per name per process.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _b64(number: int) -> str:
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """An RSA key as the connector publishes it: kid, public numbers, endorsements."""

    kid: str
    private: rsa.RSAPrivateKey = field(repr=False)
    endorsements: tuple[str, ...] = (CHANNEL,)

    @classmethod
    def named(cls, kid: str, endorsements: tuple[str, ...] = (CHANNEL,)) -> SigningKey:
        return cls(kid, _rsa(kid), endorsements)

    def jwk(self) -> Json:
        numbers = self.private.public_key().public_numbers()
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": _b64(numbers.n), "e": _b64(numbers.e),
                "endorsements": list(self.endorsements)}  # fmt: skip


def mint_token(
    activity: Json,
    key: SigningKey,
    *,
    audience: str = APP_ID,
    issuer: str = ISSUER,
    kid: str | None = None,
    expires_in: float = 3600,
    service_url: str | None = None,
    not_before: float | None = None,
    now: float | None = None,
) -> str:
    """A JWT as the Bot Connector signs it for one activity."""
    at = time.time() if now is None else now
    claims = {
        "serviceurl": service_url if service_url is not None else activity.get("serviceUrl"),
        "nbf": int(at - 300 if not_before is None else not_before),
        "exp": int(at + expires_in),
        "iat": int(at),
        "iss": issuer,
        "aud": audience,
    }
    return jwt.encode(claims, key.private, algorithm="RS256", headers={"kid": kid or key.kid})


# -- recording -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request as received: the operation, method, path, JSON or form body and token."""

    operation: str  # token | keys | create | send | reply | update | member
    method: str
    path: str
    body: Any
    token: str | None


@dataclass
class Activity:
    """An activity in a conversation as people see it now (updates applied)."""

    conversation: str
    id: str
    body: Json
    reply_to: str | None = None
    updates: int = 0

    @property
    def card(self) -> Json | None:
        """The Adaptive Card it carries, if any."""
        for item in self.body.get("attachments") or []:
            if item.get("contentType") == "application/vnd.microsoft.card.adaptive":
                return item.get("content")  # type: ignore[no-any-return]
        return None

    def text(self) -> str:
        """Every text of the card (or the message text), joined: what a test searches for words."""
        return "\n".join(card_texts(self.card)) if self.card is not None else str(self.body.get("text") or "")

    def verbs(self) -> list[str]:
        """The verbs of the card's Action.Execute buttons, ShowCards opened."""
        return card_verbs(self.card or {})


_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def unescape(text: str) -> str:
    """Markdown as Teams shows it: a backslash-escaped punctuation character is just the character."""
    return _ESCAPE.sub(r"\1", text)


def card_texts(node: Any) -> Iterator[str]:
    """Every text, title and fact value of a card, as shown (escapes removed)."""
    if isinstance(node, dict):
        for key in ("text", "title", "value"):
            if isinstance(node.get(key), str):
                yield unescape(node[key])
        for value in node.values():
            if isinstance(value, dict | list):
                yield from card_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from card_texts(item)


def card_verbs(card: Json) -> list[str]:
    verbs: list[str] = []
    for action in card.get("actions") or []:
        if action.get("type") == "Action.Execute":
            verbs.append(str(action.get("verb")))
        elif action.get("type") == "Action.ShowCard":
            verbs += card_verbs(action.get("card") or {})
    return verbs


class ConnectorFault(Exception):
    def __init__(self, status: int, code: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.headers = headers or {}


@dataclass
class _Scripted:
    status: int
    code: str
    times: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TeamsUser:
    """A person in the fake tenant: Entra object id, name, email, and the bot-scoped user id."""

    aad: str
    name: str
    email: str | None = None

    @property
    def user_id(self) -> str:
        return f"29:1{self.aad}"

    def account(self) -> Json:
        return {"id": self.user_id, "name": self.name, "aadObjectId": self.aad}

    def member(self, tenant: str) -> Json:
        given, _, surname = self.name.partition(" ")
        member: Json = {**self.account(), "givenName": given, "surname": surname, "tenantId": tenant,
                        "userRole": "user"}  # fmt: skip
        if self.email:
            member |= {"email": self.email, "userPrincipalName": self.email}
        return member


class FakeTeams(LoopbackServer):
    """Start with `with FakeTeams() as fake:` (or start()/stop()). `fake.service_url` is the
    connector's service URL, `fake.login_url` the token endpoint's base, `fake.jwks_url` the keys."""

    thread_name = "fake-teams"

    def __init__(
        self,
        *,
        app_id: str = APP_ID,
        app_password: str = APP_PASSWORD,
        tenant: str = TENANT,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: int = 3599,
    ) -> None:
        self.app_id = app_id
        self.app_password = app_password
        self.tenant = tenant
        self.token_lifetime = token_lifetime
        self.key = SigningKey.named("fake-teams-key-1")
        self.unendorsed = SigningKey.named("fake-webchat-key", endorsements=("webchat",))
        self.published: list[SigningKey] = [self.key, self.unendorsed]
        self.users: dict[str, TeamsUser] = {}
        self.unknown_conversations: set[str] = set()
        self._lock = threading.Lock()
        self._scripted: dict[str, list[_Scripted]] = {}
        self._tokens: set[str] = set()
        super().__init__(ThreadingHTTPServer((host, port), _handler_class(self)))
        self.reset()

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def service_url(self) -> str:
        return f"{self.url}/teams/"

    @property
    def login_url(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/v1/.well-known/keys"

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    def reset(self) -> None:
        """Forget every call and activity (users, keys and scripted failures stay)."""
        with self._lock:
            self._calls: list[Call] = []
            self._activities: dict[tuple[str, str], Activity] = {}
            self._seq = 0

    # -- scripting -------------------------------------------------------------------------------

    def add_user(self, aad: str, *, name: str, email: str | None = None) -> TeamsUser:
        user = TeamsUser(aad, name, email)
        with self._lock:
            self.users[aad] = user
        return user

    def fail(
        self,
        operation: str,
        status: int,
        *,
        code: str = "ServiceError",
        times: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next `times` calls of `operation` (token, send, reply, update, create, member) fail:
        e.g. fail("send", 429, headers={"Retry-After": "0"}) or fail("update", 404, code="ActivityNotFound")."""
        with self._lock:
            self._scripted.setdefault(operation, []).append(_Scripted(status, code, times, dict(headers or {})))

    def mint(
        self,
        activity: Json,
        *,
        audience: str | None = None,
        issuer: str = ISSUER,
        kid: str | None = None,
        expires_in: float = 3600,
        endorse: bool = True,
        service_url: str | None = None,
        key: SigningKey | None = None,
        not_before: float | None = None,
    ) -> str:
        """A connector JWT for `activity`: signed with the published msteams key (or, with
        endorse=False, a published key endorsed for another channel; or `key`, e.g. one nobody
        published), for this bot unless `audience` says otherwise."""
        signer = key or (self.key if endorse else self.unendorsed)
        return mint_token(
            activity, signer, audience=audience or self.app_id, issuer=issuer, kid=kid, expires_in=expires_in,
            service_url=service_url, not_before=not_before,
        )  # fmt: skip

    # -- queries ---------------------------------------------------------------------------------

    def calls(self, operation: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if operation is None or c.operation == operation]

    def activities(self, conversation: str) -> list[Activity]:
        """Top-level activities of a conversation, oldest first, as they look now."""
        with self._lock:
            found = [a for (c, _), a in self._activities.items() if c == conversation and a.reply_to is None]
        return sorted(found, key=lambda a: a.id)

    def activity(self, conversation: str, activity_id: str) -> Activity:
        with self._lock:
            return self._activities[(conversation, activity_id)]

    def replies(self, conversation: str, activity_id: str) -> list[Activity]:
        with self._lock:
            found = [a for (c, _), a in self._activities.items() if c == conversation and a.reply_to == activity_id]
        return sorted(found, key=lambda a: a.id)

    def conversations(self) -> list[str]:
        with self._lock:
            return sorted({c for c, _ in self._activities})

    @staticmethod
    def personal_conversation(aad: str) -> str:
        """The 1:1 chat id create_conversation gives for a person."""
        return f"a:1{aad}"

    def jwks(self) -> Json:
        return {"keys": [k.jwk() for k in self.published]}

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, method: str, path: str, body: Any, token: str | None) -> tuple[int, Any]:
        """One request; raises ConnectorFault for an error answer."""
        operation, params = _route(method, path)
        with self._lock:
            self._calls.append(Call(operation, method, path, body, token))
            scripted = self._scripted.get(operation)
            if scripted:
                failure = scripted[0]
                failure.times -= 1
                if failure.times <= 0:
                    scripted.pop(0)
                raise ConnectorFault(failure.status, failure.code, failure.headers)
        if operation == "keys":
            return 200, self.jwks()
        if operation == "token":
            return 200, self._token(params, body)
        if operation == "unknown":
            raise ConnectorFault(404, "NotFound")
        if token is None or token not in self._tokens:
            raise ConnectorFault(401, "Unauthorized")
        with self._lock:
            return getattr(self, f"_{operation}")(params, body)  # type: ignore[no-any-return]

    def _token(self, params: dict[str, str], form: Any) -> Json:
        fields = form if isinstance(form, dict) else {}
        if params["tenant"] != self.tenant:
            raise ConnectorFault(400, "invalid_request")
        if fields.get("grant_type") != "client_credentials" or fields.get("scope") != SCOPE:
            raise ConnectorFault(400, "invalid_request")
        if fields.get("client_id") != self.app_id or fields.get("client_secret") != self.app_password:
            raise ConnectorFault(401, "invalid_client")
        with self._lock:
            token = f"fake-bot-token-{len(self._tokens) + 1}-{uuid.uuid4().hex[:8]}"
            self._tokens.add(token)
        return {"token_type": "Bearer", "expires_in": self.token_lifetime, "ext_expires_in": self.token_lifetime,
                "access_token": token}  # fmt: skip

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    def _conversation(self, params: dict[str, str]) -> str:
        conversation = params["conversation"]
        if conversation.split(";", 1)[0] in self.unknown_conversations:
            raise ConnectorFault(404, "ConversationNotFound")
        return conversation

    def _create(self, params: dict[str, str], body: Any) -> tuple[int, Json]:
        members = (body or {}).get("members") or []
        bot = ((body or {}).get("bot") or {}).get("id")
        if bot != f"28:{self.app_id}" or len(members) != 1 or (body or {}).get("tenantId") != self.tenant:
            raise ConnectorFault(400, "BadSyntax")
        member = str(members[0].get("id") or "")
        user = self.users.get(member) or next((u for u in self.users.values() if u.user_id == member), None)
        if user is None:
            raise ConnectorFault(403, "BotNotInConversationRoster")
        return 201, {"id": self.personal_conversation(user.aad)}

    def _send(self, params: dict[str, str], body: Any) -> tuple[int, Json]:
        conversation = self._conversation(params)
        activity = _check_message(body)
        self._seq += 1
        activity_id = str(_ID_BASE + self._seq)
        self._activities[(conversation, activity_id)] = Activity(conversation, activity_id, activity)
        return 201, {"id": activity_id}

    def _reply(self, params: dict[str, str], body: Any) -> tuple[int, Json]:
        conversation = self._conversation(params)
        parent = params["activity"]  # the bot's own activity, or one a person sent (not kept here)
        activity = _check_message(body)
        self._seq += 1
        activity_id = str(_ID_BASE + self._seq)
        self._activities[(conversation, activity_id)] = Activity(conversation, activity_id, activity, reply_to=parent)
        return 201, {"id": activity_id}

    def _update(self, params: dict[str, str], body: Any) -> tuple[int, Json]:
        conversation = self._conversation(params)
        found = self._activities.get((conversation, params["activity"]))
        if found is None:
            raise ConnectorFault(404, "ActivityNotFound")
        found.body = _check_message(body)
        found.updates += 1
        return 200, {"id": found.id}

    def _member(self, params: dict[str, str], body: Any) -> tuple[int, Json]:
        self._conversation(params)
        wanted = params["user"]
        user = next((u for u in self.users.values() if wanted in (u.user_id, u.aad)), None)
        if user is None:
            raise ConnectorFault(404, "MemberNotFoundInConversation")
        return 200, user.member(self.tenant)


_ROUTES = [
    ("POST", re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$"), "token"),
    ("GET", re.compile(r"^/v1/\.well-known/keys$"), "keys"),
    ("POST", re.compile(r"^/(?:[^/]+/)*v3/conversations$"), "create"),
    ("POST", re.compile(r"^/(?:[^/]+/)*v3/conversations/(?P<conversation>[^/]+)/activities$"), "send"),
    (
        "POST",
        re.compile(r"^/(?:[^/]+/)*v3/conversations/(?P<conversation>[^/]+)/activities/(?P<activity>[^/]+)$"),
        "reply",
    ),
    (
        "PUT",
        re.compile(r"^/(?:[^/]+/)*v3/conversations/(?P<conversation>[^/]+)/activities/(?P<activity>[^/]+)$"),
        "update",
    ),
    ("GET", re.compile(r"^/(?:[^/]+/)*v3/conversations/(?P<conversation>[^/]+)/members/(?P<user>[^/]+)$"), "member"),
]


def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
    for want, pattern, operation in _ROUTES:
        match = pattern.match(path)
        if match and method == want:
            return operation, {k: unquote(v) for k, v in match.groupdict().items()}
    return "unknown", {}


def _check_message(body: Any) -> Json:
    """What Teams refuses, the fake refuses: not a message, a card that is not an Adaptive Card
    1.x, or a message over the size limit."""
    if not isinstance(body, dict) or body.get("type") != "message":
        raise ConnectorFault(400, "BadSyntax")
    if len(json.dumps(body).encode()) > MAX_MESSAGE_BYTES:
        raise ConnectorFault(413, "MessageSizeTooBig")
    attachments = body.get("attachments") or []
    for item in attachments:
        content = item.get("content") if isinstance(item, dict) else None
        if item.get("contentType") != "application/vnd.microsoft.card.adaptive" or not isinstance(content, dict):
            raise ConnectorFault(400, "BadSyntax")
        if content.get("type") != "AdaptiveCard" or not str(content.get("version", "")).startswith("1."):
            raise ConnectorFault(400, "BadSyntax")
    if not attachments and not body.get("text"):
        raise ConnectorFault(400, "BadSyntax")
    return body


def _handler_class(fake: FakeTeams) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read fake.calls()
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def _serve(self) -> None:
            path = urlsplit(self.path).path
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            body: Any = None
            if raw:
                if "json" in (self.headers.get("Content-Type") or ""):
                    body = json.loads(raw)
                else:
                    body = dict(parse_qsl(raw, keep_blank_values=True))
            auth = self.headers.get("Authorization") or ""
            token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else None
            try:
                status, answer = fake.handle(self.command, path, body, token)
            except ConnectorFault as exc:
                error = {"error": exc.code} if exc.code.islower() else {"error": {"code": exc.code, "message": "fake"}}
                self._answer(exc.status, error, exc.headers)
                return
            self._answer(status, answer)

        def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler


# -- activities to Signoff, as the connector sends them ---------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """Where an activity happens: a channel (id 19:…@thread.tacv2, in a team), a 1:1 chat (a:…)."""

    id: str
    kind: str = "channel"  # channel | personal | groupChat
    team_id: str | None = None
    tenant: str = TENANT

    def shape(self, message_id: str | None = None) -> Json:
        # Inside a channel thread the conversation id carries the root message's id.
        conversation_id = f"{self.id};messageid={message_id}" if message_id and self.kind == "channel" else self.id
        return {"isGroup": self.kind != "personal", "conversationType": self.kind, "tenantId": self.tenant,
                "id": conversation_id}  # fmt: skip

    def channel_data(self) -> Json:
        data: Json = {"tenant": {"id": self.tenant}}
        if self.kind == "channel":
            team = self.team_id or self.id
            data |= {
                "channel": {"id": self.id},
                "team": {"id": team, "name": "Signoff", "aadGroupId": str(uuid.uuid4())},
            }
        return data


def _base(kind: str, user: TeamsUser, conversation: Conversation, service_url: str, app_id: str) -> Json:
    return {
        "type": kind,
        "id": f"f:{uuid.uuid4().hex}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "localTimestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000+00:00", time.gmtime()),
        "serviceUrl": service_url,
        "channelId": CHANNEL,
        "from": user.account(),
        "conversation": conversation.shape(),
        "recipient": {"id": f"28:{app_id}", "name": "Signoff"},
        "entities": [{"type": "clientInfo", "locale": "en-US", "country": "US", "platform": "Web", "timezone": "UTC"}],
        "channelData": conversation.channel_data(),
        "locale": "en-US",
    }


def invoke_action(
    user: TeamsUser,
    conversation: Conversation,
    verb: str,
    data: Json,
    *,
    service_url: str,
    reply_to: str | None = None,
    app_id: str = APP_ID,
    title: str | None = None,
) -> Json:
    """A click on a card's Action.Execute: `data` is the action's data with the inputs merged in."""
    activity = _base("invoke", user, conversation, service_url, app_id)
    activity |= {
        "name": "adaptiveCard/action",
        "conversation": conversation.shape(reply_to),
        "value": {
            "action": {"type": "Action.Execute", "title": title or verb, "verb": verb, "data": data},
            "trigger": "manual",
        },  # fmt: skip
    }
    if reply_to:
        activity["replyToId"] = reply_to
        activity["channelData"] = {**activity["channelData"], "source": {"name": "message"},
                                   "legacy": {"replyToId": reply_to}}  # fmt: skip
    return activity


def installation_update(
    user: TeamsUser, conversation: Conversation, *, service_url: str, action: str = "add", app_id: str = APP_ID
) -> Json:
    """The bot installed in (or, action="remove", removed from) a team, group chat or personal scope."""
    activity = _base("installationUpdate", user, conversation, service_url, app_id)
    activity["action"] = action
    if conversation.kind == "channel":
        activity["channelData"] = {**activity["channelData"], "settings": {"selectedChannel": {"id": conversation.id}}}
    return activity


def conversation_update(
    user: TeamsUser,
    conversation: Conversation,
    *,
    service_url: str,
    added: list[str] | None = None,
    removed: list[str] | None = None,
    event_type: str = "teamMemberAdded",
    app_id: str = APP_ID,
) -> Json:
    """Members (the bot is 28:<app id>) added to or removed from a conversation."""
    activity = _base("conversationUpdate", user, conversation, service_url, app_id)
    activity["channelData"] = {**activity["channelData"], "eventType": event_type}
    if added is not None:
        activity["membersAdded"] = [{"id": member} for member in added]
    if removed is not None:
        activity["membersRemoved"] = [{"id": member} for member in removed]
    return activity


def message_activity(
    user: TeamsUser,
    conversation: Conversation,
    *,
    service_url: str,
    text: str | None = None,
    value: Json | None = None,
    app_id: str = APP_ID,
) -> Json:
    """A message to the bot; `value` is what an Action.Submit (the fallback of a card button) sends."""
    activity = _base("message", user, conversation, service_url, app_id)
    activity["id"] = str(_ID_BASE + 500000 + next(_MESSAGE_IDS))  # message ids are numbers in Teams
    activity["textFormat"] = "plain"
    if text is not None:
        activity["text"] = f"<at>Signoff</at> {text}" if conversation.kind == "channel" else text
    if value is not None:
        activity["value"] = value
    return activity


def bearer_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}

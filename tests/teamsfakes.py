"""Teams test doubles on top of infra/local/fake_teams.py: the routing file with Teams conversation
ids on its channels, and a TeamsWorld that runs the Teams app in-process on API Gateway events
carrying JWT-signed activities, against the fake connector on 127.0.0.1 and in-memory Signoff
pieces; cards are posted by the real Notify step, to Teams and (optionally) a second surface."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from local.fake_teams import (
    Activity,
    Conversation,
    FakeTeams,
    TeamsUser,
    bearer_headers,
    installation_update,
    invoke_action,
    message_activity,
    unescape,
)
from signoff.audit.events import AuditEvent, EventType
from signoff.domain.models import Checkpoint, MessageRef
from signoff.domain.routing import LoadedRouting, parse_routing
from signoff.ports import Chat
from signoff.surfaces.teams.app import TeamsApp
from signoff.surfaces.teams.auth import BotAuthenticator, SigningKeys
from signoff.surfaces.teams.chat import TeamsChat
from signoff.surfaces.teams.connector import BotConnector, BotCredentials
from signoff.surfaces.teams.identity import TeamsDirectory
from signoff.testing.memory import (
    FixedClock,
    InMemoryActivityLog,
    InMemoryCheckpointRepository,
    InMemoryReferenceStore,
    InMemoryWorkflow,
)
from signoff.usecases.decisions import DecisionService
from signoff.usecases.followups import Followup, Followups
from signoff.usecases.workflow_steps import Steps
from tests.helpers import api_event
from tests.slackfakes import ROUTING_PATH, TASK_TOKEN, make_checkpoint

# Teams conversation ids of the routing file's channels (each a channel of one team).
TEAM = "19:signoff-team@thread.tacv2"
CHANNELS = {
    "release": "19:release@thread.tacv2",
    "payments": "19:payments@thread.tacv2",
    "docs": "19:docs@thread.tacv2",
    "leads": "19:leads@thread.tacv2",
    "signoff": TEAM,
}
EVENTS_PATH = "/teams/messages"


def teams_routing(people: list[dict[str, Any]] | None = None, roles: dict[str, Any] | None = None) -> LoadedRouting:
    """The shipped routing with a Teams conversation id on every channel (and people or roles added)."""
    data = yaml.safe_load(ROUTING_PATH.read_text(encoding="utf-8"))
    data["environments"]["production"]["channel"]["teams"] = CHANNELS["release"]
    data["teams"]["payments"]["channel"]["teams"] = CHANNELS["payments"]
    data["teams"]["docs"]["channel"]["teams"] = CHANNELS["docs"]
    data["escalation_routes"]["team-leads"]["channel"]["teams"] = CHANNELS["leads"]
    data["escalation_routes"]["release-managers"]["channel"]["teams"] = CHANNELS["release"]
    data["default_channel"]["teams"] = CHANNELS["signoff"]
    data["people"] += people or []
    data["roles"] |= roles or {}
    return parse_routing(data, source="teams test routing")


@dataclass
class TeamsWorld:
    """The Teams app on in-memory Signoff pieces and the fake connector, driven like Teams drives it."""

    fake: FakeTeams
    routing: LoadedRouting
    other: Chat | None = None  # a second surface (e.g. Slack) the checkpoint is routed to as well
    repo: InMemoryCheckpointRepository = field(default_factory=InMemoryCheckpointRepository)
    clock: FixedClock = field(default_factory=FixedClock)
    workflow: InMemoryWorkflow = field(default_factory=InMemoryWorkflow)
    monotonic: list[float] = field(default_factory=lambda: [1000.0])
    deferred: list[Followup] = field(default_factory=list)
    defer_later: bool = False  # keep follow-ups in `deferred` (as on Lambda) instead of running them

    def __post_init__(self) -> None:
        f = self.fake
        self.credentials = BotCredentials(f.app_id, f.app_password, f.tenant)
        self.connector = BotConnector(
            self.credentials, login_url=f.login_url, trusted_hosts=[f.host], sleep=lambda _: None
        )
        self.references = InMemoryReferenceStore()
        self.activity_log = InMemoryActivityLog()
        self.keys = SigningKeys(f.jwks_url, monotonic=lambda: self.monotonic[0])
        self.decisions = DecisionService(self.repo, self.clock, self.workflow)
        self.chat = TeamsChat(
            self.connector, self.routing, self.references, tenant_id=f.tenant, service_url=f.service_url,
            checkpoints=self.repo.get,
        )  # fmt: skip
        self.chats: list[Chat] = [self.chat, *([self.other] if self.other else [])]
        self.followups = Followups(self.repo, self.clock, self.routing, self.chats)
        self.app = TeamsApp(
            authenticator=BotAuthenticator(f.app_id, self.keys, [f.tenant]),
            decisions=self.decisions,
            repository=self.repo,
            routing=self.routing,
            directory=TeamsDirectory(self.routing, self.connector.member, monotonic=lambda: self.monotonic[0]),
            references=self.references,
            activities=self.activity_log,
            connector=self.connector,
            followups=self.followups,
        )
        self.steps = Steps(
            repo=self.repo, clock=self.clock, workflow=self.workflow, routing=self.routing, chats=self.chats,
            callbacks=None, decisions=self.decisions,
        )  # fmt: skip
        for person in self.routing.routing.people:
            if person.teams:
                f.add_user(person.teams.aad, name=person.name, email=person.id)

    # -- conversations and checkpoints -----------------------------------------------------------------

    def install(self, *names: str) -> None:
        """The bot is added to these channels (default: all of them), as Grace adds it."""
        for name in names or tuple(CHANNELS):
            conversation = Conversation(CHANNELS[name], "channel", team_id=TEAM, tenant=self.fake.tenant)
            activity = installation_update(self.user("grace"), conversation, service_url=self.fake.service_url)
            assert self.send(activity)["statusCode"] == 200

    def open(self, gate: str = "hard", changes: dict[str, Any] | None = None, **kw: Any) -> Checkpoint:
        """Create a checkpoint and run the Notify step: cards go where routing says, on every surface."""
        cp = make_checkpoint(gate, changes, routing=self.routing, repo=self.repo, clock=self.clock, **kw)
        self.steps.notify(cp.id, "initial", TASK_TOKEN)
        return self.get(cp.id)

    def get(self, checkpoint_id: str) -> Checkpoint:
        return self.repo.get(checkpoint_id)

    def events(self, checkpoint_id: str, type_: EventType | None = None) -> list[AuditEvent]:
        return [e for e in self.repo.events(checkpoint_id) if type_ is None or e.type is type_]

    def card_ref(self, cp: Checkpoint, name: str | None = None) -> MessageRef:
        """The Teams card `name` sees: their 1:1 chat for a sensitive checkpoint, else the channel card."""
        cards = [m for m in self.get(cp.id).messages if m.kind == "card" and m.surface == "teams"]
        if name is not None:
            dm = FakeTeams.personal_conversation(self.user(name).aad)
            mine = next((m for m in cards if m.channel == dm), None)
            if mine is not None:
                return mine
        return cards[0]

    def card(self, cp: Checkpoint, name: str | None = None) -> Activity:
        """The card activity as Teams shows it now (the shared base card)."""
        ref = self.card_ref(cp, name)
        return self.fake.activity(ref.channel, ref.ts)

    # -- people ----------------------------------------------------------------------------------------

    def user(self, name: str) -> TeamsUser:
        """A Teams user by first name; names not in the routing file get a made-up Entra id."""
        person = self.routing.routing.person(f"{name}@example.com")
        if person is not None and person.teams is not None:
            return TeamsUser(person.teams.aad, person.name, person.id)
        known = next((u for u in self.fake.users.values() if u.name.lower().startswith(name)), None)
        return known or TeamsUser(f"00000000-0000-4000-8000-{abs(hash(name)) % 10**12:012d}", name.capitalize())

    # -- requests ----------------------------------------------------------------------------------------

    def send(self, activity: dict[str, Any], token: str | None = None, **mint: Any) -> dict[str, Any]:
        """POST /v1/teams/messages as API Gateway hands it to the function, with the connector's JWT
        (minted for this activity unless `token` is given; `mint` tweaks it)."""
        jwt = token if token is not None else self.fake.mint(activity, **mint)
        event = api_event("POST", EVENTS_PATH, body=json.dumps(activity), headers=bearer_headers(jwt))
        return self.app.handle(event, self.deferred.append if self.defer_later else None)

    def click_activity(
        self, name: str, cp: Checkpoint | str, verb: str, inputs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        checkpoint_id = cp if isinstance(cp, str) else cp.id
        ref = self.card_ref(self.get(checkpoint_id), name)
        kind = "personal" if ref.channel.startswith("a:") else "channel"
        conversation = Conversation(
            ref.channel, kind, team_id=TEAM if kind == "channel" else None, tenant=self.fake.tenant
        )
        data = {"checkpoint_id": checkpoint_id, **(inputs or {})}
        return invoke_action(
            self.user(name), conversation, verb, data, service_url=self.fake.service_url, reply_to=ref.ts
        )

    def click(
        self, name: str, cp: Checkpoint | str, verb: str, inputs: dict[str, Any] | None = None, **mint: Any
    ) -> dict[str, Any]:
        """`name` clicks the `verb` button (with `inputs` typed into its ShowCard) on the card they see."""
        return self.send(self.click_activity(name, cp, verb, inputs), **mint)

    def message(self, name: str, text: str | None = None, value: dict[str, Any] | None = None) -> dict[str, Any]:
        user = self.user(name)
        chat = Conversation(FakeTeams.personal_conversation(user.aad), "personal", tenant=self.fake.tenant)
        return self.send(message_activity(user, chat, service_url=self.fake.service_url, text=text, value=value))


def invoke_value(response: dict[str, Any]) -> dict[str, Any]:
    """The invoke response's body: {"statusCode", "type", "value"}."""
    assert response["statusCode"] == 200, response
    return json.loads(response["body"])  # type: ignore[no-any-return]


def answered_card(response: dict[str, Any]) -> dict[str, Any]:
    body = invoke_value(response)
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    return body["value"]  # type: ignore[no-any-return]


def notice(card: dict[str, Any]) -> str:
    """The message on top of an answered card (unescaped)."""
    return unescape(str(card["body"][0]["text"]))


@contextmanager
def teams_world(
    routing: LoadedRouting | None = None, other: Chat | None = None, install: bool = True
) -> Iterator[TeamsWorld]:
    with FakeTeams() as fake:
        world = TeamsWorld(fake=fake, routing=routing or teams_routing(), other=other)
        if install:
            world.install()
        yield world

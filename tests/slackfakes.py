"""Slack test doubles on top of infra/local/fake_slack.py: the fake Web API loaded with the routing
file's people, loopback-only networking (the suites refuse every connection; the fake lives on
127.0.0.1), checkpoints on in-memory fakes, and a SlackWorld that runs the bolt app in-process on
signed API Gateway events, lazy listeners inline."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from slack_bolt.adapter.aws_lambda import SlackRequestHandler

from local.fake_slack import (
    FakeSlack,
    Message,
    block_actions_payload,
    interactivity_body,
    signed_request,
    slash_command_body,
    view_submission_payload,
)
from signoff.audit.changes import Change, Entry, apply_change
from signoff.audit.events import AuditEvent, EventType
from signoff.domain.cards import build_card
from signoff.domain.models import Checkpoint, MessageRef
from signoff.domain.policy import LoadedPolicy
from signoff.domain.routing import LoadedRouting, Person, load_routing, parse_routing
from signoff.ports import TaskToken
from signoff.surfaces.slack.app import InlineLazyListenerRunner, build_app, handle, request_handler
from signoff.surfaces.slack.chat import SlackChat, web_client
from signoff.surfaces.slack.identity import SlackDirectory
from signoff.testing.memory import FixedClock, InMemoryCheckpointRepository, InMemoryWorkflow
from signoff.usecases.decisions import DecisionService
from signoff.usecases.intake import CheckpointService
from tests.helpers import REPO_ROOT, FakeLambdaContext, api_event, make_request, shipped_policy

ROUTING_PATH = REPO_ROOT / "routing.yaml"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAU-task-token-that-must-never-leave-the-backend"
CALLER = "arn:aws:iam::123456789012:user/ci-pipeline"


@contextmanager
def fake_slack(routing: LoadedRouting | None = None) -> Iterator[FakeSlack]:
    """A started fake Slack that knows every person of the routing file (id = email)."""
    with FakeSlack() as fake:
        for person in (routing or shipped_routing()).routing.people:
            if person.slack:
                fake.add_user(person.slack.user, name=person.name, email=person.id, team=person.slack.team)
        yield fake


def shipped_routing() -> LoadedRouting:
    return load_routing(ROUTING_PATH)


def routing_with(changes: dict[str, Any]) -> LoadedRouting:
    """The shipped routing with top-level lists extended: routing_with({"people": [...]})."""
    import yaml

    data = yaml.safe_load(ROUTING_PATH.read_text(encoding="utf-8"))
    for key, value in changes.items():
        if isinstance(value, list):
            data[key] = [*data[key], *value]
        elif isinstance(value, dict):
            data[key] = {**data[key], **value}
    return parse_routing(data, source="test routing")


def person(routing: LoadedRouting, name: str) -> Person:
    """A directory person by first name: person(routing, "carol")."""
    found = routing.routing.person(f"{name}@example.com")
    assert found is not None, f"no {name} in the routing file"
    return found


def make_checkpoint(
    gate: str = "hard",
    changes: dict[str, Any] | None = None,
    *,
    policy: LoadedPolicy | None = None,
    routing: LoadedRouting | None = None,
    repo: InMemoryCheckpointRepository | None = None,
    clock: FixedClock | None = None,
) -> Checkpoint:
    """A pending checkpoint from the sample request of `gate`, approvers from the routing file."""
    service = CheckpointService(
        repo=repo or InMemoryCheckpointRepository(),
        policy=policy or shipped_policy(),
        clock=clock or FixedClock(),
        routing=routing or shipped_routing(),
    )
    return service.create(make_request(gate, changes), caller=CALLER, idempotency_key=None)


@dataclass
class SlackWorld:
    """The bolt app on in-memory Signoff pieces and the fake Slack, driven like Slack drives it."""

    fake: FakeSlack
    routing: LoadedRouting
    repo: InMemoryCheckpointRepository = field(default_factory=InMemoryCheckpointRepository)
    clock: FixedClock = field(default_factory=FixedClock)
    workflow: InMemoryWorkflow = field(default_factory=InMemoryWorkflow)
    directory_clock: list[float] = field(default_factory=lambda: [1000.0])

    def __post_init__(self) -> None:
        self.client = web_client(self.fake.token, self.fake.url)
        self.decisions = DecisionService(self.repo, self.clock, self.workflow)
        self.directory = SlackDirectory(self.routing, self.client, monotonic=lambda: self.directory_clock[0])
        self.chat = SlackChat(self.client, self.routing, self.directory)
        self.app = build_app(
            signing_secret=SIGNING_SECRET,
            client=self.client,
            decisions=self.decisions,
            routing=self.routing,
            repository=self.repo,
            directory=self.directory,
            chats=[self.chat],
        )
        self.handler: SlackRequestHandler = request_handler(self.app, InlineLazyListenerRunner())
        self._triggers = itertools.count(1)

    # -- checkpoints -------------------------------------------------------------------------------

    def open(self, gate: str = "hard", changes: dict[str, Any] | None = None, **kw: Any) -> Checkpoint:
        """Create a checkpoint and do what Notify does for Slack: post its cards where routing says,
        keep the refs on the checkpoint, and keep a task token to be answered on decision."""
        cp = make_checkpoint(gate, changes, routing=self.routing, repo=self.repo, clock=self.clock, **kw)
        gate_ = cp.assessment.gate
        where = self.routing.destinations(
            service=cp.request.service, environment=cp.request.environment, sensitive=gate_.sensitive,
            approvers=cp.approvers,
        )  # fmt: skip
        card = build_card(cp)
        refs = [self.chat.post_card(c.slack, None, card) for c in where.channels if c.slack]
        refs += [self.chat.post_card(None, p, card) for p in where.direct]
        posted = [r for r in refs if r is not None]
        self.repo.put_token(
            cp.id, TaskToken(token=TASK_TOKEN, phase="initial", expires_at=cp.deadline or self.clock.now())
        )

        def record(current: Checkpoint) -> Change:
            data = {"destinations": [f"slack:{r.channel}" for r in posted]}
            return Change(
                updates={"messages": [*current.messages, *posted]}, entries=[Entry(EventType.NOTIFIED, "signoff", data)]
            )

        return apply_change(self.repo, self.clock, cp.id, record)

    def get(self, checkpoint_id: str) -> Checkpoint:
        return self.repo.get(checkpoint_id)

    def events(self, checkpoint_id: str, type_: EventType | None = None) -> list[AuditEvent]:
        return [e for e in self.repo.events(checkpoint_id) if type_ is None or e.type is type_]

    def card_ref(self, cp: Checkpoint, name: str | None = None) -> MessageRef:
        """The card `name` sees: their DM for a sensitive checkpoint, else the channel card."""
        cards = [m for m in self.get(cp.id).messages if m.kind == "card"]
        if name is not None:
            dm = FakeSlack.dm_channel(self.user(name))
            mine = next((m for m in cards if m.channel == dm), None)
            if mine is not None:
                return mine
        return cards[0]

    def card(self, cp: Checkpoint, name: str | None = None) -> Message:
        """The card message as Slack shows it now."""
        ref = self.card_ref(cp, name)
        return self.fake.message(ref.channel, ref.ts)

    # -- people --------------------------------------------------------------------------------------

    def user(self, name: str) -> str:
        """Slack user id by first name; names not in the routing file get a made-up id."""
        found = self.routing.routing.person(f"{name}@example.com")
        return found.slack.user if found and found.slack else f"U0{name.upper()}"

    # -- requests ------------------------------------------------------------------------------------

    def send(
        self,
        body: str,
        *,
        secret: str = SIGNING_SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST /v1/slack/events as API Gateway hands it to the function: a REST proxy event."""
        signed = {**signed_request(body, secret, timestamp), **(headers or {})}
        event = api_event("POST", "/slack/events", body=body, headers=signed)
        return handle(event, FakeLambdaContext(function_name="signoff-slack"), handler=self.handler)

    def click_body(self, name: str, cp: Checkpoint | str, act: str, *, team: str = "T0SIGNOFF") -> str:
        checkpoint_id = cp if isinstance(cp, str) else cp.id
        ref = self.card_ref(self.get(checkpoint_id), name)
        payload = block_actions_payload(
            team,
            self.user(name),
            checkpoint_id,
            act,
            ref.channel,
            ref.ts,
            self.trigger_id(),
            response_url=self.fake.response_url,
        )
        return interactivity_body(payload)

    def click(self, name: str, cp: Checkpoint | str, act: str, **kw: Any) -> dict[str, Any]:
        """`name` clicks the `act` button on the card they see."""
        return self.send(self.click_body(name, cp, act, **kw))

    def submit(self, name: str, form: str, checkpoint_id: str, values: dict[str, str | None]) -> dict[str, Any]:
        payload = view_submission_payload("T0SIGNOFF", self.user(name), form, checkpoint_id, values, self.trigger_id())
        return self.send(interactivity_body(payload))

    def command(self, name: str, text: str) -> dict[str, Any]:
        return self.send(slash_command_body("T0SIGNOFF", self.user(name), text))

    def trigger_id(self) -> str:
        return f"{next(self._triggers)}.1767268800.fake-trigger"

    def ephemerals(self, name: str) -> list[str]:
        return [str(e["text"]) for e in self.fake.ephemerals(self.user(name))]


@contextmanager
def slack_world(routing: LoadedRouting | None = None) -> Iterator[SlackWorld]:
    routing = routing or shipped_routing()
    with fake_slack(routing) as fake:
        fake.set_usergroup("S0RELEASE", [person(routing, "carol").slack.user])  # type: ignore[union-attr]
        yield SlackWorld(fake=fake, routing=routing)

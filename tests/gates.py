"""Builders for the human-gate tests: the production wiring on in-memory fakes (service, decisions,
steps), actors from the shipped directory, a recording webhook and workflow, and the audit check
every scenario ends with."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from signoff.audit.events import AuditEvent, EventType, verify_chain
from signoff.domain.acts import Actor
from signoff.domain.models import Checkpoint
from signoff.domain.policy import LoadedPolicy
from signoff.domain.routing import LoadedRouting, load_routing
from signoff.ports import CheckpointRepository
from signoff.testing.memory import FixedClock, InMemoryChat, InMemoryCheckpointRepository, InMemoryWorkflow
from signoff.usecases.decisions import DecisionService
from signoff.usecases.intake import CheckpointService
from signoff.usecases.workflow_steps import Steps
from tests.helpers import CALLER_ARN, REPO_ROOT, derived_policy, make_request, shipped_policy, stored_checkpoints

ROUTING_PATH = REPO_ROOT / "routing.yaml"
SECRET_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAfAkeTaskT0ken-never-shown"  # a fake task token


@cache
def shipped_routing() -> LoadedRouting:
    return load_routing(ROUTING_PATH)


# -- policies with one specific gate ------------------------------------------------------------
# The hard sample lands on the `two-person` profile and the soft sample on `veto-10m`; these
# variants change only that profile.


def hard_policy(**changes: Any) -> LoadedPolicy:
    """The shipped policy with the two-person gate's fields changed, e.g. timeout_rule="cancel"."""
    return derived_policy({f"gates.two-person.{k}": v for k, v in changes.items()})


def soft_policy(**changes: Any) -> LoadedPolicy:
    return derived_policy({f"gates.veto-10m.{k}": v for k, v in changes.items()})


def one_of_one() -> LoadedPolicy:
    return hard_policy(approvals_required=1, comment_required=False)


# -- fakes -------------------------------------------------------------------------------------


class RecordingWorkflow(InMemoryWorkflow):
    """InMemoryWorkflow that also keeps every answer attempt, accepted or not."""

    def __init__(self) -> None:
        super().__init__()
        self.answer_calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_calls: list[tuple[str, str, str]] = []

    def answer(self, token: str, output: dict[str, Any]) -> bool:
        self.answer_calls.append((token, output))
        return super().answer(token, output)

    def fail(self, token: str, error: str, cause: str) -> bool:
        self.fail_calls.append((token, error, cause))
        return super().fail(token, error, cause)


@dataclass
class RecordingCallbacks:
    """The requester's webhook: records every delivery and answers with `ok`."""

    ok: bool = True
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def deliver(self, url: str, body: dict[str, Any]) -> tuple[bool, str]:
        self.calls.append((url, body))
        return (True, "200 OK") if self.ok else (False, "503 after 3 attempts")


class InterleavingRepository:
    """Delegates to `inner`; before the first save it runs `interleave` (another writer), so that
    save finds the checkpoint changed and goes stale, exactly once."""

    def __init__(self, inner: CheckpointRepository, interleave: Any = None) -> None:
        self.inner = inner
        self.interleave = interleave
        self.saves = 0

    def save(self, checkpoint: Checkpoint, *, expected: Checkpoint, events: list[AuditEvent], vote: Any = None) -> None:
        self.saves += 1
        run, self.interleave = self.interleave, None
        if run is not None:
            run()
        self.inner.save(checkpoint, expected=expected, events=events, vote=vote)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


# -- the wiring --------------------------------------------------------------------------------


@dataclass
class Gates:
    """The production wiring of the human gates on in-memory fakes and a fixed clock."""

    repo: InMemoryCheckpointRepository
    clock: FixedClock
    workflow: RecordingWorkflow
    routing: LoadedRouting
    service: CheckpointService
    decisions: DecisionService
    steps: Steps
    chat: InMemoryChat
    callbacks: RecordingCallbacks

    def create(self, gate: str = "hard", changes: dict[str, Any] | None = None, caller: str = CALLER_ARN) -> Checkpoint:
        return self.service.create(make_request(gate, changes), caller=caller, idempotency_key=None)

    def events(self, checkpoint_id: str) -> list[AuditEvent]:
        return self.repo.events(checkpoint_id)

    def types(self, checkpoint_id: str) -> list[EventType]:
        return [e.type for e in self.repo.events(checkpoint_id)]

    def of_type(self, checkpoint_id: str, type_: EventType) -> list[AuditEvent]:
        return [e for e in self.repo.events(checkpoint_id) if e.type is type_]

    def assert_chains(self) -> None:
        """Every stored checkpoint's audit trail verifies and its head matches the checkpoint."""
        for cp in stored_checkpoints(self.repo):
            events = self.repo.events(cp.id)
            assert verify_chain(events) == [], cp.id
            assert (cp.audit_seq, cp.audit_head) == (events[-1].seq, events[-1].hash), cp.id


def gates(
    policy: LoadedPolicy | None = None,
    *,
    chat: InMemoryChat | None = None,
    callbacks_ok: bool = True,
) -> Gates:
    repo = InMemoryCheckpointRepository()
    clock = FixedClock()
    workflow = RecordingWorkflow()
    routing = shipped_routing()
    chat = chat or InMemoryChat()
    callbacks = RecordingCallbacks(ok=callbacks_ok)
    service = CheckpointService(repo, policy or shipped_policy(), clock, routing=routing, workflow=workflow)
    decisions = DecisionService(repo, clock, workflow)
    steps = Steps(repo, clock, workflow, routing, chats=[chat], callbacks=callbacks, decisions=decisions)
    return Gates(repo, clock, workflow, routing, service, decisions, steps, chat, callbacks)


def actor(person_id: str, surface: str = "slack") -> Actor:
    """A person of the shipped directory as the chat surface identifies them."""
    person = shipped_routing().routing.person(person_id)
    assert person is not None and person.slack is not None, person_id
    return Actor(
        surface=surface, handle=f"slack:{person.slack.team}/{person.slack.user}", person=person.id, name=person.name
    )


def stranger() -> Actor:
    """Someone the chat surface knows but the directory does not."""
    return Actor(surface="slack", handle="slack:T0SIGNOFF/U0STRANGER", person=None, name="Stranger")


ALICE = "alice@example.com"  # the hard sample's requester
BOB = "bob@example.com"
CAROL = "carol@example.com"  # release manager
DAVE = "dave@example.com"
ERIN = "erin@example.com"  # security officer
FRANK = "frank@example.com"  # data steward
GRACE = "grace@example.com"  # payments lead
MALLORY = "mallory@example.com"  # in the directory, approves nothing

"""A realistic audit archive for the audit tools' tests, made by the real domain.

About 60 checkpoints go through the production wiring on in-memory fakes (CheckpointService,
DecisionService and the approval workflow's Notify/Finalize steps, driven the way the state machine
drives them) under the shipped policy and routing, on a fixed clock advanced by hand over about a
week that ends just before the real now: auto, soft and hard gates; approved, denied (vetoed),
expired after escalation, cancelled; refused clicks (strangers, the requester, a non-approver,
duplicates, late); escalations on timeout and by hand; webhooks; outcomes with failures and
rollbacks; two workflows stuck past their deadline (stalled) and two still waiting (not stalled).

Every event is then archived exactly as the archiver writes it (`archive_key`, `encode`), and the
table's events are handed back too, so tests can compute each figure independently.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from signoff.audit.events import AuditEvent
from signoff.audit.records import archive_key, archive_record, encode
from signoff.domain.acts import Act
from signoff.domain.models import Checkpoint, OutcomeKind, OutcomeRequest, Status
from signoff.usecases.workflow_steps import ESCALATION, INITIAL
from tests.gates import ALICE, BOB, CAROL, DAVE, GRACE, MALLORY, SECRET_TOKEN, Gates, actor, gates, stranger
from tests.helpers import CALLER_ARN, stored_checkpoints

HOOK = "https://hooks.example.com/signoff"
SCRIPT_SUMMARY = "<script>alert('pwned')</script> Deploy checkout with a <b>bold</b> claim & more"
SCRIPT_REQUESTER = "<img src=x onerror=alert(1)>@example.com"
SEED = 20260101
LIKELY = "likely"  # an outcome drawn by likely_outcome
Outcome = OutcomeKind | str | None


@dataclass
class AuditData:
    """The archive folder (it holds audit/dt=…) and the table's events it was made from."""

    root: Path
    events: list[AuditEvent]
    now: datetime  # the real time the timeline ends just before
    checkpoints: list[Checkpoint] = field(default_factory=list)

    def key_path(self, event: AuditEvent) -> Path:
        return self.root / archive_key(event)

    def by_checkpoint(self) -> dict[str, list[AuditEvent]]:
        grouped: dict[str, list[AuditEvent]] = {}
        for event in self.events:
            grouped.setdefault(event.checkpoint_id, []).append(event)
        return grouped

    @property
    def first_day(self) -> str:
        return min(e.at for e in self.events).strftime("%Y-%m-%d")

    @property
    def last_day(self) -> str:
        return max(e.at for e in self.events).strftime("%Y-%m-%d")


def write_archive(root: Path, events: list[AuditEvent]) -> None:
    """One object per event at its archive key, as the archiver writes it."""
    for event in events:
        path = root / archive_key(event)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode([archive_record(event)]))


class _Scenarios:
    """The flows a checkpoint can take, each as the state machine and people would drive it."""

    def __init__(self, g: Gates, rng: random.Random) -> None:
        self.g = g
        self.rng = rng

    # -- helpers ------------------------------------------------------------------------------

    def minutes(self, n: float) -> None:
        self.g.clock.advance(n * 60)

    def create(self, sample: str, changes: dict[str, Any] | None = None) -> Checkpoint:
        return self.g.create(sample, changes)

    def notify(self, cp: Checkpoint, phase: str = INITIAL) -> None:
        self.g.steps.notify(cp.id, phase, f"{SECRET_TOKEN}-{cp.id}-{phase}")

    def finalize(self, cp: Checkpoint, answered: bool = True) -> Checkpoint:
        current = self.g.repo.get(cp.id)
        decision = {"status": current.status.value} if answered else None
        self.g.steps.finalize(cp.id, decision)
        return self.g.repo.get(cp.id)

    def act(self, cp: Checkpoint, who: str, act: Act, comment: str | None = None) -> None:
        self.g.decisions.act(cp.id, actor(who), act, comment=comment)

    def outcome(self, cp: Checkpoint, outcome: Outcome = LIKELY) -> None:
        """Report how an approved action went (LIKELY: drawn from its score), some minutes later."""
        cp = self.g.repo.get(cp.id)
        if cp.status is not Status.APPROVED:
            return
        kind = self.likely_outcome(cp) if outcome == LIKELY else outcome
        if not isinstance(kind, OutcomeKind):
            return
        self.minutes(self.rng.choice([5, 12, 25, 40]))
        details = {
            OutcomeKind.SUCCESS: "healthy",
            OutcomeKind.FAILURE: "errors rose",
            OutcomeKind.ROLLED_BACK: "reverted",
        }
        self.g.service.report_outcome(cp.id, OutcomeRequest(outcome=kind, details=details[kind]), caller=CALLER_ARN)

    def likely_outcome(self, cp: Checkpoint) -> OutcomeKind | None:
        """Most approved actions report an outcome; higher scores fail less (the reliability diagram)."""
        if self.rng.random() < 0.15:
            return None
        success = min(0.99, cp.assessment.score.score / 100 + 0.1)
        if self.rng.random() < success:
            return OutcomeKind.SUCCESS
        return self.rng.choice([OutcomeKind.FAILURE, OutcomeKind.ROLLED_BACK])

    # -- the flows ------------------------------------------------------------------------------

    def auto(self, changes: dict[str, Any], outcome: Outcome = LIKELY) -> Checkpoint:
        cp = self.create("auto", changes)
        self.outcome(cp, outcome)
        return cp

    def soft_runs(self, changes: dict[str, Any], outcome: Outcome = LIKELY, webhook_ok: bool = True) -> Checkpoint:
        """Nobody vetoes: the window closes and it runs (fail-open); Finalize calls any webhook."""
        cp = self.create("soft", changes)
        self.notify(cp)
        self.minutes(10)
        self.g.callbacks.ok = webhook_ok
        cp = self.finalize(cp, answered=False)
        self.outcome(cp, outcome)
        return cp

    def soft_vetoed(self, changes: dict[str, Any], who: str = DAVE) -> Checkpoint:
        cp = self.create("soft", changes)
        self.notify(cp)
        self.minutes(self.rng.choice([2, 4, 7]))
        self.act(cp, who, Act.VETO, "a release is in progress")
        return self.finalize(cp)

    def two_person(
        self,
        changes: dict[str, Any],
        *,
        minutes: tuple[float, float] = (6, 4),
        refusals: tuple[str, ...] = (),
        info: bool = False,
        outcome: Outcome = LIKELY,
    ) -> Checkpoint:
        """A hard gate approved by two people (comments required), after any refused clicks."""
        cp = self.create("hard", changes)
        self.notify(cp)
        self.minutes(1)
        self._refusals(cp, refusals)
        if info:
            self.act(cp, GRACE, Act.REQUEST_INFO, "which migration window?")
        self.minutes(minutes[0])
        self.act(cp, BOB, Act.APPROVE, "diff reviewed")
        if "duplicate" in refusals:
            self.act(cp, BOB, Act.APPROVE, "clicked twice")
        self.minutes(minutes[1])
        self.act(cp, CAROL, Act.APPROVE, "window is fine")
        cp = self.finalize(cp)
        self.outcome(cp, outcome)
        return cp

    def _refusals(self, cp: Checkpoint, refusals: tuple[str, ...]) -> None:
        for refusal in refusals:
            if refusal == "stranger":
                self.g.decisions.act(cp.id, stranger(), Act.APPROVE, comment="lgtm")
            elif refusal == "requester":
                self.act(cp, ALICE, Act.APPROVE, "my own change, trust me")
            elif refusal == "mallory":
                self.act(cp, MALLORY, Act.APPROVE, "looks fine")
            elif refusal == "no_comment":
                self.act(cp, DAVE, Act.APPROVE)

    def two_person_denied(self, changes: dict[str, Any]) -> Checkpoint:
        cp = self.create("hard", changes)
        self.notify(cp)
        self.minutes(self.rng.choice([3, 8, 14]))
        self.act(cp, CAROL, Act.DENY, "not during the freeze")
        return self.finalize(cp)

    def expired(self, sample: str, changes: dict[str, Any], late_click: bool = False) -> Checkpoint:
        """Nobody answers: escalated on timeout, then the timeout rule (fail-closed) applies."""
        cp = self.create(sample, changes)
        gate = cp.assessment.gate
        self.notify(cp)
        self.g.clock.advance(gate.approval_deadline_seconds or 0)
        self.notify(cp, ESCALATION)
        self.g.clock.advance(gate.escalation_wait_seconds or 0)
        if late_click:
            self.act(cp, CAROL, Act.APPROVE, "sorry, only saw it now")
        return self.finalize(cp, answered=False)

    def escalated_then_approved(self, changes: dict[str, Any]) -> Checkpoint:
        cp = self.create("hard", changes)
        self.notify(cp)
        self.g.clock.advance(cp.assessment.gate.approval_deadline_seconds or 0)
        self.notify(cp, ESCALATION)
        self.minutes(5)
        self.act(cp, CAROL, Act.APPROVE, "approved after escalation")
        self.minutes(3)
        self.act(cp, GRACE, Act.APPROVE, "ok")
        cp = self.finalize(cp)
        self.outcome(cp)
        return cp

    def escalated_by_hand(self, changes: dict[str, Any]) -> Checkpoint:
        cp = self.create("hard", changes)
        self.notify(cp)
        self.minutes(4)
        self.act(cp, DAVE, Act.ESCALATE, "needs a release manager")
        self.minutes(6)
        self.act(cp, CAROL, Act.APPROVE, "release manager ok")
        self.minutes(2)
        self.act(cp, GRACE, Act.APPROVE, "ok from payments")
        cp = self.finalize(cp)
        self.outcome(cp)
        return cp

    def review(self, changes: dict[str, Any], who: str = BOB) -> Checkpoint:
        """A one-approver hard gate (`review`)."""
        cp = self.create("soft", changes)
        self.notify(cp)
        self.minutes(self.rng.choice([2, 9, 17, 26]))
        self.act(cp, who, Act.APPROVE, None)
        cp = self.finalize(cp)
        self.outcome(cp)
        return cp

    def cancelled(self, changes: dict[str, Any]) -> Checkpoint:
        cp = self.create("hard", changes)
        self.notify(cp)
        self.minutes(self.rng.choice([3, 6]))
        self.g.service.cancel(cp.id, actor=CALLER_ARN, reason="superseded by a newer build", only_by=CALLER_ARN)
        return self.finalize(cp)

    def stuck(self, changes: dict[str, Any]) -> Checkpoint:
        """The cards went out, then the workflow died: nothing ever applies the timeout rule."""
        cp = self.create("hard", changes)
        self.notify(cp)
        return cp


# Scores spread over the deciles (for the reliability diagram) without changing each sample's gate.
_AUTO = [{"signals.model_confidence": c} for c in (0.9, 0.93, 0.95, 0.97, 0.99)]
_AUTO_CHECKOUT = [{"signals.model_confidence": c} for c in (0.9, 0.95)]  # soft sample, high enough for auto
_SOFT = [{"signals.model_confidence": c} for c in (0.3, 0.45, 0.55, 0.65, 0.75, 0.8)]
_HARD = [{"signals.model_confidence": c} for c in (0.45, 0.6, 0.75, 0.9)]
_REVIEW = {"environment": "production", "signals.model_confidence": 0.3}  # medium risk, low band: review
_PROD_SOFT = {"environment": "production"}  # the auto sample in production: medium risk, veto window


def _timeline(s: _Scenarios, rng: random.Random) -> list[Checkpoint]:
    """The mixed flows, in a shuffled but seeded order, a few hours apart."""
    flows: list[Any] = []
    for i in range(12):
        env = {"environment": "dev"} if i % 3 == 0 else {}
        flows.append(lambda i=i, env=env: s.auto({**_AUTO[i % len(_AUTO)], **env}))
    for i in range(4):
        flows.append(lambda i=i: s.auto(_AUTO_CHECKOUT[i % 2]))
    for i in range(9):
        env = {"environment": "dev"} if i % 4 == 0 else {}
        hook = {"callback_url": HOOK} if i % 3 == 0 else {}
        flows.append(
            lambda i=i, env=env, hook=hook: s.soft_runs({**_SOFT[i % len(_SOFT)], **env, **hook}, webhook_ok=i != 3)
        )
    flows.append(lambda: s.soft_runs(_SOFT[2], outcome=OutcomeKind.ROLLED_BACK))
    for _ in range(3):
        flows.append(lambda: s.soft_runs(_PROD_SOFT))
    for i in range(3):
        flows.append(lambda i=i: s.soft_vetoed(_SOFT[i]))
    refusals: list[tuple[str, ...]] = [("stranger",), ("requester",), ("mallory", "duplicate"), ("no_comment",), ()]
    for i in range(8):
        flows.append(
            lambda i=i: s.two_person(
                {**_HARD[i % len(_HARD)], "callback_url": HOOK} if i % 3 == 0 else _HARD[i % len(_HARD)],
                minutes=(rng.choice([2, 5, 9, 14]), rng.choice([1, 3, 6, 12])),
                refusals=refusals[i % len(refusals)],
                info=i % 4 == 1,
            )
        )
    flows.append(
        lambda: s.two_person({"summary": SCRIPT_SUMMARY, "requester.id": SCRIPT_REQUESTER}, outcome=OutcomeKind.FAILURE)
    )
    for i in range(3):
        flows.append(lambda i=i: s.two_person_denied(_HARD[i]))
    flows.append(lambda: s.expired("hard", _HARD[0], late_click=True))
    flows.append(lambda: s.expired("hard", _HARD[2]))
    flows.append(lambda: s.expired("soft", _REVIEW))
    for i in range(2):
        flows.append(lambda i=i: s.escalated_then_approved(_HARD[i + 1]))
    for i in range(2):
        flows.append(lambda i=i: s.escalated_by_hand(_HARD[i + 2]))
    for who in (BOB, GRACE, DAVE, CAROL):
        flows.append(lambda who=who: s.review(_REVIEW, who=who))
    for i in range(3):
        flows.append(lambda i=i: s.cancelled(_HARD[i]))
    for i in range(2):
        flows.append(lambda i=i: s.stuck(_HARD[i]))
    rng.shuffle(flows)
    made: list[Checkpoint] = []
    for flow in flows:
        s.minutes(rng.choice([45, 90, 120, 150, 180, 240]))
        made.append(flow())
    return made


def build_audit_data(root: Path, *, now: datetime | None = None, seed: int = SEED) -> AuditData:
    """Run the flows and archive every event under `root`; the timeline ends just before `now`."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    rng = random.Random(seed)
    g = gates()
    g.clock.at = (now - timedelta(days=10)).replace(minute=0, second=0)
    s = _Scenarios(g, rng)
    _timeline(s, rng)
    if g.clock.now() > now - timedelta(hours=2):
        raise AssertionError("the timeline ran past the present; shorten it")
    # Two checkpoints still inside their approval window (not stalled): created moments ago.
    g.clock.at = now - timedelta(minutes=5)
    s.stuck(_HARD[3])
    g.clock.advance(60)
    s.stuck({**_HARD[1], "risk.data_sensitivity": "internal"})
    g.assert_chains()
    checkpoints = stored_checkpoints(g.repo)
    events = [e for cp in sorted(checkpoints, key=lambda c: c.created_at) for e in g.repo.events(cp.id)]
    write_archive(root, events)
    return AuditData(root=root, events=events, now=now, checkpoints=checkpoints)

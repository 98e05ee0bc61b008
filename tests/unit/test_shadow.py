"""Shadow policies: evaluated beside the active one on every checkpoint, recorded, never acting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signoff.audit.events import EventType
from signoff.domain.acts import Act
from signoff.domain.models import Status
from signoff.domain.policy import GateKind
from signoff.tools.cli import main
from signoff.tools.simulate import shadow_report
from signoff.tools.trail import from_archive, from_events
from signoff.usecases.workflow_steps import INITIAL
from tests.auditdata import write_archive
from tests.gates import BOB, CAROL, Gates, actor, gates
from tests.helpers import derived_policy

pytestmark = pytest.mark.unit

# Everything auto in every class: the opposite of the shipped policy for hard gates.
LAX = {
    "version": "2.0.0-shadow",
    "thresholds": {r: {"auto": 0, "manual": 0} for r in ("low", "medium", "high")},
    "matrix": {r: {"high": "auto", "medium": "auto", "low": "auto"} for r in ("low", "medium", "high")},
}
# Everything a two-person hard gate.
STRICT = {
    "version": "2.0.0-strict",
    "matrix": {
        r: {"high": "two-person", "medium": "two-person", "low": "two-person"} for r in ("low", "medium", "high")
    },
}


def _with_shadow(changes: dict[str, object]) -> Gates:
    g = gates()
    g.service.shadow = derived_policy(changes)
    return g


def _approve_twice(g: Gates, checkpoint_id: str) -> None:
    g.steps.notify(checkpoint_id, INITIAL, "token-" + checkpoint_id)
    g.decisions.act(checkpoint_id, actor(BOB), Act.APPROVE, comment="diff reviewed")
    g.decisions.act(checkpoint_id, actor(CAROL), Act.APPROVE, comment="window is fine")
    g.steps.finalize(checkpoint_id, {"status": "APPROVED"})


def test_a_lax_shadow_is_recorded_but_the_hard_gate_still_waits_for_people() -> None:
    g = _with_shadow(LAX)
    cp = g.create("hard")
    assert cp.assessment.gate.kind is GateKind.HARD
    assert cp.status is Status.PENDING  # the shadow said auto; nothing ran
    assert cp.shadow is not None and cp.shadow.gate is GateKind.AUTO
    assert cp.shadow.policy_version == g.service.shadow.version  # type: ignore[union-attr]
    requested = g.events(cp.id)[0]
    assert requested.type is EventType.REQUESTED and requested.data["shadow"]["gate"] == "auto"
    assert EventType.DECIDED not in g.types(cp.id)
    _approve_twice(g, cp.id)
    decided = [e for e in g.events(cp.id) if e.type is EventType.DECIDED]
    assert len(decided) == 1 and decided[0].data["gate"] == "hard" and decided[0].data["shadow"]["gate"] == "auto"
    assert g.repo.get(cp.id).status is Status.APPROVED
    g.assert_chains()


def test_a_strict_shadow_does_not_stop_an_auto_gate() -> None:
    g = _with_shadow(STRICT)
    cp = g.create("auto")
    assert cp.status is Status.APPROVED and cp.decided_by == "policy"
    assert cp.shadow is not None and cp.shadow.gate is GateKind.HARD and cp.shadow.approvals_required == 2
    decided = next(e for e in g.events(cp.id) if e.type is EventType.DECIDED)
    assert decided.data["shadow"]["gate"] == "hard"


def test_a_shadow_that_cannot_assess_a_request_records_why() -> None:
    g = _with_shadow({"environments": ["dev", "production"], "version": "3.0.0"})
    cp = g.create("auto")  # staging
    assert cp.status is Status.APPROVED
    assert cp.shadow is not None and cp.shadow.gate is None and "staging" in (cp.shadow.error or "")


def test_without_a_shadow_nothing_is_recorded() -> None:
    g = gates()
    cp = g.create("auto")
    assert cp.shadow is None and "shadow" not in g.events(cp.id)[0].data


def test_the_shadow_report_compares_recorded_verdicts_with_the_gates_that_acted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    g = _with_shadow(LAX)
    hard = [g.create("hard") for _ in range(3)]
    soft = [g.create("soft") for _ in range(2)]
    auto = [g.create("auto") for _ in range(4)]
    for cp in hard[:2]:
        _approve_twice(g, cp.id)
    events = [e for cp in [*hard, *soft, *auto] for e in g.events(cp.id)]
    write_archive(tmp_path, events)
    past = from_archive(tmp_path)

    reports = shadow_report(past)
    assert list(reports) == [g.service.shadow.version]  # type: ignore[union-attr]
    result = reports[g.service.shadow.version]  # type: ignore[union-attr]
    assert result.replayed == 9 and result.unchanged == len(auto)
    assert sorted(c.checkpoint_id for c in result.changes) == sorted(cp.id for cp in [*hard, *soft])
    assert {c.transition for c in result.changes} == {"hard->auto", "soft->auto"}
    assert result.approvals_saved == sum(cp.assessment.gate.approvals_required for cp in hard)
    assert result.veto_windows_saved == len(soft)
    by_id = {cp.id: events for cp in [*hard, *soft, *auto] for events in [g.events(cp.id)]}
    assert shadow_report(from_events(by_id.items()))[result.candidate_version].as_json() == result.as_json()

    assert main(["policy", "shadow-report", "--archive", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "it never acted" in out and all(cp.id in out for cp in [*hard, *soft])
    assert main(["policy", "shadow-report", "--archive", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["past"] == 9

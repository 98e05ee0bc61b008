"""`signoff policy simulate`: replaying an archive under a candidate policy, checked against an
independent computation over the checkpoints the archive was made from."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from signoff.domain.engine import assess
from signoff.domain.models import OutcomeKind, Status
from signoff.domain.policy import GateKind, load_policy
from signoff.tools.cli import main
from signoff.tools.simulate import replay, transitions
from signoff.tools.trail import from_archive, from_events
from tests.auditdata import AuditData, build_audit_data

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "signoff.yaml"


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> AuditData:
    return build_audit_data(tmp_path_factory.mktemp("archive"))


def _candidate(tmp_path: Path, **thresholds: dict[str, float]) -> Path:
    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    data["version"] = "1.1.0-candidate"
    data["thresholds"].update(thresholds)
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_the_same_policy_changes_nothing(audit: AuditData) -> None:
    result = replay(from_archive(audit.root), load_policy(POLICY))
    assert result.replayed == len(audit.checkpoints)
    assert result.changes == [] and result.not_replayable == []


def test_a_laxer_and_a_stricter_class_name_every_changed_checkpoint_and_count_like_the_engine(
    audit: AuditData, tmp_path: Path
) -> None:
    candidate_path = _candidate(
        tmp_path,
        low={"auto": 70, "manual": 50},  # laxer: more auto
        medium={"auto": 99, "manual": 98},  # stricter: more review
    )
    candidate = load_policy(candidate_path)
    result = replay(from_archive(audit.root), candidate)

    # Independently: the checkpoints the archive was made from, assessed again by the engine.
    expected: dict[str, tuple[str, str]] = {}
    failures_auto, denied_auto, saved, added = [], [], 0, 0
    for cp in audit.checkpoints:
        before, after = cp.assessment.gate, assess(cp.request, candidate).gate
        if before.kind is after.kind:
            continue
        expected[cp.id] = (before.kind.value, after.kind.value)
        bad = cp.outcome is not None and cp.outcome.outcome is not OutcomeKind.SUCCESS
        if after.kind is GateKind.AUTO and bad:
            failures_auto.append(cp.id)
        if after.kind is GateKind.AUTO and cp.status is Status.DENIED:
            denied_auto.append(cp.id)
        saved += before.approvals_required if before.kind is GateKind.HARD else 0
        added += after.approvals_required if after.kind is GateKind.HARD else 0

    assert expected, "the candidate must change something for this test to mean anything"
    assert {c.checkpoint_id: (c.gate_before, c.gate_after) for c in result.changes} == expected
    assert transitions(result) == Counter(f"{b}->{a}" for b, a in expected.values())
    assert sum(sum(row.values()) for row in result.by_class.values()) == len(expected)
    assert sorted(result.newly_auto_failures) == sorted(failures_auto)
    assert sorted(result.newly_auto_denied) == sorted(denied_auto)
    assert (result.approvals_saved, result.approvals_added) == (saved, added)
    assert result.unchanged == len(audit.checkpoints) - len(expected)
    assert {"auto", "hard"} <= {c.gate_after for c in result.changes}  # both directions happened


def test_the_api_trail_replays_the_same_as_the_archive(audit: AuditData, tmp_path: Path) -> None:
    candidate = load_policy(_candidate(tmp_path, low={"auto": 70, "manual": 50}))
    from_api = replay(from_events(audit.by_checkpoint().items()), candidate)
    from_files = replay(from_archive(audit.root), candidate)
    assert from_api.as_json() == from_files.as_json()


def test_a_candidate_without_an_environment_says_which_checkpoints_it_cannot_replay(
    audit: AuditData, tmp_path: Path
) -> None:
    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    data["environments"] = ["staging", "production"]
    path = tmp_path / "no-dev.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = replay(from_archive(audit.root), load_policy(path))
    dev = [cp.id for cp in audit.checkpoints if cp.request.environment == "dev"]
    assert dev and sorted(cid for cid, _ in result.not_replayable) == sorted(dev)
    assert all("environment" in why for _, why in result.not_replayable)


def test_cli(audit: AuditData, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    candidate = _candidate(tmp_path, low={"auto": 70, "manual": 50})
    assert main(["policy", "simulate", str(candidate), "--archive", str(audit.root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["past"] == len(audit.checkpoints)
    assert all(c["transition"] == f"{c['gate_before']}->{c['gate_after']}" for c in data["changes"])
    assert main(["policy", "simulate", str(candidate), "--archive", str(audit.root)]) == 0
    out = capsys.readouterr().out
    assert "would change gate" in out and "changed checkpoints:" in out
    for change in data["changes"]:
        assert change["checkpoint_id"] in out
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: nope\n", encoding="utf-8")
    assert main(["policy", "simulate", str(broken), "--archive", str(audit.root)]) == 1
    assert "INVALID" in capsys.readouterr().err

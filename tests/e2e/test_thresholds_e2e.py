"""Thresholds from evidence on a local stack of its own: the calibration demo drives checkpoints
with outcomes under the learning-period policy, with the shipped policy deployed as its shadow.
Then: every checkpoint carries the shadow's verdict and none of them acted on it; `policy
shadow-report` and `policy simulate` over the mirrored archive name exactly the checkpoints the
engine, run here independently, says would change; `calibrate` reads the archive."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from bench.calibration_demo import Driven, drive, wait_for_archive
from signoff.domain.engine import assess
from signoff.domain.models import CheckpointRequest
from signoff.domain.policy import load_policy
from tests.e2e.conftest import PYTHONPATH, ROOT, LocalSignoff, start_local

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("thresholds")]
LEARNING = ROOT / "bench" / "calibration-policy.yaml"
SHIPPED = ROOT / "signoff.yaml"
N = 240


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    yield from start_local(tmp_path_factory, SIGNOFF_POLICY=str(LEARNING), SIGNOFF_SHADOW_POLICY=str(SHIPPED))


@pytest.fixture(scope="module")
def run(stack: LocalSignoff) -> list[Driven]:
    driven = drive(stack.url, N, seed=4, workers=2)
    assert stack.archive is not None
    outcomes = wait_for_archive(stack.archive, sum(1 for d in driven if d.outcome))
    assert len(outcomes) == sum(1 for d in driven if d.outcome)
    return driven


def cli(*args: str) -> Any:
    env = {**os.environ, "PYTHONPATH": PYTHONPATH}
    out = subprocess.run(
        [sys.executable, "-m", "signoff.tools.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _would_change(driven: list[Driven]) -> dict[str, str]:
    """Independently: the shipped policy's gate for each request, where it differs from the one that acted."""
    shipped = load_policy(SHIPPED)
    changed = {}
    for d in driven:
        cp = d.checkpoint
        gate = assess(CheckpointRequest.model_validate(cp["request"]), shipped).gate.kind.value
        if gate != cp["assessment"]["gate"]["kind"]:
            changed[str(cp["id"])] = f"{cp['assessment']['gate']['kind']}->{gate}"
    return changed


def test_the_shadow_is_recorded_on_every_checkpoint_and_never_acts(stack: LocalSignoff, run: list[Driven]) -> None:
    shipped = load_policy(SHIPPED)
    for d in run:
        cp = stack.checkpoint(str(d.checkpoint["id"]))
        assert cp["status"] == "APPROVED" and cp["decided_by"] == "policy"  # the learning policy acted
        assert cp["shadow"]["policy_version"] == shipped.version
        events = stack.events(cp["id"])
        recorded = {k: v for k, v in cp["shadow"].items() if v is not None}  # the trail leaves out nulls
        assert events[0]["data"]["shadow"] == recorded
        decided = [e for e in events if e["type"] == "decided"]
        assert len(decided) == 1 and decided[0]["data"]["shadow"]["gate"] == cp["shadow"]["gate"]
    assert {d.checkpoint["shadow"]["gate"] for d in run} >= {"auto", "soft", "hard"}
    assert not stack.executions()  # not one approval workflow started, whatever the shadow said


def test_shadow_report_and_simulate_name_every_change_the_engine_computes(
    stack: LocalSignoff, run: list[Driven]
) -> None:
    expected = _would_change(run)
    assert expected
    shadow = json.loads(cli("policy", "shadow-report", "--archive", str(stack.archive), "--json"))
    (report,) = shadow["shadows"].values()
    assert {c["checkpoint_id"]: c["transition"] for c in report["changes"]} == expected
    simulated = json.loads(cli("policy", "simulate", str(SHIPPED), "--archive", str(stack.archive), "--json"))
    assert {c["checkpoint_id"]: c["transition"] for c in simulated["changes"]} == expected
    assert simulated["replayed"] == len(run) and simulated["unchanged"] == len(run) - len(expected)
    counted = Counter(expected.values())
    assert Counter(c["transition"] for c in simulated["changes"]) == counted
    bad = {str(d.checkpoint["id"]) for d in run if d.outcome in ("failure", "rolled_back")}
    auto_now = {cid for cid, t in expected.items() if t.endswith("->auto")}
    assert set(simulated["newly_auto_failures"]) == bad & auto_now


def test_calibrate_reads_the_archive_and_wants_more_outcomes_than_this_small_run(
    stack: LocalSignoff, run: list[Driven]
) -> None:
    out = json.loads(cli("calibrate", "--archive", str(stack.archive), "--policy", str(SHIPPED), "--json"))
    groups = {g["group"]: g for g in out["groups"]}
    assert sum(g["outcomes"] for g in groups.values()) == sum(1 for d in run if d.outcome)
    low = groups["low"]["recommendation"]
    assert low["auto"] is None and low["needs"] > 0 and f"{low['needs']} more" in low["reason"]

"""A calibration map in the policy: versioned and hashed, applied by the engine, shown on the card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from signoff.domain.calibration import Calibration, Curve, CurveKind
from signoff.domain.cards import build_card
from signoff.domain.engine import assess
from signoff.domain.errors import PolicyError
from signoff.domain.models import CheckpointRequest
from signoff.domain.policy import Band, GateKind, parse_policy
from tests.helpers import CALLER_ARN, make_request, memory_service

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "signoff.yaml"

# Low risk: 70 raw means 0.99 observed (underconfident scores), so with the map it auto-executes.
CALIBRATION: dict[str, Any] = {
    "version": "1.0.0",
    "curves": {
        "low": {"kind": "isotonic", "points": [[0, 0.0], [50, 0.4], [70, 0.99], [100, 0.999]]},
        "medium": {"kind": "platt", "a": 12.0, "b": -6.0},
    },
}


def _data(**changes: Any) -> dict[str, Any]:
    data = yaml.safe_load(POLICY.read_text(encoding="utf-8"))
    data.update(changes)
    return data


def _request(model_confidence: float) -> CheckpointRequest:
    # The auto sample (staging: low risk) with a weaker model signal: raw score in the 60s.
    return make_request("auto", {"signals.model_confidence": model_confidence, "signals.observability_alignment": 0.5})


def test_isotonic_interpolates_and_clips_platt_is_logistic() -> None:
    curve = Curve.model_validate(CALIBRATION["curves"]["low"])
    assert curve.probability(60) == pytest.approx(0.695)
    assert curve.probability(-5) == 0.0 and curve.probability(100) == 0.999
    platt = Curve(kind=CurveKind.PLATT, a=12.0, b=-6.0)
    assert platt.probability(50) == pytest.approx(0.5)
    assert platt.probability(100) == pytest.approx(1 / (1 + 2.718281828459045**-6))


@pytest.mark.parametrize(
    ("curve", "message"),
    [
        ({"kind": "isotonic", "points": [[10, 0.5], [5, 0.6]]}, "must increase"),
        ({"kind": "isotonic", "points": [[10, 0.6], [20, 0.5]]}, "must not decrease"),
        ({"kind": "isotonic", "points": [[10, 1.5]]}, "probability 0-1"),
        ({"kind": "platt", "a": -1, "b": 0}, "must not be negative"),
        ({"kind": "platt", "a": 1}, "has a and b"),
    ],
)
def test_a_broken_map_is_refused_with_its_path(curve: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(_data(calibration={"version": "1.0.0", "curves": {"low": curve}}))
    assert any(p.startswith("calibration.curves.low") and message in p for p in exc.value.problems)


def test_a_map_for_an_unknown_class_is_refused() -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy(_data(calibration={"version": "1.0.0", "curves": {"extreme": CALIBRATION["curves"]["low"]}}))
    assert any("unknown risk classes extreme" in p for p in exc.value.problems)


def test_the_map_is_versioned_and_hashed_and_changes_the_policy_version() -> None:
    plain, calibrated = parse_policy(_data()), parse_policy(_data(calibration=CALIBRATION))
    assert plain.calibration_version is None
    assert calibrated.version != plain.version
    cal = Calibration.model_validate(CALIBRATION)
    assert calibrated.calibration_version == cal.stamp
    changed = Calibration.model_validate({**CALIBRATION, "description": "refit"})
    assert changed.stamp != cal.stamp and changed.stamp.startswith("1.0.0+")


def test_the_engine_gates_on_the_calibrated_score_and_explains_both() -> None:
    plain, calibrated = parse_policy(_data()), parse_policy(_data(calibration=CALIBRATION))
    request = _request(0.5)
    before, after = assess(request, plain), assess(request, calibrated)
    assert before.score.score == after.score.score  # the raw score is kept as it was
    assert before.calibrated_score is None and before.calibration_version is None
    assert after.calibrated_score is not None and after.calibrated_score > after.score.score
    assert before.band is not Band.HIGH and after.band is Band.HIGH
    assert after.gate.kind is GateKind.AUTO
    assert after.calibration_version == calibrated.calibration_version
    assert any(
        "calibrated confidence" in line and f"raw score {after.score.score:g}" in line for line in after.explanation
    )


def test_a_class_without_a_curve_keeps_its_raw_score() -> None:
    loaded = parse_policy(
        _data(calibration={"version": "1.0.0", "curves": {"medium": CALIBRATION["curves"]["medium"]}})
    )
    result = assess(_request(0.5), loaded)  # staging: low risk, no curve
    assert result.calibrated_score is None and result.calibration_version is None
    assert result.band is assess(_request(0.5), parse_policy(_data())).band


def test_the_card_shows_raw_and_calibrated() -> None:
    loaded = parse_policy(_data(calibration=CALIBRATION))
    cp = memory_service(policy=loaded).service.create(_request(0.5), caller=CALLER_ARN, idempotency_key=None)
    line = build_card(cp).score_line
    assert f"{cp.assessment.calibrated_score:g}/100 calibrated" in line and f"raw {cp.assessment.score.score:g}" in line

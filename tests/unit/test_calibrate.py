"""`signoff calibrate`: statistics, the fitted map, the recommendation, judged against a known truth."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml

from signoff.domain.calibration import CurveKind
from signoff.domain.policy import load_policy, parse_policy
from signoff.tools.calibrate import (
    ISOTONIC_MIN,
    Outcome,
    analyse,
    ece,
    fit_curve,
    held_out_pooled,
    min_outcomes,
    policy_diff,
    proposed_calibration,
    proposed_policy,
    raw_threshold,
    recommend,
    wilson,
)
from signoff.tools.cli import main
from signoff.tools.synthetic import TRUTHS, judge, synthetic_outcomes

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "signoff.yaml"
TOLERANCE = 0.01


@pytest.fixture(scope="module")
def synthetic() -> list[Outcome]:
    return synthetic_outcomes(5000, seed=1)


@pytest.fixture(scope="module")
def report(synthetic: list[Outcome]):  # type: ignore[no-untyped-def]
    return analyse(synthetic, source="synthetic", policy=load_policy(POLICY), tolerance=TOLERANCE)


# -- statistics ----------------------------------------------------------------------------------


def test_wilson_interval_matches_the_textbook_values() -> None:
    # 95 % two-sided (z = 1.96): 8 of 10 -> 0.490 .. 0.943 (Wilson 1927, as in Newcombe 1998).
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == pytest.approx(1.0)


def test_min_outcomes_is_the_fewest_that_can_clear_the_tolerance() -> None:
    n = min_outcomes(0.01)
    assert 1 - wilson(n, n)[0] <= 0.01 < 1 - wilson(n - 1, n - 1)[0]


def test_ece_is_zero_for_a_perfect_forecast_and_the_gap_for_a_constant_one() -> None:
    assert ece([1.0, 1.0, 0.0], [True, True, False]) == 0.0
    assert ece([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)


# -- the synthetic truth (the figures) ------------------------------------------------------


def test_raw_scores_are_miscalibrated_and_the_fitted_map_fixes_it_on_a_held_out_half(
    synthetic: list[Outcome],
) -> None:
    raw, calibrated = held_out_pooled(synthetic)
    assert raw >= 0.10
    assert calibrated <= 0.03


def test_recommended_thresholds_stay_within_the_tolerance_and_automate_most_of_what_the_truth_allows(
    report,  # type: ignore[no-untyped-def]
) -> None:
    # A class without a recommendation keeps its current T_auto (the policy would not change).
    thresholds = {
        g.group: g.recommendation.auto if g.recommendation.auto is not None else g.current["auto"]
        for g in report.groups
    }
    assert report.group("low").recommendation.auto is not None  # the big class does get one
    truth = judge(thresholds, TOLERANCE)
    assert truth.worst_class_failure_rate <= TOLERANCE
    assert truth.share_of_allowed >= 0.60


def test_the_truth_is_reachable_only_by_fitting_not_by_the_raw_score(synthetic: list[Outcome]) -> None:
    # The generator keeps its promise: the truth is far from the score (and differs by class).
    gaps = [abs(o.truth - o.score / 100) for o in synthetic if o.truth is not None]
    assert sum(gaps) / len(gaps) >= 0.10
    assert TRUTHS["high"].success(80) < TRUTHS["low"].success(80)
    assert synthetic_outcomes(50, 7) == synthetic_outcomes(50, 7)


# -- the map -------------------------------------------------------------------------------------


def test_isotonic_from_a_thousand_outcomes_platt_below_and_the_engine_applies_it_like_scikit_learn() -> None:
    outcomes = synthetic_outcomes(2 * ISOTONIC_MIN + 400, seed=3)
    low = [o for o in outcomes if o.group == "low"]
    assert len(low) >= ISOTONIC_MIN
    curve = fit_curve(low)
    assert curve.kind is CurveKind.ISOTONIC
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(
        [o.score for o in low], [1.0 if o.success else 0.0 for o in low]
    )
    probe = [0, 12.5, 55, 70.01, 83.3, 91, 99.99, 100]
    for score, expected in zip(probe, iso.predict(probe), strict=True):
        assert curve.probability(score) == pytest.approx(expected, abs=1e-4)
    small = fit_curve(low[:300])
    assert small.kind is CurveKind.PLATT
    assert small.probability(95) > small.probability(60)


def test_a_proposed_map_is_versioned_and_hashed(report) -> None:  # type: ignore[no-untyped-def]
    calibration = proposed_calibration(report, "1.2.0")
    assert calibration is not None
    assert calibration.stamp.startswith("1.2.0+") and len(calibration.sha256) == 64
    assert set(calibration.curves) == {g.group for g in report.groups if g.recommendation.auto is not None}


# -- too little evidence ---------------------------------------------------------------------------


def test_with_fewer_outcomes_than_the_minimum_it_recommends_no_change_and_says_how_many_more() -> None:
    rng = random.Random(5)
    outcomes = [Outcome(f"cp{i}", "low", "dev", rng.uniform(80, 100), True) for i in range(120)]
    rec = recommend(outcomes, TOLERANCE, 0.05)
    need = min_outcomes(TOLERANCE)
    assert rec.auto is None and rec.manual is None
    assert rec.needs == need - 120
    assert f"{need - 120} more" in rec.reason and "no change" in rec.reason


def test_a_minimum_set_by_the_owner_is_honoured() -> None:
    outcomes = [Outcome(f"cp{i}", "low", "dev", 90 + i % 10, True) for i in range(1000)]
    assert recommend(outcomes, TOLERANCE, 0.05).auto is not None
    rec = recommend(outcomes, TOLERANCE, 0.05, minimum=1500)
    assert rec.auto is None and rec.needs == 500


def test_failures_everywhere_give_no_recommendation_and_say_why() -> None:
    outcomes = [Outcome(f"cp{i}", "low", "dev", 50 + i % 50, i % 10 != 0) for i in range(2000)]
    rec = recommend(outcomes, TOLERANCE, 0.05)
    assert rec.auto is None and "no threshold" in rec.reason


# -- the proposal --------------------------------------------------------------------------------


def test_the_proposal_changes_only_the_recommended_thresholds_and_is_a_valid_policy(report) -> None:  # type: ignore[no-untyped-def]
    text = POLICY.read_text(encoding="utf-8")
    proposal = proposed_policy(text, report)
    loaded = parse_policy(yaml.safe_load(proposal))
    before = yaml.safe_load(text)
    after = yaml.safe_load(proposal)
    assert {k: v for k, v in before.items() if k != "thresholds"} == {
        k: v for k, v in after.items() if k != "thresholds"
    }
    low = report.group("low").recommendation
    assert loaded.policy.thresholds["low"].auto == low.auto
    assert after["thresholds"]["medium"] == before["thresholds"]["medium"]  # no recommendation: unchanged
    diff = policy_diff(POLICY, report)
    assert diff.count("\n-  ") == 1 and "+  low:" in diff
    assert POLICY.read_text(encoding="utf-8") == text  # never applied


def test_cli_json_and_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    written = tmp_path / "calibration.yaml"
    code = main(
        [
            "calibrate",
            "--synthetic",
            "3000",
            "--seed",
            "2",
            "--policy",
            str(POLICY),
            "--json",
            "--write-map",
            str(written),
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert {g["group"] for g in data["groups"]} == {"low", "medium", "high"}
    assert data["truth"]["true_failure_rate_among_auto"] <= TOLERANCE
    assert data["policy_diff"].startswith("---")
    assert yaml.safe_load(written.read_text())["calibration"]["curves"]
    assert main(["calibrate", "--synthetic", "100", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "no change" in out and "more)" in out


def test_cli_refuses_a_bad_tolerance_and_a_missing_archive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["calibrate", "--synthetic", "10", "--tolerance", "150%"])
    assert exc.value.code == 3
    assert main(["calibrate", "--archive", str(tmp_path / "nowhere")]) == 3
    assert "no archive folder" in capsys.readouterr().err


def test_helpdesk_answers_rated_by_the_asker_are_outcomes_of_their_class(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from signoff.audit.events import AuditEvent, EventType
    from signoff.tools.trail import helpdesk_outcomes
    from tests.auditdata import write_archive

    at = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def event(conv: str, seq: int, kind: EventType, data: dict[str, object]) -> AuditEvent:
        return AuditEvent(
            checkpoint_id=conv, seq=seq, type=kind, at=at, actor="U1", data=data, prev_hash="0" * 64, hash=f"{seq:064d}"
        )

    events = [
        event("hd_1", 1, EventType.HELPDESK_TRIAGED, {"class": "access", "confidence": 82.5}),
        event("hd_1", 2, EventType.HELPDESK_FEEDBACK, {"value": "helpful", "by_asker": True, "class": "access"}),
        event("hd_2", 1, EventType.HELPDESK_TRIAGED, {"class": "access", "confidence": 40}),
        event("hd_2", 2, EventType.HELPDESK_FEEDBACK, {"value": "helpful", "by_asker": True, "class": "access"}),
        event("hd_2", 3, EventType.HELPDESK_FEEDBACK, {"value": "not_helpful", "by_asker": True, "class": "access"}),
        event("hd_3", 1, EventType.HELPDESK_TRIAGED, {"class": "howto", "confidence": 90}),
        event("hd_3", 2, EventType.HELPDESK_FEEDBACK, {"value": "not_helpful", "by_asker": False, "class": "howto"}),
        event("hd_4", 1, EventType.HELPDESK_TRIAGED, {"class": "howto", "confidence": 70}),  # never rated
    ]
    write_archive(tmp_path, events)
    found = sorted(helpdesk_outcomes(tmp_path), key=lambda o: o.key)
    assert [(o.key, o.group, o.score, o.success) for o in found] == [
        ("hd_1", "helpdesk:access", 82.5, True),
        ("hd_2", "helpdesk:access", 40.0, False),  # the asker's last word counts; a bystander's not at all
    ]


def test_with_the_map_the_proposal_carries_it_and_its_thresholds_still_keep_the_truth(
    synthetic: list[Outcome],
) -> None:
    policy = load_policy(POLICY)
    report = analyse(synthetic, source="synthetic", policy=policy, tolerance=TOLERANCE, calibrated_units=True)
    calibration = proposed_calibration(report, "1.0.0")
    assert calibration is not None
    loaded = parse_policy(yaml.safe_load(proposed_policy(POLICY.read_text(encoding="utf-8"), report, calibration)))
    assert loaded.policy.calibration == calibration and loaded.calibration_version == calibration.stamp
    # What the engine will auto-execute: raw scores whose calibrated score reaches the threshold.
    raw_equivalent: dict[str, float | None] = {}
    for risk, t in loaded.policy.thresholds.items():
        curve = calibration.curves.get(risk.value)
        raw_equivalent[risk.value] = raw_threshold(curve, t.auto) if curve else t.auto
    truth = judge(raw_equivalent, TOLERANCE)
    assert truth.worst_class_failure_rate <= TOLERANCE
    assert truth.share_of_allowed >= 0.60

"""The decision engine: score, penalties, risk class, band edges and gate, on the shipped policy
and on policies derived from it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from signoff.domain.engine import assess, band_for
from signoff.domain.models import Assessment, DataSensitivity
from signoff.domain.policy import Band, GateKind, LoadedPolicy, RiskClass
from tests.helpers import derived_policy, make_request, shipped_policy

pytestmark = pytest.mark.unit

# A medium-risk request (production, nothing else risky) with no penalty; the signals are set per test.
MEDIUM_RISK_NO_PENALTY = {
    "environment": "production",
    "risk.blast_radius_pct": 5,
    "risk.production_data": False,
    "risk.rollback_available": True,
    "risk.migration": False,
    "risk.data_sensitivity": "internal",
    "signals.model_confidence": 1.0,
    "signals.observability_alignment": 0.6,  # 12 of 20 points
    "signals.historical_success": 1.0,
}


def _assess(
    gate: str = "auto", changes: dict[str, Any] | None = None, policy: LoadedPolicy | None = None
) -> Assessment:
    return assess(make_request(gate, changes), policy or shipped_policy())


def _penalties(assessment: Assessment) -> dict[str, float]:
    return {p.name: p.points for p in assessment.score.penalties}


# -- the samples -------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", ["auto", "soft", "hard"])
def test_each_sample_gets_its_gate_with_an_explanation(gate: str) -> None:
    # Given the sample request named after a gate
    # When the shipped policy assesses it
    assessment = _assess(gate)
    # Then it gets that gate, stamped with the policy version, and says why
    assert assessment.gate.kind is GateKind(gate)
    assert assessment.policy_version == shipped_policy().version
    assert len(assessment.explanation) == 4
    assert assessment.explanation[0].startswith(f"score {assessment.score.score:g}/100")
    assert f"gate {gate}" in assessment.explanation[-1]


def test_hard_sample_explains_score_risk_rule_band_and_gate() -> None:
    assessment = _assess("hard")
    assert assessment.score.score == 50.0
    assert assessment.risk.risk_class is RiskClass.HIGH
    assert assessment.band is Band.LOW
    assert assessment.gate.profile == "two-person"
    assert assessment.gate.approvals_required == 2
    score_line, risk_line, band_line, gate_line = assessment.explanation
    assert "production_data -15" in score_line and "blast_radius -20" in score_line
    assert risk_line == "risk high (rule production-migration)"
    assert "thresholds for high risk are auto >= 97, manual < 85" in band_line
    assert gate_line == "gate hard (profile two-person)"


@pytest.mark.parametrize("gate", ["auto", "soft", "hard"])
def test_contributions_and_penalties_sum_exactly_to_the_raw_score(gate: str) -> None:
    # Given any sample / When it is scored
    breakdown = _assess(gate).score
    # Then the shown contributions add up, to the cent, to the raw score, and the score is it clamped
    shown = [c.points for c in breakdown.contributions] + [p.points for p in breakdown.penalties]
    assert sum(Decimal(repr(p)) for p in shown) == Decimal(repr(breakdown.raw))
    assert breakdown.score == min(100.0, max(0.0, breakdown.raw))
    assert [c.name for c in breakdown.contributions] == ["model", "validation", "observability", "history"]
    assert [c.max_points for c in breakdown.contributions] == [40, 30, 20, 10]


def test_auto_sample_contributions_are_weight_times_signal() -> None:
    # Given the auto sample: confidence 0.97, 3/3 checks, observability 0.95, history 0.99
    points = {c.name: c.points for c in _assess("auto").score.contributions}
    # Then each signal contributes its weight times its value, to the cent
    assert points == {"model": 38.8, "validation": 30.0, "observability": 19.0, "history": 9.9}


def test_validation_counts_the_share_of_passed_checks_and_names_failing_ones() -> None:
    # Given the hard sample: 3 of 4 checks passed, security-scan failed
    validation = next(c for c in _assess("hard").score.contributions if c.name == "validation")
    assert validation.points == 22.5
    assert "3/4 checks passed" in validation.detail and "security-scan" in validation.detail


def test_no_validation_results_contribute_nothing() -> None:
    validation = next(
        c for c in _assess("auto", {"signals.validation": []}).score.contributions if c.name == "validation"
    )
    assert validation.points == 0
    assert validation.detail == "no validation results supplied"


# -- penalties ---------------------------------------------------------------------------------

# Penalty points unlike the shipped ones, so a hard-coded 15/10/20 in the engine would show.
ODD_PENALTIES = {"penalties.production_data": 7, "penalties.no_rollback": 3, "penalties.blast_radius": 11}


@pytest.mark.parametrize(
    ("changes", "name", "points"),
    [
        ({"risk.production_data": True}, "production_data", -7),
        ({"risk.rollback_available": False}, "no_rollback", -3),
        ({"risk.blast_radius_pct": 40}, "blast_radius", -11),
    ],
)
def test_each_penalty_takes_the_policys_points(changes: dict[str, Any], name: str, points: float) -> None:
    # Given a policy with its own penalty points and the clean auto sample
    policy = derived_policy(ODD_PENALTIES)
    clean = _assess("auto", policy=policy)
    assert clean.score.penalties == []
    # When one risk fact that carries a penalty is set
    penalised = _assess("auto", changes, policy=policy)
    # Then exactly that penalty is applied, with the policy's points
    assert _penalties(penalised) == {name: points}
    assert penalised.score.raw == pytest.approx(clean.score.raw + points)


def test_every_penalty_at_once_with_the_shipped_points() -> None:
    assessment = _assess(
        "auto", {"risk.production_data": True, "risk.rollback_available": False, "risk.blast_radius_pct": 30}
    )
    assert _penalties(assessment) == {"production_data": -15, "no_rollback": -10, "blast_radius": -20}
    assert assessment.score.score == pytest.approx(97.7 - 45)


@pytest.mark.parametrize(("blast", "penalised"), [(0, False), (25, False), (25.01, True), (100, True)])
def test_blast_radius_penalty_only_strictly_above_the_limit(blast: float, penalised: bool) -> None:
    # Given the shipped limit of 25% / When the blast radius is at or above it
    assessment = _assess("auto", {"risk.blast_radius_pct": blast})
    # Then only a radius strictly above the limit is penalised
    assert ("blast_radius" in _penalties(assessment)) is penalised


def test_score_is_clamped_at_zero_but_raw_keeps_the_sum() -> None:
    assessment = _assess(
        "soft",
        {
            "signals.model_confidence": 0,
            "signals.observability_alignment": 0,
            "signals.historical_success": 0,
            "signals.validation": [],
            "risk.production_data": True,
            "risk.rollback_available": False,
            "risk.blast_radius_pct": 30,
        },
    )
    assert assessment.score.raw == -45
    assert assessment.score.score == 0


# -- risk class --------------------------------------------------------------------------------


def test_no_rule_fires_gives_the_default_risk() -> None:
    risk = _assess("soft").risk  # staging, internal data, rollback, no migration
    assert risk.risk_class is RiskClass.LOW
    assert risk.rule is None
    assert risk.fired == []
    assert _assess("soft").explanation[1] == "risk low (no rule fired: default)"


def test_the_rule_that_fires_is_named() -> None:
    risk = _assess("soft", {"risk.data_sensitivity": "confidential"}).risk
    assert risk.risk_class is RiskClass.MEDIUM
    assert risk.rule == "confidential-data"
    assert risk.fired == ["confidential-data"]


def test_highest_risk_wins_among_the_rules_that_fire() -> None:
    # Given production with a migration: production-migration (high), production-change and
    # schema-migration (medium) all fire
    risk = _assess("soft", {"environment": "production", "risk.migration": True}).risk
    # Then the high rule sets the class and is named; every fired rule is listed
    assert risk.risk_class is RiskClass.HIGH
    assert risk.rule == "production-migration"
    assert risk.fired == ["production-migration", "production-change", "schema-migration"]


def test_highest_risk_wins_whatever_the_rule_order() -> None:
    # Given a policy listing the medium rules before the high ones
    rules = shipped_policy().policy.model_dump(mode="json")["risk_rules"]
    rules.sort(key=lambda r: r["risk"] == "high")
    policy = derived_policy({"risk_rules": rules})
    # When both a medium and a high rule fire
    risk = _assess("soft", {"environment": "production", "risk.migration": True}, policy=policy).risk
    # Then the high one still wins
    assert risk.risk_class is RiskClass.HIGH
    assert risk.rule == "production-migration"


def test_default_risk_above_the_fired_rules_applies_without_a_rule_name() -> None:
    policy = derived_policy(
        {"default_risk": "medium", "risk_rules": [{"name": "lab", "when": {"environments": ["dev"]}, "risk": "low"}]}
    )
    risk = _assess("soft", {"environment": "dev"}, policy=policy).risk
    assert risk.risk_class is RiskClass.MEDIUM
    assert risk.rule is None
    assert risk.fired == ["lab"]


@pytest.mark.parametrize(("blast", "risk_class"), [(49.99, RiskClass.LOW), (50, RiskClass.HIGH)])
def test_at_least_condition_includes_its_bound(blast: float, risk_class: RiskClass) -> None:
    assert _assess("soft", {"risk.blast_radius_pct": blast}).risk.risk_class is risk_class


# -- sensitivity -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sensitivity", "sensitive"),
    [
        (DataSensitivity.PUBLIC, False),
        (DataSensitivity.INTERNAL, False),
        (DataSensitivity.CONFIDENTIAL, True),
        (DataSensitivity.RESTRICTED, True),
    ],
)
def test_sensitive_flag_follows_the_policys_sensitive_data(sensitivity: DataSensitivity, sensitive: bool) -> None:
    assessment = _assess("soft", {"risk.data_sensitivity": sensitivity.value})
    assert assessment.gate.sensitive is sensitive


def test_a_sensitive_gate_profile_marks_every_request_sensitive() -> None:
    policy = derived_policy({"gates.veto-10m.sensitive": True})
    assessment = _assess("soft", {"risk.data_sensitivity": "public"}, policy=policy)
    assert assessment.gate.profile == "veto-10m"
    assert assessment.gate.sensitive is True


# -- band edges --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auto_on_high_band_for_medium_risk() -> LoadedPolicy:
    """The shipped policy, except that a high band auto-executes for medium risk (T_auto = 92)."""
    return derived_policy({"matrix.medium.high": "auto"})


@pytest.mark.parametrize(
    ("signals", "expected_score", "band", "gate"),
    [
        # 40 + 30 + 12 + 10 = 92.00 exactly
        ({}, 92.0, Band.HIGH, GateKind.AUTO),
        # 40 + 30 + 12 + 9.99 = 91.99
        ({"signals.historical_success": 0.999}, 91.99, Band.MEDIUM, GateKind.SOFT),
        # 40 * 0.999875 = 39.995, rounded half-up to 40.00: 92.00
        ({"signals.model_confidence": 0.999875}, 92.0, Band.HIGH, GateKind.AUTO),
        # 40 * 0.999874 = 39.99496 -> 39.99: 91.99
        ({"signals.model_confidence": 0.999874}, 91.99, Band.MEDIUM, GateKind.SOFT),
    ],
    ids=["92.00", "91.99", "92.00-rounded-up", "91.99-rounded-down"],
)
def test_band_edges_are_exact(
    auto_on_high_band_for_medium_risk: LoadedPolicy,
    signals: dict[str, float],
    expected_score: float,
    band: Band,
    gate: GateKind,
) -> None:
    # Given a medium-risk request with no penalty, under T_auto = 92
    # When its signals add up to exactly the score below
    assessment = _assess("auto", {**MEDIUM_RISK_NO_PENALTY, **signals}, policy=auto_on_high_band_for_medium_risk)
    # Then 92.00 is in the high band (auto) and 91.99 in the medium band (soft)
    assert assessment.risk.risk_class is RiskClass.MEDIUM
    assert assessment.score.penalties == []
    assert assessment.score.score == expected_score
    assert assessment.thresholds == {"auto": 92, "manual": 75}
    assert assessment.band is band
    assert assessment.gate.kind is gate


@pytest.mark.parametrize(
    ("score", "band"),
    [(100, Band.HIGH), (92, Band.HIGH), (91.99, Band.MEDIUM), (75, Band.MEDIUM), (74.99, Band.LOW), (0, Band.LOW)],
)
def test_band_for_uses_inclusive_lower_bounds(score: float, band: Band) -> None:
    assert band_for(score, RiskClass.MEDIUM, shipped_policy().policy) is band


def test_assessment_is_a_pure_function_of_request_and_policy() -> None:
    assert _assess("hard") == _assess("hard")

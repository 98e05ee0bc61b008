"""The decision engine: composite confidence score, risk class, band and gate. Pure functions over
the policy and the request; no I/O, so intake, the dry-run endpoint and the simulator agree."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from signoff.domain.models import (
    Assessment,
    CheckpointRequest,
    Contribution,
    GateDecision,
    RiskAssessment,
    RiskFacts,
    ScoreBreakdown,
    Signals,
)
from signoff.domain.policy import Band, LoadedPolicy, Policy, RiskClass, RiskRule

_CENT = Decimal("0.01")


def _round(value: float) -> float:
    # Scores are shown and compared with two decimals; rounding once, half-up, keeps band edges
    # exact (92 -> auto, 91.99 -> soft) whatever float noise the weighted sum carries.
    return float(Decimal(repr(value)).quantize(_CENT, rounding=ROUND_HALF_UP))


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def score(signals: Signals, risk: RiskFacts, policy: Policy) -> ScoreBreakdown:
    """Composite score 0-100: weighted signals minus risk penalties, every term explained."""
    w = policy.weights
    checks = signals.validation
    passed = sum(1 for c in checks if c.passed)
    validation_ratio = passed / len(checks) if checks else 0.0
    failing = [c.name for c in checks if not c.passed]
    if not checks:
        validation_detail = "no validation results supplied"
    elif failing:
        validation_detail = f"{passed}/{len(checks)} checks passed; failing: {', '.join(failing[:5])}"
    else:
        validation_detail = f"all {len(checks)} checks passed"

    contributions = [
        Contribution(
            name="model",
            points=_round(w.model * signals.model_confidence),
            max_points=w.model,
            detail=f"model confidence {_pct(signals.model_confidence)}",
        ),
        Contribution(
            name="validation",
            points=_round(w.validation * validation_ratio),
            max_points=w.validation,
            detail=validation_detail,
        ),
        Contribution(
            name="observability",
            points=_round(w.observability * signals.observability_alignment),
            max_points=w.observability,
            detail=f"observability alignment {_pct(signals.observability_alignment)}",
        ),
        Contribution(
            name="history",
            points=_round(w.history * signals.historical_success),
            max_points=w.history,
            detail=f"similar actions succeeded {_pct(signals.historical_success)} of the time",
        ),
    ]

    p = policy.penalties
    penalties: list[Contribution] = []
    if risk.production_data:
        penalties.append(
            Contribution(
                name="production_data",
                points=-p.production_data,
                max_points=0,
                detail="touches production data",
            )
        )
    if not risk.rollback_available:
        penalties.append(
            Contribution(name="no_rollback", points=-p.no_rollback, max_points=0, detail="no rollback available")
        )
    if risk.blast_radius_pct > policy.blast_radius_limit_pct:
        penalties.append(
            Contribution(
                name="blast_radius",
                points=-p.blast_radius,
                max_points=0,
                detail=f"blast radius {risk.blast_radius_pct:g}% exceeds {policy.blast_radius_limit_pct:g}%",
            )
        )

    raw = sum(c.points for c in contributions) + sum(c.points for c in penalties)
    return ScoreBreakdown(
        score=min(100.0, max(0.0, _round(raw))),
        raw=_round(raw),
        contributions=contributions,
        penalties=penalties,
    )


def _rule_fires(rule: RiskRule, environment: str, risk: RiskFacts) -> bool:
    cond = rule.when
    checks = [
        cond.environments is None or environment in cond.environments,
        cond.blast_radius_pct_at_least is None or risk.blast_radius_pct >= cond.blast_radius_pct_at_least,
        cond.data_sensitivity is None or risk.data_sensitivity in cond.data_sensitivity,
        cond.rollback_available is None or risk.rollback_available == cond.rollback_available,
        cond.migration is None or risk.migration == cond.migration,
        cond.production_data is None or risk.production_data == cond.production_data,
    ]
    return all(checks)


def classify_risk(environment: str, risk: RiskFacts, policy: Policy) -> RiskAssessment:
    """The highest risk among the rules that fire (the first such rule is named), else the default."""
    fired = [rule for rule in policy.risk_rules if _rule_fires(rule, environment, risk)]
    if not fired:
        return RiskAssessment(risk_class=policy.default_risk, rule=None, fired=[])
    top = max(fired, key=lambda r: r.risk.rank)  # max() keeps the first of equals
    risk_class = top.risk if top.risk.rank >= policy.default_risk.rank else policy.default_risk
    return RiskAssessment(
        risk_class=risk_class,
        rule=top.name if risk_class is top.risk else None,
        fired=[r.name for r in fired],
    )


def band_for(score_value: float, risk_class: RiskClass, policy: Policy) -> Band:
    t = policy.thresholds[risk_class]
    if score_value >= t.auto:
        return Band.HIGH
    if score_value >= t.manual:
        return Band.MEDIUM
    return Band.LOW


def assess(request: CheckpointRequest, loaded: LoadedPolicy) -> Assessment:
    """Score, classify and gate one request under one policy."""
    policy = loaded.policy
    breakdown = score(request.signals, request.risk, policy)
    risk = classify_risk(request.environment, request.risk, policy)
    calibrated = policy.calibration.calibrated_score(breakdown.score, risk.risk_class) if policy.calibration else None
    band = band_for(breakdown.score if calibrated is None else calibrated, risk.risk_class, policy)
    profile_name = policy.matrix[risk.risk_class][band]
    profile = policy.gates[profile_name]
    sensitive = profile.sensitive or request.risk.data_sensitivity in policy.sensitive_data
    gate = GateDecision(
        kind=profile.kind,
        profile=profile_name,
        veto_window_seconds=profile.veto_window,
        approval_deadline_seconds=profile.approval_deadline,
        escalation_route=profile.escalation.route if profile.escalation else None,
        escalation_wait_seconds=profile.escalation.wait if profile.escalation else None,
        timeout_rule=profile.timeout_rule,
        approvals_required=profile.approvals_required,
        requester_may_approve=profile.requester_may_approve,
        comment_required=profile.comment_required,
        sensitive=sensitive,
    )
    thresholds = policy.thresholds[risk.risk_class]
    explanation = [
        f"score {breakdown.score:g}/100: "
        + ", ".join(f"{c.name} {c.points:g}/{c.max_points:g}" for c in breakdown.contributions)
        + "".join(f", {p.name} {p.points:g}" for p in breakdown.penalties),
        f"risk {risk.risk_class}" + (f" (rule {risk.rule})" if risk.rule else " (no rule fired: default)"),
        f"band {band} ({band.label}): thresholds for {risk.risk_class} risk are auto >= {thresholds.auto:g},"
        f" manual < {thresholds.manual:g}",
        f"gate {gate.kind} (profile {profile_name})",
    ]
    if calibrated is not None:
        explanation.insert(
            1,
            f"calibrated confidence {calibrated:g}/100 from raw score {breakdown.score:g} (calibration "
            f"{loaded.calibration_version}, {risk.risk_class} risk): the band uses the calibrated one",
        )
    return Assessment(
        score=breakdown,
        risk=risk,
        band=band,
        band_label=band.label,
        thresholds={"auto": thresholds.auto, "manual": thresholds.manual},
        gate=gate,
        policy_version=loaded.version,
        explanation=explanation,
        calibrated_score=calibrated,
        calibration_version=loaded.calibration_version if calibrated is not None else None,
    )

"""Thresholds from evidence: reliability tables, ECE and Brier score, a fitted calibration map and
recommended thresholds per class, from reported outcomes. Offline (numpy, scikit-learn): never in
the Lambda layer.

What counts as an outcome: a checkpoint's reported outcome (success, or failure / rolled back)
with the raw score and risk class it was requested with, and a helpdesk answer's feedback from the
asker (helpful or not) with the answer's confidence and class (group `helpdesk:<class>`). Only
actions that ran have outcomes, so the figures describe the actions that were let through.

The recommendation for a class, at a stated tolerance (e.g. at most 1 % failures among the actions
in the auto band), is the lowest threshold whose auto set's failure rate has a one-sided upper
confidence bound (Wilson) at or below the tolerance; T_manual is then the lowest threshold whose
soft band (T_manual <= score < T_auto) stays under the soft tolerance the same way. With fewer
outcomes than a bound could ever clear, it recommends no change and says how many more it needs.
Nothing here changes a policy: the output is a table, JSON and a YAML diff for a person to review.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from signoff.domain.calibration import Calibration, Curve, CurveKind, calibration_data
from signoff.domain.policy import LoadedPolicy

# Below this many outcomes a class gets Platt scaling (two parameters); isotonic regression has a
# free step per distinct score and overfits small samples (Niculescu-Mizil & Caruana, 2005).
ISOTONIC_MIN = 1000
SEED_EDGES = (0.0, 90.0, 95.0, 98.0, 100.0)  # the seed's 90-95 / 95-98 / 98-100 buckets
# One-sided 97.5 %: the recommendation picks the lowest of many candidate thresholds, and that
# selection makes a 95 % bound too kind (on synthetic truth it let 1 seed in 10 exceed the tolerance).
CONFIDENCE = 0.975
Z_DEFAULT = 1.959963984540054


def z_for(confidence: float) -> float:
    """The one-sided normal quantile of a confidence level (0.95 -> 1.645)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(confidence)


@dataclass(frozen=True)
class Outcome:
    """One action that ran, and whether it went well."""

    key: str  # checkpoint or conversation id
    group: str  # risk class, or helpdesk:<class>
    environment: str | None
    score: float  # raw confidence 0-100, as requested
    success: bool
    truth: float | None = None  # synthetic outcomes only: the true success probability


# -- statistics ----------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = Z_DEFAULT) -> tuple[float, float]:
    """Wilson score interval of a proportion (sound at 0 and n, unlike the normal approximation)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / denom), min(1.0, (centre + spread) / denom)


def min_outcomes(tolerance: float, z: float = Z_DEFAULT) -> int:
    """The fewest outcomes whose failure bound can clear `tolerance` at all (none of them failing):
    z^2 / (n + z^2) <= tolerance."""
    return math.ceil(z * z * (1 / tolerance - 1))


def ece(probabilities: Sequence[float], successes: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error: |mean predicted - observed success| per equal-width bin,
    weighted by the bin's share."""
    n = len(probabilities)
    if n == 0:
        return 0.0
    sums: dict[int, list[float]] = {}
    for p, ok in zip(probabilities, successes, strict=True):
        b = min(int(p * bins), bins - 1)
        entry = sums.setdefault(b, [0.0, 0.0, 0.0])
        entry[0] += p
        entry[1] += 1.0 if ok else 0.0
        entry[2] += 1
    return sum(abs(s[0] - s[1]) / n for s in sums.values())


def brier(probabilities: Sequence[float], successes: Sequence[bool]) -> float:
    n = len(probabilities)
    return (
        sum((p - (1.0 if ok else 0.0)) ** 2 for p, ok in zip(probabilities, successes, strict=True)) / n if n else 0.0
    )


@dataclass(frozen=True)
class Bucket:
    """A score bucket of the reliability table."""

    low: float
    high: float  # exclusive, except the last bucket's (100)
    count: int
    mean_confidence: float  # mean raw score / 100
    success_rate: float | None
    success_low: float | None  # Wilson interval
    success_high: float | None
    mean_calibrated: float | None = None


def reliability(outcomes: Sequence[Outcome], edges: Sequence[float], curve: Curve | None = None) -> list[Bucket]:
    rows = []
    for i, (low, high) in enumerate(zip(edges, edges[1:], strict=False)):
        last = i == len(edges) - 2
        inside = [o for o in outcomes if low <= o.score < high or (last and o.score == high)]
        n = len(inside)
        ok = sum(o.success for o in inside)
        lo, hi = wilson(ok, n) if n else (None, None)
        rows.append(
            Bucket(
                low=low,
                high=high,
                count=n,
                mean_confidence=sum(o.score for o in inside) / n / 100 if n else (low + high) / 200,
                success_rate=ok / n if n else None,
                success_low=lo,
                success_high=hi,
                mean_calibrated=(sum(curve.probability(o.score) for o in inside) / n if n and curve else None),
            )
        )
    return rows


def equal_edges(bins: int) -> list[float]:
    return [100 * i / bins for i in range(bins + 1)]


# -- fitting a map -------------------------------------------------------------------------------


def fit_curve(outcomes: Sequence[Outcome]) -> Curve:
    """Isotonic regression from ISOTONIC_MIN outcomes up, Platt scaling below; as plain data."""
    import numpy as np

    x = np.array([o.score for o in outcomes], dtype=float)
    y = np.array([1.0 if o.success else 0.0 for o in outcomes])
    if len(set(y.tolist())) < 2:
        # One outcome kind only: no curve to fit; the observed rate, bounded away from certainty.
        rate = wilson(int(y.sum()), len(y))[1 if y.all() else 0]
        return Curve(kind=CurveKind.ISOTONIC, points=[(0.0, rate), (100.0, rate)], outcomes=len(y))
    if len(outcomes) >= ISOTONIC_MIN:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
        points = _thin(list(zip(iso.X_thresholds_.tolist(), iso.y_thresholds_.tolist(), strict=True)))
        return Curve(kind=CurveKind.ISOTONIC, points=points, outcomes=len(y))
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1e6).fit((x / 100).reshape(-1, 1), y)  # ~unregularized: Platt
    a, b = float(model.coef_[0][0]), float(model.intercept_[0])
    return Curve(kind=CurveKind.PLATT, a=round(max(a, 0.0), 6), b=round(b, 6), outcomes=len(y))


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Rounded breakpoints, strictly increasing scores, without the points a straight line implies."""
    out: list[tuple[float, float]] = []
    for x, y in points:
        x, y = round(x, 2), round(y, 6)
        if out and x <= out[-1][0]:
            out[-1] = (out[-1][0], max(out[-1][1], y))
            continue
        if out and y < out[-1][1]:
            y = out[-1][1]  # rounding must not break monotonicity
        out.append((x, y))
    # Drop the middle of three points with equal y (a flat run needs only its ends).
    kept = [p for i, p in enumerate(out) if i in (0, len(out) - 1) or not (out[i - 1][1] == p[1] == out[i + 1][1])]
    return kept


def held_out_ece(outcomes: Sequence[Outcome], bins: int, seed: int = 0) -> tuple[float, float] | None:
    """(ECE of the raw score, ECE of the calibrated score) on the half a map was *not* fitted on,
    averaged over both halves (two-fold), so the figure is honest about overfitting."""
    if len(outcomes) < 20:
        return None
    shuffled = list(outcomes)
    random.Random(seed).shuffle(shuffled)
    half = len(shuffled) // 2
    folds = [(shuffled[:half], shuffled[half:]), (shuffled[half:], shuffled[:half])]
    raw, cal = [], []
    for fit_on, test_on in folds:
        curve = fit_curve(fit_on)
        successes = [o.success for o in test_on]
        raw.append(ece([o.score / 100 for o in test_on], successes, bins))
        cal.append(ece([curve.probability(o.score) for o in test_on], successes, bins))
    return sum(raw) / 2, sum(cal) / 2


# -- recommending thresholds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    auto: float | None  # None: no change
    manual: float | None
    reason: str
    needs: int = 0  # how many more outcomes before a recommendation is possible
    auto_failure_bound: float | None = None  # upper bound of the failure rate in the auto band
    auto_outcomes: int = 0  # outcomes at or above the recommended T_auto
    soft_failure_bound: float | None = None


def _lowest_threshold(scored: list[tuple[float, bool]], tolerance: float, z: float) -> tuple[float, int, float] | None:
    """Over (score, success) sorted by score descending: the lowest score whose set {score >= it}
    has a failure upper bound <= tolerance; with the set's size and bound."""
    best = None
    failures = 0
    for i, (score, ok) in enumerate(scored):
        failures += 0 if ok else 1
        if i + 1 < len(scored) and scored[i + 1][0] == score:
            continue  # a threshold takes every action of equal score
        n = i + 1
        bound = 1 - wilson(n - failures, n, z)[0]
        if bound <= tolerance:
            best = (score, n, bound)
    return best


def recommend(
    outcomes: Sequence[Outcome],
    tolerance: float,
    soft_tolerance: float,
    z: float = Z_DEFAULT,
    minimum: int | None = None,
) -> Recommendation:
    """T_auto / T_manual for one class (see the module's docstring)."""
    need = max(minimum or 0, min_outcomes(tolerance, z))
    if len(outcomes) < need:
        return Recommendation(
            None,
            None,
            f"no change: {len(outcomes)} outcomes, at least {need} are needed before a failure bound "
            f"can reach {tolerance:.2%} ({need - len(outcomes)} more)",
            needs=need - len(outcomes),
        )
    scored = sorted(((o.score, o.success) for o in outcomes), key=lambda p: -p[0])
    found = _lowest_threshold(scored, tolerance, z)
    if found is None:
        failures = sum(1 for o in outcomes if not o.success)
        return Recommendation(
            None,
            None,
            f"no change: no threshold keeps the failure bound at or under {tolerance:.2%} "
            f"({failures} failures in {len(outcomes)} outcomes); more outcomes at high scores may",
        )
    t_auto, n_auto, bound = found
    below = [p for p in scored if p[0] < t_auto]
    soft = _lowest_threshold(below, soft_tolerance, z) if below else None
    t_manual = soft[0] if soft else t_auto
    return Recommendation(
        auto=t_auto,
        manual=t_manual,
        reason=(
            f"{n_auto} outcomes at or above {t_auto:g} fail at most {bound:.2%} (upper bound) <= {tolerance:.2%}"
            + (
                f"; {soft[1]} between {t_manual:g} and {t_auto:g} fail at most {soft[2]:.2%} <= {soft_tolerance:.2%}"
                if soft
                else "; no soft band meets the soft tolerance: T_manual = T_auto"
            )
        ),
        auto_failure_bound=bound,
        auto_outcomes=n_auto,
        soft_failure_bound=soft[2] if soft else None,
    )


# -- the whole analysis --------------------------------------------------------------------------


@dataclass
class GroupReport:
    group: str
    outcomes: int
    successes: int
    current: dict[str, float] | None  # the policy's thresholds for the class, if it is a risk class
    seed_buckets: list[Bucket]
    buckets: list[Bucket]
    ece_raw: float
    brier_raw: float
    ece_calibrated: float | None  # of the fitted map, on its own data
    brier_calibrated: float | None
    held_out: tuple[float, float] | None  # (raw, calibrated) ECE on held-out halves
    curve: Curve | None
    recommendation: Recommendation


@dataclass
class CalibrationReport:
    source: str
    tolerance: float
    soft_tolerance: float
    bins: int
    groups: list[GroupReport] = field(default_factory=list)
    policy_version: str | None = None
    calibrated_units: bool = False  # thresholds are for the calibrated score (the proposal adds the map)

    def group(self, name: str) -> GroupReport:
        return next(g for g in self.groups if g.group == name)

    def as_json(self) -> dict[str, Any]:
        def plain(g: GroupReport) -> dict[str, Any]:
            data = asdict(g)
            data["curve"] = g.curve.model_dump(mode="json", exclude_none=True) if g.curve else None
            data["held_out"] = {"ece_raw": g.held_out[0], "ece_calibrated": g.held_out[1]} if g.held_out else None
            return data

        return {
            "source": self.source,
            "policy_version": self.policy_version,
            "tolerance": self.tolerance,
            "soft_tolerance": self.soft_tolerance,
            "bins": self.bins,
            "groups": [plain(g) for g in self.groups],
        }


def analyse(
    outcomes: Sequence[Outcome],
    *,
    source: str,
    policy: LoadedPolicy | None = None,
    tolerance: float = 0.01,
    soft_tolerance: float = 0.05,
    bins: int = 10,
    minimum: int | None = None,
    confidence: float = CONFIDENCE,
    calibrated_units: bool = False,
) -> CalibrationReport:
    """Everything `signoff calibrate` prints, per group (risk class or helpdesk class)."""
    report = CalibrationReport(source=source, tolerance=tolerance, soft_tolerance=soft_tolerance, bins=bins)
    report.calibrated_units = calibrated_units
    report.policy_version = policy.version if policy else None
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.group, []).append(o)
    for name in sorted(groups, key=_group_order):
        items = groups[name]
        successes = [o.success for o in items]
        raw = [o.score / 100 for o in items]
        curve = fit_curve(items) if items else None
        calibrated = [curve.probability(o.score) for o in items] if curve else None
        thresholds = policy.policy.thresholds if policy else {}
        current = next((t for risk, t in thresholds.items() if risk.value == name), None)
        report.groups.append(
            GroupReport(
                group=name,
                outcomes=len(items),
                successes=sum(successes),
                current={"auto": current.auto, "manual": current.manual} if current else None,
                seed_buckets=reliability(items, SEED_EDGES, curve),
                buckets=reliability(items, equal_edges(bins), curve),
                ece_raw=ece(raw, successes, bins),
                brier_raw=brier(raw, successes),
                ece_calibrated=ece(calibrated, successes, bins) if calibrated else None,
                brier_calibrated=brier(calibrated, successes) if calibrated else None,
                held_out=held_out_ece(items, bins),
                curve=curve,
                recommendation=recommend(
                    _on_map(items, curve) if calibrated_units and curve else items,
                    tolerance,
                    soft_tolerance,
                    z_for(confidence),
                    minimum=minimum,
                ),
            )
        )
    return report


def _on_map(items: Sequence[Outcome], curve: Curve) -> list[Outcome]:
    """The outcomes with their calibrated score (0-100), for thresholds a policy with the map uses."""
    return [replace(o, score=round(100 * curve.probability(o.score), 2)) for o in items]


def _group_order(name: str) -> tuple[int, str]:
    order = {"low": 0, "medium": 1, "high": 2}
    return (order.get(name, 3), name)


# -- the proposal --------------------------------------------------------------------------------


def proposed_calibration(report: CalibrationReport, version: str) -> Calibration | None:
    """A calibration map of the risk classes that have enough outcomes for a recommendation."""
    curves = {
        g.group: g.curve
        for g in report.groups
        if g.curve is not None and g.current is not None and g.recommendation.auto is not None
    }
    if not curves:
        return None
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    return Calibration(version=version, description=f"fitted {when} on {report.source}", curves=curves)


_THRESHOLDS_BLOCK = re.compile(r"^thresholds:[^\n]*\n(?:(?:[ \t]+[^\n]*|[ \t]*)\n)*", re.MULTILINE)


def proposed_policy(text: str, report: CalibrationReport, calibration: Calibration | None = None) -> str:
    """The policy file with the recommended thresholds (other classes and lines untouched), and the
    calibration map appended when the thresholds are in calibrated units."""
    changes = {
        g.group: g.recommendation
        for g in report.groups
        if g.current is not None and g.recommendation.auto is not None and g.recommendation.manual is not None
    }
    if not changes:
        return text
    match = _THRESHOLDS_BLOCK.search(text)
    if match is None:
        raise ValueError("the policy file has no top-level `thresholds:` block to change")
    lines = ["thresholds:"]
    for g in report.groups:
        if g.current is None:
            continue
        rec = changes.get(g.group)
        auto, manual = (rec.auto, rec.manual) if rec else (g.current["auto"], g.current["manual"])
        lines.append(f"  {g.group + ':':<8}{{auto: {_yaml_number(auto)}, manual: {_yaml_number(manual)}}}")
    trailing = "\n" if match.group(0).endswith("\n\n") else ""
    proposal = text[: match.start()] + "\n".join(lines) + "\n" + trailing + text[match.end() :]
    if calibration is not None and report.calibrated_units:
        comment = "# Fitted by `signoff calibrate`: the thresholds above are for the calibrated score.\n"
        proposal = proposal.rstrip("\n") + "\n\n" + comment + calibration_yaml(calibration)
    return proposal


def _yaml_number(value: float | None) -> str:
    return f"{value:g}" if value is not None else "null"


def policy_diff(path: Path, report: CalibrationReport, calibration: Calibration | None = None) -> str:
    """A unified diff from the policy file to the proposal ('' when nothing would change)."""
    text = path.read_text(encoding="utf-8")
    proposal = proposed_policy(text, report, calibration)
    return "".join(
        difflib.unified_diff(
            text.splitlines(keepends=True),
            proposal.splitlines(keepends=True),
            fromfile=str(path),
            tofile=f"{path} (proposed by signoff calibrate)",
        )
    )


def calibration_yaml(calibration: Calibration) -> str:
    import yaml

    # Flow style for the innermost lists: one `- [score, probability]` line per breakpoint.
    return yaml.safe_dump({"calibration": calibration_data(calibration)}, sort_keys=False, default_flow_style=None)


def raw_threshold(curve: Curve, calibrated: float) -> float | None:
    """The lowest raw score (two decimals) whose calibrated score reaches `calibrated`: what a
    threshold for the calibrated score means in raw scores (None: no raw score reaches it)."""
    return next((s / 100 for s in range(10001) if round(100 * curve.probability(s / 100), 2) >= calibrated), None)


def held_out_pooled(outcomes: Sequence[Outcome], bins: int = 10) -> tuple[float, float]:
    """(raw ECE, calibrated ECE) over all groups on the second half, each group's map fitted on the
    first half: the figure for "the calibrated score on a held-out half"."""
    half = len(outcomes) // 2
    fit_on, test_on = outcomes[:half], outcomes[half:]
    curves = {g: fit_curve([o for o in fit_on if o.group == g]) for g in {o.group for o in fit_on}}
    test_on = [o for o in test_on if o.group in curves]
    successes = [o.success for o in test_on]
    raw = ece([o.score / 100 for o in test_on], successes, bins)
    return raw, ece([curves[o.group].probability(o.score) for o in test_on], successes, bins)

"""Synthetic outcomes with a known truth, so the calibration tools can be checked against it.

Each outcome has a risk class, a raw confidence score and a success drawn from a *true* success
probability that is a known, miscalibrated function of the score: a logistic curve per class
(the score says 80, the truth may say 0.99 or 0.6) with a ceiling, because even the best-scored
routine change fails now and then. Scores cluster near the top, as routine automation does.

Pure Python (`random`), seeded: the same N and seed give the same outcomes everywhere.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from signoff.tools.calibrate import Outcome

ENVIRONMENTS = ("dev", "staging", "production")


@dataclass(frozen=True)
class Truth:
    """The true chance of success of a class's actions: ceiling / (1 + exp(-(score - center) / width))."""

    center: float
    width: float
    share: float  # of all outcomes
    ceiling: float = 0.9995

    def success(self, score: float) -> float:
        return self.ceiling / (1 + math.exp(-(score - self.center) / self.width))


# Riskier classes need a higher score for the same chance of success. Shares: most outcomes come
# from low-risk, auto-executed actions, as in a real archive.
TRUTHS: dict[str, Truth] = {
    "low": Truth(center=60, width=5, share=0.6),
    "medium": Truth(center=66, width=5, share=0.25),
    "high": Truth(center=72, width=4, share=0.15),
}


def draw_score(rng: random.Random) -> float:
    """A raw score: 60 % near the top (routine, well-tested changes), 40 % spread over 20-100."""
    if rng.random() < 0.6:
        return round(100 * rng.betavariate(9, 1.3), 2)
    return round(rng.uniform(20, 100), 2)


def synthetic_outcomes(n: int, seed: int) -> list[Outcome]:
    """n outcomes; each carries its true success probability (`truth`)."""
    rng = random.Random(seed)
    classes = list(TRUTHS)
    weights = [TRUTHS[c].share for c in classes]
    outcomes = []
    for i in range(n):
        risk = rng.choices(classes, weights)[0]
        score = draw_score(rng)
        p = TRUTHS[risk].success(score)
        outcomes.append(
            Outcome(
                key=f"syn_{seed}_{i:06d}",
                group=risk,
                environment=rng.choice(ENVIRONMENTS),
                score=score,
                success=rng.random() < p,
                truth=p,
            )
        )
    return outcomes


@dataclass(frozen=True)
class TruthCheck:
    """What a threshold does under the truth, on a large population of the class's scores."""

    threshold: float | None
    true_failure_rate: float  # among the actions at or above the threshold
    allowed_threshold: float  # the lowest threshold the truth allows at the tolerance
    share_of_allowed: float  # auto-executed / what the truth allows


def population(n: int = 200_000, seed: int = 1) -> list[float]:
    """Scores of a large population (for computing what the truth allows)."""
    rng = random.Random(seed)
    return [draw_score(rng) for _ in range(n)]


def allowed_threshold(truth: Truth, scores: list[float], tolerance: float) -> float:
    """The lowest threshold whose auto set (score >= it) truly fails at most `tolerance`."""
    ordered = sorted(scores, reverse=True)
    failures = 0.0
    allowed = ordered[0]
    for i, score in enumerate(ordered):
        failures += 1 - truth.success(score)
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        if nxt == score:
            continue  # a threshold takes all of equal scores
        if failures / (i + 1) > tolerance:
            break
        allowed = score
    return allowed


def check(group: str, threshold: float | None, tolerance: float, scores: list[float]) -> TruthCheck:
    truth = TRUTHS[group]
    allowed = allowed_threshold(truth, scores, tolerance)
    n_allowed = sum(1 for s in scores if s >= allowed)
    if threshold is None:
        return TruthCheck(None, 0.0, allowed, 0.0)
    auto = [s for s in scores if s >= threshold]
    rate = sum(1 - truth.success(s) for s in auto) / len(auto) if auto else 0.0
    return TruthCheck(threshold, rate, allowed, len(auto) / n_allowed)


@dataclass(frozen=True)
class TruthSummary:
    """The recommended policy judged by the truth, over all classes."""

    checks: dict[str, TruthCheck]  # per class, for the threshold the policy would then use
    true_failure_rate: float  # among everything auto-executed, all classes
    worst_class_failure_rate: float
    share_of_allowed: float  # auto-executed / what the truth allows, all classes


def judge(thresholds: dict[str, float | None], tolerance: float, n: int = 100_000) -> TruthSummary:
    """Judge T_auto per class (None: the class has no auto band) against the truth, on a population
    drawn like the outcomes, each class weighted by its share."""
    scores = population(n)
    checks = {group: check(group, thresholds.get(group), tolerance, scores) for group in TRUTHS}
    auto = allowed = failures = 0.0
    for group, c in checks.items():
        share = TRUTHS[group].share
        n_allowed = share * sum(1 for s in scores if s >= c.allowed_threshold)
        n_auto = share * sum(1 for s in scores if c.threshold is not None and s >= c.threshold)
        allowed += n_allowed
        auto += n_auto
        failures += n_auto * c.true_failure_rate
    return TruthSummary(
        checks=checks,
        true_failure_rate=failures / auto if auto else 0.0,
        worst_class_failure_rate=max(c.true_failure_rate for c in checks.values()),
        share_of_allowed=auto / allowed if allowed else 0.0,
    )

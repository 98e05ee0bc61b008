"""Calibration maps: raw confidence score -> calibrated confidence (the observed chance of success).

`signoff calibrate` fits a map per risk class offline (isotonic regression or Platt scaling, with
scikit-learn) and writes it as plain data: breakpoints or two coefficients. A policy may carry such
a map; the engine then gates on the calibrated score. Applying a map is a few lines of arithmetic,
so the Lambda layer needs neither numpy nor scikit-learn, and the offline tool applies the very same
function when it measures how well a map works.

A map has its own semver and content hash (like the policy), stamped on every decision it shaped.
"""

from __future__ import annotations

import hashlib
import json
import math
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

_SEMVER = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$"


class CurveKind(StrEnum):
    ISOTONIC = "isotonic"  # non-decreasing breakpoints, linear in between (as scikit-learn predicts)
    PLATT = "platt"  # logistic: p = 1 / (1 + exp(-(a * score / 100 + b)))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Curve(_Strict):
    """One class's map. Scores are 0-100; the calibrated value is a probability 0-1."""

    kind: CurveKind
    # isotonic: [[score, probability], ...], scores increasing, probabilities non-decreasing
    points: list[tuple[float, float]] | None = None
    a: float | None = None
    b: float | None = None
    outcomes: int | None = Field(default=None, ge=0)  # how many outcomes it was fitted on (shown, not used)

    @model_validator(mode="after")
    def _shape(self) -> Curve:
        if self.kind is CurveKind.ISOTONIC:
            if not self.points or self.a is not None or self.b is not None:
                raise ValueError("an isotonic curve has points (and no a, b)")
            xs = [x for x, _ in self.points]
            ys = [y for _, y in self.points]
            if any(not 0 <= x <= 100 for x in xs) or any(not 0 <= y <= 1 for y in ys):
                raise ValueError("isotonic points are [score 0-100, probability 0-1]")
            if any(later <= earlier for earlier, later in zip(xs, xs[1:], strict=False)):
                raise ValueError("isotonic point scores must increase")
            if any(later < earlier for earlier, later in zip(ys, ys[1:], strict=False)):
                raise ValueError(
                    "isotonic point probabilities must not decrease (a better score never calibrates lower)"
                )
        else:
            if self.a is None or self.b is None or self.points is not None:
                raise ValueError("a platt curve has a and b (and no points)")
            if self.a < 0:
                raise ValueError("platt a must not be negative (a better score never calibrates lower)")
        return self

    def probability(self, score: float) -> float:
        """The calibrated chance of success (0-1) of an action with this raw score (0-100)."""
        if self.kind is CurveKind.PLATT:
            z = (self.a or 0.0) * score / 100 + (self.b or 0.0)
            # Two branches keep exp() from overflowing at either end.
            return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
        points = self.points or []
        if score <= points[0][0]:
            return points[0][1]
        if score >= points[-1][0]:
            return points[-1][1]
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            if x0 <= score <= x1:
                return y0 + (y1 - y0) * (score - x0) / (x1 - x0)
        raise AssertionError("unreachable: the points cover the score")  # pragma: no cover


class Calibration(_Strict):
    """Maps per risk class (a class without one keeps its raw score)."""

    version: str = Field(pattern=_SEMVER)
    description: str | None = Field(default=None, max_length=500)
    curves: dict[str, Curve] = Field(min_length=1)

    @property
    def sha256(self) -> str:
        # The policy's canonical JSON (sorted keys, no spaces); policy.py imports this module.
        text = json.dumps(calibration_data(self), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def stamp(self) -> str:
        """semver+hash, as stamped on decisions (cf. the policy's version)."""
        return f"{self.version}+{self.sha256[:12]}"

    def calibrated_score(self, score: float, risk_class: str) -> float | None:
        """The calibrated score (0-100, two decimals) for the class, or None if it has no curve."""
        curve = self.curves.get(risk_class)
        if curve is None:
            return None
        return round(100 * curve.probability(score), 2)


def calibration_data(calibration: Calibration) -> dict[str, Any]:
    """The map as it is written into a policy file (plain data, no defaults)."""
    return calibration.model_dump(mode="json", exclude_none=True)

"""The composite helpdesk confidence (0-100), explained like the checkpoint engine's score: measurable
signals earn points (retrieval similarity, the margin between the best and the next source, grounding
and coverage of the draft, the class probability) and penalties take them away (sensitive content,
privileged or production scope, missing form fields, frustration, unfamiliar terms, a stale source,
injection attempts, secrets). Every term is kept as a Contribution."""

from __future__ import annotations

from dataclasses import dataclass, field

from signoff.domain.helpdesk.config import ConfidenceSettings
from signoff.domain.models import Contribution


def _round(value: float) -> float:
    return round(value, 2)


@dataclass(frozen=True)
class ConfidenceSignals:
    """What the router measured for one message (all 0-1 unless said otherwise)."""

    similarity: float
    authority_weight: float
    margin: float
    grounding: float
    coverage: float
    probability: float
    class_name: str
    best_source: str | None = None
    sensitive: list[str] = field(default_factory=list)
    privileged: list[str] = field(default_factory=list)
    missing_fields: list[str] = field(default_factory=list)
    form_fields: int = 0
    frustration: list[str] = field(default_factory=list)
    unknown_terms: list[str] = field(default_factory=list)
    query_terms: int = 0
    stale_source: str | None = None
    injection: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Confidence:
    score: float
    raw: float
    contributions: list[Contribution]

    @property
    def total(self) -> float:
        return sum(c.points for c in self.contributions)


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


def _signals(s: ConfidenceSignals, settings: ConfidenceSettings) -> list[Contribution]:
    w = settings.weights
    source = f" ({s.best_source})" if s.best_source else " (no source found)"
    return [
        Contribution(
            name="retrieval",
            points=_round(w.retrieval * s.similarity * s.authority_weight),
            max_points=w.retrieval,
            detail=f"best source holds {_pct(s.similarity)} of the question's terms{source}, "
            f"authority weight {s.authority_weight:g}",
        ),
        Contribution(
            name="margin",
            points=_round(w.margin * s.margin),
            max_points=w.margin,
            detail=f"best source leads the next one by {_pct(s.margin)}",
        ),
        Contribution(
            name="grounding",
            points=_round(w.grounding * s.grounding * s.coverage),
            max_points=w.grounding,
            detail=f"draft {_pct(s.grounding)} verbatim from sources, covers {_pct(s.coverage)} of the question",
        ),
        Contribution(
            name="classifier",
            points=_round(w.classifier * s.probability),
            max_points=w.classifier,
            detail=f"class {s.class_name} with probability {_pct(s.probability)}",
        ),
    ]


def _penalties(s: ConfidenceSignals, settings: ConfidenceSettings) -> list[Contribution]:
    p = settings.penalties
    out: list[Contribution] = []

    def add(name: str, points: float, detail: str) -> None:
        out.append(Contribution(name=name, points=-_round(points), max_points=0, detail=detail))

    if s.secrets:
        add("secret", p.secret, f"the message held {', '.join(s.secrets)} (redacted)")
    if s.injection:
        add("injection", p.injection, f"instructions aimed at the bot: {', '.join(repr(i) for i in s.injection)}")
    if s.privileged:
        add("privileged", p.privileged, f"touches {', '.join(s.privileged)}")
    if s.sensitive:
        add("sensitive", p.sensitive, f"sensitive content: {', '.join(s.sensitive)}")
    if s.missing_fields and s.form_fields:
        share = len(s.missing_fields) / s.form_fields
        add("missing_fields", p.missing_fields * share, f"not given yet: {', '.join(s.missing_fields)}")
    if s.frustration:
        add("frustration", p.frustration, f"frustration: {', '.join(repr(f) for f in s.frustration)}")
    unknown_share = len(s.unknown_terms) / s.query_terms if s.query_terms else 1.0
    if unknown_share >= settings.unfamiliar_share:
        add(
            "unfamiliar",
            p.unfamiliar,
            f"{_pct(unknown_share)} of the terms are unknown: {', '.join(s.unknown_terms[:5])}",
        )
    if s.stale_source:
        add("stale_source", p.stale_source, f"{s.stale_source} is past its review date")
    return out


def helpdesk_confidence(signals: ConfidenceSignals, settings: ConfidenceSettings) -> Confidence:
    """Composite confidence 0-100: weighted signals minus penalties, every term explained."""
    contributions = _signals(signals, settings) + _penalties(signals, settings)
    raw = _round(sum(c.points for c in contributions))
    return Confidence(score=min(100.0, max(0.0, raw)), raw=raw, contributions=contributions)

"""Properties the engine's safety rests on, over random valid requests: the score stays in range,
better evidence never makes the gate stricter, penalties never help, the same input decides the same."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from signoff.domain.engine import assess, band_for
from signoff.domain.models import Assessment, CheckpointRequest, DataSensitivity
from signoff.domain.policy import RiskClass, Thresholds
from tests.helpers import make_request, shipped_policy, tweak

pytestmark = pytest.mark.unit

POLICY = shipped_policy()
LIMIT = POLICY.policy.blast_radius_limit_pct
PROPERTY = settings(max_examples=300, deadline=None)
SIGNALS = ["model_confidence", "observability_alignment", "historical_success"]

units = st.floats(min_value=0, max_value=1, allow_nan=False)
percents = st.floats(min_value=0, max_value=100, allow_nan=False)


@st.composite
def requests(draw: st.DrawFn) -> CheckpointRequest:
    """Any valid request: every signal and risk fact drawn, in any environment the policy knows."""
    checks = draw(st.lists(st.booleans(), max_size=6))
    return make_request(
        "soft",
        {
            "environment": draw(st.sampled_from(POLICY.policy.environments)),
            "signals.model_confidence": draw(units),
            "signals.observability_alignment": draw(units),
            "signals.historical_success": draw(units),
            "signals.validation": [{"name": f"check-{i}", "passed": ok} for i, ok in enumerate(checks)],
            "risk.blast_radius_pct": draw(percents),
            "risk.production_data": draw(st.booleans()),
            "risk.rollback_available": draw(st.booleans()),
            "risk.migration": draw(st.booleans()),
            "risk.data_sensitivity": draw(st.sampled_from(list(DataSensitivity))).value,
        },
    )


def _changed(request: CheckpointRequest, changes: dict[str, Any]) -> CheckpointRequest:
    return CheckpointRequest.model_validate(tweak(request.model_dump(mode="json"), changes))


def _assert_not_worse(before: Assessment, after: Assessment) -> None:
    assert after.score.score >= before.score.score
    assert after.gate.kind.strictness <= before.gate.kind.strictness
    assert after.band.rank >= before.band.rank


@PROPERTY
@given(requests())
def test_score_stays_between_0_and_100(request: CheckpointRequest) -> None:
    assert 0 <= assess(request, POLICY).score.score <= 100


@PROPERTY
@given(requests(), st.sampled_from(SIGNALS), st.data())
def test_a_better_signal_never_lowers_the_score_or_tightens_the_gate(
    request: CheckpointRequest, signal: str, data: st.DataObject
) -> None:
    # Given any request and a higher value for one of its signals
    current = getattr(request.signals, signal)
    better = data.draw(st.floats(min_value=current, max_value=1, allow_nan=False), label="better")
    # When both are assessed
    before = assess(request, POLICY)
    after = assess(_changed(request, {f"signals.{signal}": better}), POLICY)
    # Then the better one scores no lower and is gated no more strictly
    _assert_not_worse(before, after)


@PROPERTY
@given(requests(), st.data())
def test_a_failing_check_that_passes_never_lowers_the_score_or_tightens_the_gate(
    request: CheckpointRequest, data: st.DataObject
) -> None:
    failing = [i for i, check in enumerate(request.signals.validation) if not check.passed]
    assume(failing)
    flipped = data.draw(st.sampled_from(failing), label="flipped")
    before = assess(request, POLICY)
    after = assess(_changed(request, {f"signals.validation.{flipped}.passed": True}), POLICY)
    _assert_not_worse(before, after)
    assert after.score.contributions[1].points > before.score.contributions[1].points


@st.composite
def penalties(draw: st.DrawFn, request: CheckpointRequest) -> tuple[str, dict[str, Any]]:
    """A penalty the request does not carry yet and the change that adds it."""
    options = []
    if not request.risk.production_data:
        options.append(("production_data", {"risk.production_data": True}))
    if request.risk.rollback_available:
        options.append(("no_rollback", {"risk.rollback_available": False}))
    if request.risk.blast_radius_pct <= LIMIT:
        wider = draw(st.floats(min_value=LIMIT, max_value=100, exclude_min=True), label="blast radius")
        options.append(("blast_radius", {"risk.blast_radius_pct": wider}))
    assume(options)
    return draw(st.sampled_from(options), label="penalty")


@PROPERTY
@given(requests(), st.data())
def test_adding_a_penalty_never_raises_the_score(request: CheckpointRequest, data: st.DataObject) -> None:
    # Given any request and a penalty it does not carry yet
    name, change = data.draw(penalties(request))
    # When the penalty's risk fact is set
    before = assess(request, POLICY)
    after = assess(_changed(request, change), POLICY)
    # Then the penalty applies and the score does not rise
    assert name in {p.name for p in after.score.penalties}
    assert name not in {p.name for p in before.score.penalties}
    assert after.score.score <= before.score.score


@PROPERTY
@given(requests())
def test_the_assessment_is_deterministic(request: CheckpointRequest) -> None:
    first = assess(request, POLICY)
    assert assess(request, POLICY) == first
    assert assess(_changed(request, {}), POLICY) == first


@st.composite
def threshold_pairs(draw: st.DrawFn) -> tuple[float, float]:
    manual = draw(percents, label="manual")
    auto = draw(st.floats(min_value=manual, max_value=100, allow_nan=False), label="auto")
    return auto, manual


@PROPERTY
@given(threshold_pairs(), percents, percents, st.sampled_from(list(RiskClass)))
def test_band_is_monotone_in_score_for_any_valid_thresholds(
    thresholds: tuple[float, float], a: float, b: float, risk: RiskClass
) -> None:
    # Given any policy whose thresholds have manual <= auto
    auto, manual = thresholds
    pair = Thresholds(auto=auto, manual=manual)
    policy = POLICY.policy.model_copy(update={"thresholds": dict.fromkeys(RiskClass, pair)})
    low, high = sorted((a, b))
    # Then a higher score never falls in a lower band
    assert band_for(low, risk, policy).rank <= band_for(high, risk, policy).rank

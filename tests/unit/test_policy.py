"""The policy file: the shipped one validates, its version is stable across formatting, and every
kind of mistake is refused with a problem that names where it is and what is wrong."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from signoff.domain.errors import PolicyError
from signoff.domain.policy import GateKind, RiskClass, load_policy, parse_duration, parse_policy
from tests.helpers import DELETE, POLICY_PATH, derived_policy, policy_data

pytestmark = pytest.mark.unit


def _problems(changes: dict[str, Any]) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        derived_policy(changes)
    assert caught.value.problems, "a PolicyError must list at least one problem"
    return caught.value.problems


def _one_problem_naming(problems: list[str], path: str, reason: str) -> None:
    matching = [p for p in problems if path in p and reason in p]
    assert matching, f"no problem names {path!r} with {reason!r}: {problems}"


# -- the shipped policy and its version --------------------------------------------------------


def test_shipped_policy_validates() -> None:
    # Given the policy file the service deploys with
    # When it is loaded
    loaded = load_policy(POLICY_PATH)
    # Then it is valid and complete for every risk class
    assert set(loaded.policy.thresholds) == set(RiskClass)
    assert set(loaded.policy.matrix) == set(RiskClass)
    assert loaded.policy.gates["auto"].kind is GateKind.AUTO


def test_version_is_semver_plus_first_12_hex_of_the_content_hash() -> None:
    # Given the shipped policy
    loaded = load_policy(POLICY_PATH)
    # Then its version is the declared semver with the content hash as build metadata
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.sha256)
    assert loaded.version == f"1.0.0+{loaded.sha256[:12]}"


def test_version_ignores_comments_whitespace_and_key_order(tmp_path: Path) -> None:
    # Given the shipped file and a copy with no comments, other indentation and reversed keys
    original = load_policy(POLICY_PATH)
    data = policy_data()
    reordered = {key: data[key] for key in reversed(list(data))}
    reordered["weights"] = dict(reversed(list(data["weights"].items())))
    copy = tmp_path / "reformatted.yaml"
    copy.write_text("# another comment\n\n" + yaml.safe_dump(reordered, indent=4, sort_keys=False), encoding="utf-8")
    # When both are loaded
    reformatted = load_policy(copy)
    # Then they have the same version
    assert reformatted.version == original.version


@pytest.mark.parametrize(
    "changes",
    [
        {"penalties.no_rollback": 11},
        {"gates.veto-10m.veto_window": "15m"},
        {"version": "1.0.1"},
        {"risk_rules": []},
    ],
    ids=["penalty", "veto-window", "semver", "rules"],
)
def test_version_changes_when_content_changes(changes: dict[str, Any]) -> None:
    # Given the shipped policy and a copy with one real change
    original = parse_policy(policy_data())
    # When the changed copy is validated
    changed = derived_policy(changes)
    # Then its version differs
    assert changed.sha256 != original.sha256
    assert changed.version != original.version


# -- durations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("45s", 45), ("10m", 600), ("2h", 7200), ("1d", 86400), (90, 90)])
def test_durations_parse_to_seconds(text: str | int, seconds: int) -> None:
    # Given a duration as written in the policy / When it is parsed / Then it is a number of seconds
    assert parse_duration(text) == seconds


def test_durations_in_gate_profiles_are_seconds() -> None:
    # Given a policy whose gates use each unit
    loaded = derived_policy(
        {
            "gates.veto-10m.veto_window": "45s",
            "gates.review.approval_deadline": "2h",
            "gates.review.escalation.wait": "1d",
        }
    )
    # Then the profiles hold seconds
    assert loaded.policy.gates["veto-10m"].veto_window == 45
    assert loaded.policy.gates["review"].approval_deadline == 7200
    assert loaded.policy.gates["review"].escalation is not None
    assert loaded.policy.gates["review"].escalation.wait == 86400


# -- invalid policies --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"weights.model": 50}, "weights", "must add up to 100"),
        ({"thresholds.medium.auto": 101}, "thresholds.medium.auto", "less than or equal to 100"),
        ({"thresholds.medium.manual": 95}, "thresholds.medium", "must not be above auto"),
        ({"matrix.low.high": "turbo"}, "matrix.low.high", "unknown gate 'turbo'"),
        ({"matrix.low.high": DELETE}, "matrix.low", "misses bands high"),
        ({"matrix.high": DELETE}, "matrix", "misses risk classes high"),
        ({"thresholds.low": DELETE}, "thresholds", "misses risk classes low"),
        ({"matrix.low.high": "review"}, "matrix.low", "higher confidence band must not map to a stricter gate"),
        ({"matrix.high.high": "auto"}, "band high", "higher risk class must not map to a laxer gate"),
        ({"gates.veto-10m.veto_window": DELETE}, "gates.veto-10m", "soft gate needs veto_window"),
        ({"gates.review.approval_deadline": DELETE}, "gates.review", "hard gate needs approval_deadline"),
        ({"gates.review.timeout_rule": DELETE}, "gates.review", "needs timeout_rule"),
        ({"gates.veto-10m.veto_window": "10 minutes"}, "gates.veto-10m.veto_window", "must look like 45s, 10m"),
        ({"gates.auto.colour": "red"}, "gates.auto.colour", "Extra inputs are not permitted"),
        ({"colour": "red"}, "colour", "Extra inputs are not permitted"),
        ({"risk_rules.0.when.environments": ["prod"]}, "risk_rules[0].when.environments", "unknown environments prod"),
        (
            {"risk_rules.1.when.data_sensitivity": ["secret"]},
            "risk_rules[1].when.data_sensitivity[0]",
            "Input should be",
        ),
        ({"version": "one"}, "version", "should match pattern"),
    ],
    ids=[
        "weights-sum",
        "threshold-above-100",
        "manual-above-auto",
        "unknown-gate",
        "missing-band",
        "missing-risk-class-in-matrix",
        "missing-risk-class-in-thresholds",
        "stricter-for-higher-band",
        "laxer-for-higher-risk",
        "soft-without-veto-window",
        "hard-without-deadline",
        "waiting-gate-without-timeout-rule",
        "bad-duration",
        "unknown-gate-key",
        "unknown-top-level-key",
        "rule-with-unknown-environment",
        "unknown-data-sensitivity",
        "bad-semver",
    ],
)
def test_invalid_policy_is_refused_naming_path_and_reason(changes: dict[str, Any], path: str, reason: str) -> None:
    # Given the shipped policy with one mistake
    # When it is validated
    problems = _problems(changes)
    # Then a problem names where the mistake is and why it is one
    _one_problem_naming(problems, path, reason)


def test_policy_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(["weights"], source="list.yaml")
    assert caught.value.source == "list.yaml"
    _one_problem_naming(caught.value.problems, "(top level)", "must be a mapping")


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    # Given a file that is not YAML
    broken = tmp_path / "broken.yaml"
    broken.write_text("weights: {model: 40\nthresholds: [", encoding="utf-8")
    # When it is loaded / Then the error names the file and says it is not YAML
    with pytest.raises(PolicyError) as caught:
        load_policy(broken)
    assert caught.value.source == str(broken)
    _one_problem_naming(caught.value.problems, "not valid YAML", "line")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(missing)
    assert caught.value.source == str(missing)
    assert str(missing) in str(caught.value)
    _one_problem_naming(caught.value.problems, "cannot read the file", "No such file")

"""The `signoff` CLI, called in-process through `main([...])`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from signoff.domain.policy import load_policy
from signoff.tools.cli import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "signoff.yaml"
EVENTS = ROOT / "events" / "api"


def _policy_data() -> dict:
    return yaml.safe_load(POLICY.read_text(encoding="utf-8"))


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_check_accepts_the_shipped_policy_and_prints_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    # Given the policy that ships with the repository
    version = load_policy(POLICY).version

    # When it is checked
    code = main(["policy", "check", str(POLICY)])

    # Then it passes and the output names the version and summarises the policy
    out = capsys.readouterr().out
    assert code == 0
    assert f"OK {POLICY}: policy version {version}" in out
    assert "3 environments" in out
    assert "7 risk rules" in out
    assert "4 gate profiles" in out


def test_check_rejects_a_broken_policy_naming_the_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a copy of the policy whose weights add up to 110
    data = _policy_data()
    data["weights"]["history"] = 20
    broken = _write_yaml(tmp_path / "broken.yaml", data)

    # When it is checked
    code = main(["policy", "check", str(broken)])

    # Then it fails and stderr says where and why
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert "weights: weights must add up to 100" in captured.err


def test_check_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a policy with two independent mistakes
    data = _policy_data()
    data["version"] = "one"
    data["gates"]["veto-10m"]["veto_window"] = "ten minutes"
    broken = _write_yaml(tmp_path / "broken.yaml", data)

    # When it is checked
    code = main(["policy", "check", str(broken)])

    # Then both are reported with their paths
    err = capsys.readouterr().err
    assert code == 1
    assert "version:" in err
    assert "gates.veto-10m.veto_window:" in err


def test_check_reports_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["policy", "check", str(tmp_path / "absent.yaml")])

    assert code == 1
    assert "cannot read the file" in capsys.readouterr().err


@pytest.mark.parametrize(("event", "gate"), [("auto", "auto"), ("soft", "soft"), ("hard", "hard")])
def test_explain_prints_the_explanation_and_gate(event: str, gate: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a sample request
    request = EVENTS / f"checkpoint-{event}.json"

    # When it is explained offline under the shipped policy
    code = main(["policy", "explain", str(POLICY), str(request)])

    # Then the explanation ends in the expected gate
    out = capsys.readouterr().out
    assert code == 0
    assert "score " in out
    assert "risk " in out
    assert f"gate {gate}" in out


def test_explain_names_the_invalid_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a request with an out-of-range signal and a missing field
    body = json.loads((EVENTS / "checkpoint-auto.json").read_text(encoding="utf-8"))
    body["signals"]["model_confidence"] = 1.5
    del body["target"]
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body), encoding="utf-8")

    # When it is explained
    code = main(["policy", "explain", str(POLICY), str(request)])

    # Then it exits 2 naming each field
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "signals.model_confidence:" in captured.err
    assert "target:" in captured.err


def test_explain_refuses_an_unknown_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = json.loads((EVENTS / "checkpoint-auto.json").read_text(encoding="utf-8"))
    body["environment"] = "qa"
    request = tmp_path / "request.json"
    request.write_text(json.dumps(body), encoding="utf-8")

    code = main(["policy", "explain", str(POLICY), str(request)])

    assert code == 2
    assert "environment: unknown environment 'qa'" in capsys.readouterr().err


def test_explain_refuses_malformed_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    request = tmp_path / "request.json"
    request.write_text("{", encoding="utf-8")

    code = main(["policy", "explain", str(POLICY), str(request)])

    assert code == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_explain_with_a_broken_policy_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _policy_data()
    data["weights"]["history"] = 20
    broken = _write_yaml(tmp_path / "broken.yaml", data)

    code = main(["policy", "explain", str(broken), str(EVENTS / "checkpoint-hard.json")])

    assert code == 1
    assert "weights: weights must add up to 100" in capsys.readouterr().err


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["policy"])

    assert exit_info.value.code == 2
    assert "usage:" in capsys.readouterr().err

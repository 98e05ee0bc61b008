"""`signoff helpdesk check|explain`, called in-process through the CLI's `main([...])`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from signoff.tools.cli import main

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "helpdesk.yaml"
KNOWLEDGE = ROOT / "knowledge"


def test_check_accepts_the_shipped_config(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["helpdesk", "check", str(CONFIG), "--today", "2026-11-16"])

    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"OK {CONFIG}: helpdesk version 1.1.0+")
    assert "stale (not reviewed within 365 days): knowledge/printing.md" in out


def test_check_with_routing_accepts_the_shipped_pair_and_names_a_missing_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["helpdesk", "check", str(CONFIG), "--routing", str(ROOT / "routing.yaml")]) == 0
    data = yaml.safe_load((ROOT / "routing.yaml").read_text(encoding="utf-8"))
    del data["teams"]["ops"]
    del data["teams"]["iam"]["on_call"]
    routing = tmp_path / "routing.yaml"
    routing.write_text(yaml.safe_dump(data), encoding="utf-8")

    code = main(["helpdesk", "check", str(CONFIG), "--routing", str(routing)])

    err = capsys.readouterr().err
    assert code == 1
    assert "queues.incident.oncall: routing has no team 'ops'" in err
    assert "queues.iam.oncall: team 'iam' has no on_call rotation" in err


def test_check_names_each_problem_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a config with an unknown queue and a broken threshold
    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    data["classes"]["how_to"]["queue"] = "nowhere"
    data["classes"]["ticket_only"]["threshold"] = 120
    bad = tmp_path / "helpdesk.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")

    # When it is checked
    code = main(["helpdesk", "check", str(bad), "--knowledge", str(KNOWLEDGE)])

    # Then each problem is printed as path: reason
    err = capsys.readouterr().err
    assert code == 1
    assert f"INVALID {bad}:" in err
    assert "classes.ticket_only.threshold: Input should be less than or equal to 100" in err


def test_explain_json_prints_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["helpdesk", "explain", "How do I connect to the VPN from home?", "--user", "U1", "--channel", "C01ITHELP",
         "--config", str(CONFIG), "--knowledge", str(KNOWLEDGE), "--today", "2026-11-16", "--json"]
    )  # fmt: skip

    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == {"class", "route", "confidence", "contributions", "sources", "visibility", "message"}
    assert out["class"] == "how_to" and out["route"] == "answer"
    assert {"name", "points", "max_points", "detail"} == set(out["contributions"][0])
    assert out["sources"][0]["link"].startswith("https://")


def test_explain_prints_contributions_route_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["helpdesk", "explain", "I need access to NetSuite", "--user", "U1", "--channel", "C01ITHELP",
         "--config", str(CONFIG), "--today", "2026-11-16"]
    )  # fmt: skip

    out = capsys.readouterr().out
    assert code == 0
    assert "class access_request" in out
    assert "privileged" in out and "classifier" in out
    assert "route approval -> queue iam, visibility dm" in out
    assert "I can draft this request" in out

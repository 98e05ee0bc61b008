"""End to end over HTTP against the local stack: the very handlers, on moto, behind the routes the
CDK template declares."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, LocalSignoff, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / "api" / f"checkpoint-{name}.json").read_text())
    return data


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}


@pytest.mark.parametrize(("name", "gate", "status", "http"), [
    ("auto", "auto", "APPROVED", 200),
    ("soft", "soft", "PENDING", 202),
    ("hard", "hard", "PENDING", 202),
])  # fmt: skip
def test_samples_get_the_gates_the_readme_promises(
    signoff: LocalSignoff, name: str, gate: str, status: str, http: int
) -> None:
    reply = signoff.call("POST", "/v1/checkpoints", sample(name), key())
    assert reply.status == http
    cp = reply.body
    assert (cp["assessment"]["gate"]["kind"], cp["status"]) == (gate, status)
    assert cp["assessment"]["explanation"] and cp["assessment"]["policy_version"].startswith("1.0.0")
    assert reply.headers["location"] == f"/v1/checkpoints/{cp['id']}"
    # and it can be read back, with its audit trail
    read = signoff.call("GET", f"/v1/checkpoints/{cp['id']}").body
    # (a gate's workflow keeps adding to it: compare what the request fixed)
    assert {k: read[k] for k in ("id", "request", "assessment", "created_at", "caller")} == {
        k: cp[k] for k in ("id", "request", "assessment", "created_at", "caller")
    }
    # (the approval workflow posts the card asynchronously: wait for it)
    expected = ["requested", "decided"] if gate == "auto" else ["requested", "gate_opened", "notified"]
    assert eventually(lambda: [e["type"] for e in signoff.events(cp["id"])][:3] == expected)


def test_readme_sample_curl_returns_an_explained_decision(signoff: LocalSignoff) -> None:
    # The README's command, verbatim but for the URL.
    out = subprocess.run(
        ["curl", "-s", "-X", "POST", f"{signoff.url}/v1/checkpoints", "-H", "content-type: application/json",
         "-H", f"Idempotency-Key: readme-{uuid.uuid4()}", "-d", "@events/api/checkpoint-auto.json"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    cp = json.loads(out.stdout)
    assert cp["status"] == "APPROVED"
    assert [c["name"] for c in cp["assessment"]["score"]["contributions"]] == [
        "model",
        "validation",
        "observability",
        "history",
    ]


def _invalid_cases() -> list[tuple[str, Any, int, str]]:
    missing = sample("hard")
    del missing["service"]
    wrong_type = sample("hard")
    wrong_type["risk"]["blast_radius_pct"] = "a lot"
    too_confident = sample("hard")
    too_confident["signals"]["model_confidence"] = 1.7
    unknown_env = sample("hard")
    unknown_env["environment"] = "moon"
    huge_diff = sample("hard")
    huge_diff["evidence"]["diff_summary"] = "x" * 4001
    return [
        ("missing field", missing, 422, "service"),
        ("wrong type", wrong_type, 422, "risk.blast_radius_pct"),
        ("confidence 1.7", too_confident, 422, "signals.model_confidence"),
        ("unknown environment", unknown_env, 422, "environment"),
        ("oversized evidence", huge_diff, 422, "evidence.diff_summary"),
    ]


@pytest.mark.parametrize(("case", "body", "status", "field"), _invalid_cases(), ids=[c[0] for c in _invalid_cases()])
def test_bad_input_names_the_field_and_stores_nothing(
    signoff: LocalSignoff, case: str, body: Any, status: int, field: str
) -> None:
    before = signoff.count_all()
    reply = signoff.call("POST", "/v1/checkpoints", body, key())
    assert reply.status == status, reply.body
    assert reply.headers["content-type"] == "application/problem+json"
    assert field in [e["field"] for e in reply.body["errors"]]
    assert signoff.count_all() == before


def test_body_over_256_kib_is_413_and_not_json_is_400_or_415(signoff: LocalSignoff) -> None:
    before = signoff.count_all()
    assert signoff.call("POST", "/v1/checkpoints", b"{" + b" " * (257 * 1024) + b"}", key()).status == 413
    assert signoff.call("POST", "/v1/checkpoints", b"{not json", key()).status == 400
    form = signoff.call("POST", "/v1/score", b"a=1", {"content-type": "application/x-www-form-urlencoded"})
    assert form.status == 415
    assert signoff.count_all() == before


def test_same_key_same_body_is_one_checkpoint_with_one_trail_other_body_is_409(signoff: LocalSignoff) -> None:
    headers = key()
    first = signoff.call("POST", "/v1/checkpoints", sample("soft"), headers)
    again = signoff.call("POST", "/v1/checkpoints", sample("soft"), headers)
    assert (first.status, again.status) == (202, 202)
    assert again.body["id"] == first.body["id"]
    # one trail: requested once, one gate opened (one workflow), whatever Notify adds after
    events = [e["type"] for e in signoff.events(first.body["id"])]
    assert events.count("requested") == 1 and events.count("gate_opened") == 1
    other = copy.deepcopy(sample("soft"))
    other["summary"] = "something else entirely"
    conflict = signoff.call("POST", "/v1/checkpoints", other, headers)
    assert conflict.status == 409
    assert "Idempotency-Key" in conflict.body["detail"]


def test_outcome_is_recorded_once(signoff: LocalSignoff) -> None:
    cp = signoff.call("POST", "/v1/checkpoints", sample("auto"), key()).body
    path = f"/v1/checkpoints/{cp['id']}/outcome"
    first = signoff.call("POST", path, {"outcome": "rolled_back", "details": "p99 regression"})
    assert first.status == 200 and first.body["outcome"]["outcome"] == "rolled_back"
    assert signoff.call("POST", path, {"outcome": "success"}).status == 409
    assert (
        signoff.call("POST", "/v1/checkpoints/cp_00000000000000000000000000/outcome", {"outcome": "success"}).status
        == 404
    )


def test_score_is_a_dry_run(signoff: LocalSignoff) -> None:
    before = signoff.count_all()
    reply = signoff.call("POST", "/v1/score", sample("hard"))
    assert reply.status == 200 and reply.body["gate"]["kind"] == "hard"
    assert signoff.count_all() == before


def test_pending_list_pages_by_deadline(signoff: LocalSignoff) -> None:
    for _ in range(3):
        signoff.call("POST", "/v1/checkpoints", sample("soft"), key())
    page = signoff.call("GET", "/v1/checkpoints?status=pending&limit=2").body
    assert len(page["items"]) == 2 and page["next_token"]
    rest = signoff.call("GET", f"/v1/checkpoints?status=pending&limit=2&next_token={page['next_token']}").body
    deadlines = [cp["deadline"] for cp in page["items"] + rest["items"]]
    assert deadlines == sorted(deadlines)
    assert signoff.call("GET", "/v1/checkpoints?status=pending&next_token=garbage").status == 422


def test_openapi_document_is_served(signoff: LocalSignoff) -> None:
    doc = signoff.call("GET", "/v1/openapi.json").body
    assert {"/v1/checkpoints", "/v1/score", "/v1/checkpoints/{checkpoint_id}/outcome"} <= set(doc["paths"])


def test_make_demo_prints_three_decisions(signoff: LocalSignoff) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "local.demo", "--url", signoff.url],
        cwd=ROOT,
        env={"PYTHONPATH": str(Path(ROOT) / "infra"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("(expected") == 3 and "gate hard (expected hard)" in out.stdout

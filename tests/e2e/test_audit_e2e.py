"""The audit trail end to end, on a local stack of its own: a scripted run of 200+ mixed
checkpoints (auto, soft, hard; approved, denied, expired; refused clicks; outcomes) goes through
the real workflow, the table's stream reaches the archiver, and the archive is mirrored to disk.
Then: every event is archived exactly once, `signoff audit verify` passes, each named query
returns the figures computed here independently from the API, tampering is named, and a failing
archiver loses nothing (retried, or waiting in the dead-letter queue)."""

from __future__ import annotations

import gzip
import json
import shutil
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, LocalSignoff, eventually, expiring_review, expiring_soft, start_local

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("audit")]
AUDIT_POLICY = ROOT / "tests" / "e2e" / "policy-audit.yaml"  # clicked gates wait minutes, the rest 40 s


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    yield from start_local(tmp_path_factory, SIGNOFF_POLICY=str(AUDIT_POLICY))


def sample(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((ROOT / "events" / "api" / f"checkpoint-{name}.json").read_text())
    body["request_id"] = f"req-{uuid.uuid4()}"
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            body[section][field] = value
        else:
            body[section] = value
    return body


def create(stack: LocalSignoff, body: dict[str, Any]) -> dict[str, Any]:
    reply = stack.call("POST", "/v1/checkpoints", body, {"Idempotency-Key": str(uuid.uuid4())})
    assert reply.status in (200, 202), reply.body
    cp: dict[str, Any] = reply.body
    return cp


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signoff.tools.cli", *args], cwd=ROOT, capture_output=True, text=True)


def query(stack: LocalSignoff, name: str, archive: Path | None = None) -> list[dict[str, Any]]:
    out = cli("audit", "query", name, "--archive", str(archive or stack.archive), "--format", "json")
    assert out.returncode == 0, out.stdout + out.stderr
    rows: list[dict[str, Any]] = json.loads(out.stdout)
    return rows


def archived(archive: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(archive.rglob("*.jsonl.gz")) for line in gzip.open(f, "rt")]


# -- the scripted run ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(stack: LocalSignoff) -> dict[str, Any]:
    """200+ checkpoints; returns every checkpoint and its events as the API reports them."""
    low = {"signals__model_confidence": 0.1}  # low-risk, low-confidence: 1-approver hard gate 'review'
    # What is clicked gets a gate of minutes ('veto-10m', 'review'), what is left to run or expire
    # one of 40 s ('veto-40s', 'review-40s'): no click can be late, however busy the machine.
    gated: list[tuple[str, dict[str, Any]]] = (
        [("soft-veto", sample("soft")) for _ in range(8)]
        + [("soft-runs", expiring_soft(sample("soft"))) for _ in range(8)]
        + [("approve", sample("soft", **low)) for _ in range(10)]
        + [("deny", sample("soft", **low)) for _ in range(8)]
        + [("expire", expiring_review(sample("soft"))) for _ in range(8)]
    )
    created = [(kind, create(stack, body)) for kind, body in gated]

    def click(kind: str, cp: dict[str, Any]) -> None:
        eventually(lambda: stack.cards(cp["id"]))
        if kind == "soft-veto":
            stack.act("bob@example.com", cp["id"], "veto")
        elif kind == "approve":
            stack.act("mallory@example.com", cp["id"], "approve")  # refused and audited
            stack.act("grace@example.com", cp["id"], "approve")
        elif kind == "deny":
            # Grace clicks on four cards at once: the views opened while this click was handled may
            # include another card's modal, so take the one for this checkpoint.
            opened = stack.act("grace@example.com", cp["id"], "deny")["views"]
            views = [v for v in opened if v.get("private_metadata") == cp["id"]]
            assert views, f"no modal for {cp['id']}"  # the local views.open has no wall-clock limit
            stack.submit("grace@example.com", views[0], "not this week")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda item: click(*item), [c for c in created if c[0] in ("soft-veto", "approve", "deny")]))
    # While the rest wait out their windows: the auto-gated traffic.
    created += [("auto", create(stack, sample("auto", environment=env))) for env in ["staging", "dev"] * 80]
    assert len(created) >= 200

    # Every gate decides (the expiring ones after 40 + 5 s, escalation included).
    ids = [cp["id"] for _, cp in created]
    eventually(lambda: all(stack.checkpoint(i)["status"] != "PENDING" for i in ids), timeout=600)
    outcomes = Counter()
    for i, (kind, cp) in enumerate(created):
        if kind == "auto" and i % 7 == 0:
            outcome = ["success", "failure", "rolled_back"][i % 3]
            assert stack.call("POST", f"/v1/checkpoints/{cp['id']}/outcome", {"outcome": outcome}).status == 200
            outcomes[outcome] += 1
    # Workflows finish asynchronously (Finalize updates cards and records webhooks): wait for them.
    eventually(lambda: all(e["status"] != "RUNNING" for e in stack.executions()))
    assert stack.call("POST", "/local/drain").status == 200
    events = {cp["id"]: stack.events(cp["id"]) for _, cp in created}
    return {"created": created, "events": events, "outcomes": outcomes}


def all_events(run: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for events in run["events"].values() for e in events]


def test_every_event_is_archived_exactly_once(stack: LocalSignoff, run: dict[str, Any]) -> None:
    assert stack.archive is not None
    records = archived(stack.archive)
    keys = Counter((r["checkpoint_id"], r["seq"]) for r in records)
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    table = {(e["checkpoint_id"], e["seq"]): e["hash"] for e in all_events(run)}
    assert {k: r["hash"] for r in records if (k := (r["checkpoint_id"], r["seq"])) in table} == table
    assert set(keys) == set(table)


def test_audit_verify_passes(stack: LocalSignoff, run: dict[str, Any]) -> None:
    out = cli("audit", "verify", "--archive", str(stack.archive), "--url", stack.url, "--no-sign")
    assert out.returncode == 0, out.stdout + out.stderr


def test_each_named_query_matches_the_figures_computed_here(stack: LocalSignoff, run: dict[str, Any]) -> None:
    events = all_events(run)
    of = {t: [e for e in events if e["type"] == t] for t in {e["type"] for e in events}}
    decided = [e["data"] for e in of["decided"]]
    requested = [e["data"] for e in of["requested"]]

    rate = query(stack, "approval_rate")
    status = Counter(d["status"] for d in decided)
    assert sum(r["decisions"] for r in rate) == len(decided)
    for column, value in (("approved", "APPROVED"), ("denied", "DENIED"), ("expired", "EXPIRED")):
        assert sum(r[column] for r in rate) == status[value], column

    latency = {(r["environment"], r["gate"]): r for r in query(stack, "approval_latency")}
    for (env, gate), row in latency.items():
        mine = [d["latency_seconds"] for d in decided if (d["environment"], d["gate"]) == (env, gate)]
        assert row["decisions"] == len(mine)
        assert row["max_seconds"] == pytest.approx(max(mine))
        assert min(mine) <= row["p50_seconds"] <= max(mine)
    assert statistics.median(d["latency_seconds"] for d in decided if d["gate"] == "auto") == 0

    traffic = query(stack, "traffic_per_day")
    assert sum(r["requests"] for r in traffic) == len(requested)
    gates = Counter(d["assessment"]["gate"]["kind"] for d in requested)
    assert (sum(r["auto"] for r in traffic), sum(r["soft"] for r in traffic), sum(r["hard"] for r in traffic)) == (
        gates["auto"],
        gates["soft"],
        gates["hard"],
    )

    escalated = {e["checkpoint_id"] for e in of["escalated"]}
    assert sum(r["escalated"] for r in query(stack, "escalation_rate")) == len(escalated) >= 8  # the expiring ones

    unauthorized = [e for e in of["refused"] if e["data"]["unauthorized"]]
    assert sum(r["attempts"] for r in query(stack, "unauthorized_attempts")) == len(unauthorized) >= 10

    failures = query(stack, "approval_failures")
    assert sum(r["failures"] for r in failures) == run["outcomes"]["failure"]
    assert sum(r["rollbacks"] for r in failures) == run["outcomes"]["rolled_back"]
    assert sum(r["successes"] for r in failures) == run["outcomes"]["success"]

    [completeness] = query(stack, "audit_completeness")
    assert completeness["decisions"] == completeness["complete"] == len(decided)

    [stalled] = query(stack, "stalled_approvals")
    assert stalled["stalled"] == 0 and stalled["pending"] == 0

    votes = Counter(e["actor"] for e in of["voted"])
    assert {r["approver"]: r["votes"] for r in query(stack, "top_approvers")} == dict(votes.most_common(10))


def test_altering_or_deleting_an_archived_event_is_named(
    stack: LocalSignoff, run: dict[str, Any], tmp_path: Path
) -> None:
    assert stack.archive is not None
    copy = tmp_path / "archive"
    shutil.copytree(stack.archive, copy)
    files = sorted(copy.rglob("*.jsonl.gz"))
    # Alter one event's content, keeping its hash; delete another object
    altered, deleted = files[0], files[-1]
    record = json.loads(gzip.decompress(altered.read_bytes()))
    data = json.loads(record["data"])
    data["tampered"] = True
    record["data"] = json.dumps(data, sort_keys=True, separators=(",", ":"))
    altered.write_bytes(gzip.compress((json.dumps(record) + "\n").encode()))
    gone = json.loads(gzip.decompress(deleted.read_bytes()))
    deleted.unlink()
    out = cli("audit", "verify", "--archive", str(copy), "--url", stack.url, "--no-sign")
    assert out.returncode == 1
    said = out.stdout + out.stderr
    assert record["checkpoint_id"] in said and gone["checkpoint_id"] in said
    assert "altered" in said and "missing" in said


def test_a_failing_archiver_loses_nothing(stack: LocalSignoff, run: dict[str, Any]) -> None:
    assert stack.archive is not None
    # Two failed deliveries: retried, then archived
    assert stack.call("POST", "/local/faults", {"function": "Archiver", "failures": 2}).status == 200
    retried = create(stack, sample("auto"))
    assert stack.call("POST", "/local/drain").status == 200
    mine = [r for r in archived(stack.archive) if r["checkpoint_id"] == retried["id"]]
    assert sorted(r["seq"] for r in mine) == [1, 2]
    # Failing beyond every retry: the batch waits in the dead-letter queue, and verify names it
    assert stack.call("POST", "/local/faults", {"function": "Archiver", "failures": 1000}).status == 200
    lost = create(stack, sample("auto"))
    assert stack.call("POST", "/local/drain").status == 200
    assert not [r for r in archived(stack.archive) if r["checkpoint_id"] == lost["id"]]
    queues = stack.call("GET", "/local/queues").body["queues"]
    dead = [m for messages in queues.values() for m in messages]
    assert dead and all(m["DDBStreamBatchInfo"]["batchSize"] >= 1 for m in dead)
    out = cli("audit", "verify", "--archive", str(stack.archive), "--url", stack.url, "--no-sign")
    assert out.returncode == 1 and lost["id"] in out.stdout + out.stderr
    assert stack.call("POST", "/local/faults", {"function": "Archiver", "failures": 0}).status == 200

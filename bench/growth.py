"""Growth benchmark of the local stack (used by bench/run.py, or alone: python -m bench.growth).

`make local`'s stack (shipped policy, `python -m local` in a subprocess) is filled to `total`
stored checkpoints over HTTP, one request at a time like a pipeline: per block of 1,000, the
auto-gated POSTs and a share of gated ones (the hard "review" gate: one approver). Each gated
checkpoint is then carded, approved by Grace's signed click through the sandbox, and finalized
in the background, so the workflows never pile up. Reported per block: p50/p99 of each POST.

Then, at the full table, sustained gated throughput: `workers` pipelines each create a gated
checkpoint, wait for its card, click Approve (a signed Slack payload to the real route) and wait
until the workflow has finalized it; checkpoints per second over the whole run.

No figure here is a pass/fail of the test suite; targets are printed beside the figures."""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events" / "api"
APPROVER = "grace@example.com"  # eligible for the review gate of the samples (not the requester)

TARGET_P50_MS = 60.0
TARGET_P99_MS = 250.0
TARGET_GROWTH = 1.5  # p50 of the last block at most 1.5 x the first
TARGET_GATED_PER_S = 20.0


class Client:
    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def create(self, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        status, cp = self.call("POST", "/v1/checkpoints", body, {"Idempotency-Key": str(uuid.uuid4())})
        elapsed = (time.perf_counter() - started) * 1000
        if status not in (200, 202):
            raise RuntimeError(f"POST /v1/checkpoints answered {status}: {cp}")
        return elapsed, cp

    def wait(self, path: str, done: Any, timeout: float = 120.0) -> Any:
        """The stack waits server-side (`?wait=`) until the state is there: polling over HTTP would
        cost it a request, and moto calls, every few milliseconds per pipeline."""
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.call("GET", f"{path}?wait=30")
            if status == 200 and done(body):
                return body
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path}: {body}")

    def approve(self, checkpoint_id: str) -> None:
        """Carded, approved by a signed click, finalized by the workflow."""
        cards = self.wait(f"/sandbox/api/cards/{checkpoint_id}", lambda b: b["cards"])["cards"]
        card = cards[0]
        click = {"person": APPROVER, "channel": card["channel"], "ts": card["ts"], "action_id": "signoff:approve"}
        status, body = self.call("POST", "/sandbox/api/click", {**click, "value": checkpoint_id})
        if status != 200:
            raise RuntimeError(f"click refused: {status} {body}")
        execution = self.wait(f"/local/executions/{checkpoint_id}", lambda b: b["status"] != "RUNNING")
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"workflow of {checkpoint_id} ended {execution['status']}: {execution}")


def sample(name: str, **signals: float) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / f"checkpoint-{name}.json").read_text())
    body["request_id"] = f"bench-{uuid.uuid4()}"
    body["signals"].update(signals)
    return body


def auto() -> dict[str, Any]:
    return sample("auto")


def gated() -> dict[str, Any]:
    return sample("soft", model_confidence=0.1)  # low risk, low band: the review gate (1 approver)


@dataclass(frozen=True)
class RunningStack:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the stack's process has used so far (user + system, every thread): Linux /proc."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def local_stack(workdir: Path, environments: int = 1) -> Iterator[RunningStack]:
    """`make local`'s stack, synthesized into workdir, on a free port. `environments`:
    invocations of one function that run at once."""
    outdir, archive = workdir / "cdk.out", workdir / "archive"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "infra"),
        "CDK_OUTDIR": str(outdir),
        "SIGNOFF_EXAMPLE": "1",
        "SIGNOFF_ARCHIVE": str(archive),
    }
    subprocess.run([sys.executable, str(ROOT / "infra" / "app.py")], cwd=ROOT, env=env, check=True, capture_output=True)
    log = (workdir / "local.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--outdir", str(outdir), "--environments", str(environments)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    url = None
    for line in proc.stdout:
        if match := re.search(r"listening on (http://\S+)", line):
            url = match.group(1)
            break
    if url is None:
        proc.kill()
        raise RuntimeError(f"the local stack did not start; see {log.name}")
    threading.Thread(target=lambda: [log.write(line) for line in proc.stdout or []], daemon=True).start()
    try:
        yield RunningStack(url, proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _ms(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "requests": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
        "max_ms": round(ordered[-1], 2),
    }


def fill(client: Client, total: int, block: int, gated_share: float) -> list[dict[str, Any]]:
    """POST one at a time up to `total` stored checkpoints; per block, each kind's latency."""
    blocks: list[dict[str, Any]] = []
    every = max(1, round(1 / gated_share)) if gated_share > 0 else 0
    with ThreadPoolExecutor(4, thread_name_prefix="approver") as approvers:
        approvals = []
        stored = 0
        while stored < total:
            auto_ms: list[float] = []
            gated_ms: list[float] = []
            start = stored
            while stored < start + block and stored < total:
                if every and stored % every == every // 2:
                    elapsed, cp = client.create(gated())
                    gated_ms.append(elapsed)
                    approvals.append(approvers.submit(client.approve, cp["id"]))
                else:
                    auto_ms.append(client.create(auto())[0])
                stored += 1
            for done in approvals:
                done.result()  # the block's workflows finished: none pile up into the next
            approvals.clear()
            blocks.append({"stored_from": start, "stored_to": stored, "auto": _ms(auto_ms), "gated": _ms(gated_ms)})
            a, g = blocks[-1]["auto"], blocks[-1]["gated"]
            print(
                f"  {start:>6}-{stored:<6} auto p50 {a['p50_ms']:7.2f} p99 {a['p99_ms']:7.2f}"
                f"  gated p50 {g['p50_ms']:7.2f} p99 {g['p99_ms']:7.2f} ms",
                flush=True,
            )
    return blocks


def throughput(client: Client, count: int, workers: int, stack: RunningStack | None = None) -> dict[str, Any]:
    """Gated checkpoints created, carded, approved by a signed click and finalized, per second; with
    `stack`, also the CPU the stack's process spent per checkpoint. The stack is one Python process
    (moto and every handler in it, one interpreter lock), so 1 / that CPU is its ceiling however many
    pipelines wait on it."""

    def one(index: int) -> float:
        started = time.perf_counter()
        _, cp = client.create(gated())
        client.approve(cp["id"])
        return time.perf_counter() - started

    started, cpu_before = time.perf_counter(), stack.cpu_seconds() if stack else 0.0
    with ThreadPoolExecutor(workers, thread_name_prefix="pipeline") as pool:
        durations = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "checkpoints": count,
        "workers": workers,
        "seconds": round(elapsed, 2),
        "per_second": round(count / elapsed, 1),
        "end_to_end_p50_ms": round(statistics.median(durations) * 1000, 1),
        "target_per_second": TARGET_GATED_PER_S,
    }
    if stack is not None:
        used = stack.cpu_seconds() - cpu_before
        cpu_ms = used * 1000 / count
        result["stack_cpu_ms_per_checkpoint"] = round(cpu_ms, 1)
        result["stack_cpu_busy"] = round(used / elapsed, 2)  # cores in use
        result["one_process_ceiling_per_second"] = round(1000 / cpu_ms, 1) if cpu_ms else None
    return result


def bench_growth(total: int, block: int, gated_share: float, sustained: int, workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="signoff-growth-") as tmp, local_stack(Path(tmp)) as stack:
        client = Client(stack.url)
        for _ in range(20):  # warm: first imports of every handler
            client.create(auto())
        client.approve(client.create(gated())[1]["id"])
        print(f"growth: {total:,} stored checkpoints in blocks of {block:,} ({gated_share:.0%} gated)", flush=True)
        blocks = fill(client, total, block, gated_share)
        print(f"sustained: {sustained} gated checkpoints, {workers} pipelines", flush=True)
        sustained_result = throughput(client, sustained, workers, stack)
    first, last = blocks[0]["auto"]["p50_ms"], blocks[-1]["auto"]["p50_ms"]
    return {
        "blocks": blocks,
        "auto_p50_growth": round(last / first, 2),
        "targets": {
            "auto_p50_ms": TARGET_P50_MS,
            "auto_p99_ms": TARGET_P99_MS,
            "auto_p50_growth": TARGET_GROWTH,
        },
        "sustained_gated": sustained_result,
        "note": (
            "python -m local in a subprocess, shipped policy; HTTP over loopback, one POST at a time; "
            "gated = hard review gate, approved by a signed Slack click and finalized by the workflow"
        ),
    }


def format_rows(result: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    blocks = result["blocks"]
    first, last = blocks[0], blocks[-1]
    span = f"{last['stored_from']:,}-{last['stored_to']:,}"
    s = result["sustained_gated"]
    return [
        (
            f"local auto POST at {span} stored",
            f"p50 {last['auto']['p50_ms']:.1f} / p99 {last['auto']['p99_ms']:.1f} ms"
            f" (0-{first['stored_to']:,}: p50 {first['auto']['p50_ms']:.1f}; x{result['auto_p50_growth']})",
            f"p50 < {TARGET_P50_MS:g}, <= x{TARGET_GROWTH:g}; p99 < {TARGET_P99_MS:g}",
            last["auto"]["p50_ms"] < TARGET_P50_MS
            and result["auto_p50_growth"] <= TARGET_GROWTH
            and last["auto"]["p99_ms"] < TARGET_P99_MS,
        ),
        (
            f"local gated POST at {span} stored",
            f"p50 {last['gated']['p50_ms']:.1f} / p99 {last['gated']['p99_ms']:.1f} ms"
            f" (0-{first['stored_to']:,}: p50 {first['gated']['p50_ms']:.1f})",
            "(figures only)",
            True,
        ),
        (
            f"local gated end to end ({s['workers']} pipelines)",
            f"{s['per_second']:.1f} checkpoints/s ({s['checkpoints']} in {s['seconds']:.1f} s)"
            + (
                f"; stack CPU {s['stack_cpu_ms_per_checkpoint']:.0f} ms each, {s['stack_cpu_busy']:.2f} cores busy"
                if "stack_cpu_ms_per_checkpoint" in s
                else ""
            ),
            f">= {TARGET_GATED_PER_S:g}/s",
            s["per_second"] >= TARGET_GATED_PER_S,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.growth", description=__doc__)
    parser.add_argument("--total", type=int, default=10_000)
    parser.add_argument("--block", type=int, default=1_000)
    parser.add_argument("--gated-share", type=float, default=0.05)
    parser.add_argument("--sustained", type=int, default=300)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    result = bench_growth(args.total, args.block, args.gated_share, args.sustained, args.workers)
    for row in format_rows(result):
        print("  ".join(str(c) for c in row))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Thresholds from evidence, on a local stack: drive a few thousand checkpoints whose outcomes follow
a known truth, then show what `signoff calibrate` recommends (and how close it is to the truth).

    SIGNOFF_POLICY=bench/calibration-policy.yaml SIGNOFF_SHADOW_POLICY=signoff.yaml \\
        PYTHONPATH=infra python infra/app.py
    PYTHONPATH=infra python -m local --port 8080 &
    PYTHONPATH=layers/core:infra:. python -m bench.calibration_demo --url http://127.0.0.1:8080

The stack runs the learning-period policy (every action runs, so outcomes cover every score) with
the shipped policy as its shadow. Each request is built so the engine scores it at a synthetic
score, in the synthetic risk class (staging: low; production: medium; a production migration:
high); its outcome is drawn from the truth (`signoff.tools.synthetic.TRUTHS`) at the score the
engine actually gave, and reported through the API. The archive mirror then feeds `calibrate`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signoff.tools.calibrate import Outcome, analyse, policy_diff
from signoff.tools.client import SignoffClient
from signoff.tools.synthetic import TRUTHS, judge, synthetic_outcomes
from signoff.tools.thresholds_cli import render_calibration

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "events" / "api" / "checkpoint-auto.json"
CHECKS = 10
ENVIRONMENT = {"low": "staging", "medium": "production", "high": "production"}


def request_for(score: float, risk: str) -> dict[str, Any]:
    """A request the shipped weights (40/30/20/10) score at about `score`, in class `risk`:
    k of 10 validation checks pass, the other three signals all equal x, so score = 70x + 3k."""
    body: dict[str, Any] = json.loads(SAMPLE.read_text(encoding="utf-8"))
    passed = max(0, min(CHECKS, round(score / 10)))
    x = max(0.0, min(1.0, (score - 3 * passed) / 70))
    body["signals"].update(
        model_confidence=round(x, 4), observability_alignment=round(x, 4), historical_success=round(x, 4)
    )
    body["signals"]["validation"] = [{"name": f"check-{i}", "passed": i < passed} for i in range(CHECKS)]
    body["environment"] = ENVIRONMENT[risk]
    body["risk"].update(migration=risk == "high", rollback_available=True, production_data=False)
    body["risk"]["blast_radius_pct"] = 5
    body["request_id"] = f"calib-{uuid.uuid4()}"
    body.pop("callback_url", None)  # no webhook to call back
    return body


@dataclass(frozen=True)
class Driven:
    checkpoint: dict[str, Any]
    outcome: str | None  # reported, or None (not approved at once)


def drive_one(client: SignoffClient, target: Outcome, seed: int) -> Driven:
    rng = random.Random(f"{seed}-{target.key}")
    body = request_for(target.score, target.group)
    _, cp = client.create(body, str(uuid.uuid4()))
    if cp.get("status") != "APPROVED":
        return Driven(cp, None)
    actual = float(cp["assessment"]["score"]["score"])
    risk = str(cp["assessment"]["risk"]["risk_class"])
    ok = rng.random() < TRUTHS[risk].success(actual)
    outcome = "success" if ok else rng.choice(["failure", "rolled_back"])
    client.outcome(str(cp["id"]), outcome, details="calibration demo")
    return Driven(cp, outcome)


def drive(url: str, n: int, seed: int, workers: int = 4) -> list[Driven]:
    """n checkpoints with outcomes, through the API at `url`."""
    client = SignoffClient(url, sign=False)
    targets = synthetic_outcomes(n, seed)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda t: drive_one(client, t, seed), targets))


def wait_for_archive(archive: Path, expected: int, timeout: float = 300) -> list[Outcome]:
    """The outcomes in the archive mirror, once all `expected` of them have arrived."""
    from signoff.tools.trail import from_archive

    deadline = time.monotonic() + timeout
    while True:
        outcomes = [o for p in from_archive(archive) if (o := p.as_outcome()) is not None]
        if len(outcomes) >= expected or time.monotonic() > deadline:
            return outcomes
        time.sleep(2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the local stack (http://127.0.0.1:8080)")
    parser.add_argument("-n", type=int, default=3000, help="checkpoints to drive (3000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--archive", type=Path, default=Path("local-data/archive"), help="the archive mirror")
    parser.add_argument("--policy", type=Path, default=ROOT / "signoff.yaml", help="the policy to propose changes to")
    args = parser.parse_args(argv)

    started = time.monotonic()
    driven = drive(args.url, args.n, args.seed)
    reported = sum(1 for d in driven if d.outcome)
    print(f"drove {len(driven)} checkpoints, {reported} outcomes reported, in {time.monotonic() - started:.0f} s")
    outcomes = wait_for_archive(args.archive, reported)
    print(f"{len(outcomes)} outcomes in the archive at {args.archive}\n")
    from signoff.domain.policy import load_policy

    report = analyse(outcomes, source=str(args.archive), policy=load_policy(args.policy))
    print(render_calibration(report))
    thresholds = {
        g.group: g.recommendation.auto if g.recommendation.auto is not None else (g.current or {}).get("auto")
        for g in report.groups
    }
    truth = judge(thresholds, report.tolerance)
    print(
        f"\nagainst the truth: {truth.true_failure_rate:.2%} of auto-executed actions would fail "
        f"(worst class {truth.worst_class_failure_rate:.2%}); {truth.share_of_allowed:.0%} of what the truth allows"
    )
    print(policy_diff(args.policy, report) or "proposed policy: no change")
    return 0


if __name__ == "__main__":
    sys.exit(main())

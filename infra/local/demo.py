"""`make demo`: send the three samples in events/api to a running local stack (or any Signoff URL
that accepts unsigned calls) and print each decision with its explanation."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = [("auto", "checkpoint-auto.json"), ("soft", "checkpoint-soft.json"), ("hard", "checkpoint-hard.json")]


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/v1/checkpoints",
        data=body,
        method="POST",
        headers={"content-type": "application/json", "idempotency-key": f"demo-{uuid.uuid4()}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def describe(expected: str, status: int, cp: dict[str, Any]) -> str:
    assessment = cp.get("assessment") or {}
    gate = assessment.get("gate", {})
    request = cp.get("request") or {}
    lines = [
        f"{request.get('action')} {request.get('target')} -> HTTP {status}, {cp.get('status')},"
        f" gate {gate.get('kind')} (expected {expected})",
        f"  checkpoint {cp.get('id')}  policy {assessment.get('policy_version')}",
    ]
    lines += [f"  - {line}" for line in assessment.get("explanation", [])]
    if cp.get("deadline"):
        lines.append(f"  deadline {cp['deadline']} ({gate.get('timeout_rule')} when it passes)")
    if cp.get("errors"):
        lines += [f"  ! {e['field']}: {e['message']}" for e in cp["errors"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__)
    default = os.environ.get("SIGNOFF_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '8080')}"
    parser.add_argument("--url", default=default, help="default: $SIGNOFF_URL, else 127.0.0.1:$PORT (8080)")
    args = parser.parse_args(argv)
    failures = 0
    for expected, name in SAMPLES:
        try:
            status, cp = post(args.url, (ROOT / "events" / "api" / name).read_bytes())
        except urllib.error.URLError as exc:
            port = args.url.rsplit(":", 1)[-1].rstrip("/")
            start = "make local" if port == "8080" else f"PORT={port} make local"
            print(f"cannot reach {args.url} ({exc.reason}): start the local stack with `{start}`", file=sys.stderr)
            return 3
        print(describe(expected, status, cp), end="\n\n")
        failures += (cp.get("assessment") or {}).get("gate", {}).get("kind") != expected
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

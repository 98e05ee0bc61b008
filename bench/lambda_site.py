"""Cold imports as Lambda sees them: the function's folder, the layer's packages and the runtime's
boto3 on the path, and nothing else.

The development venv holds some 300 distributions (moto, CDK, LangChain, pytest...). Importing a
handler there measures more than Lambda runs: the X-Ray SDK patches whatever it finds importable,
and pydantic and Powertools scan every installed distribution's metadata for plugins. So the
benchmarks also import each handler in an interpreter started with `-S -E` (no site-packages, no
PYTHON* variables) whose path is the function, the layer's requirements installed for this
interpreter (`layers/core/requirements.txt`, cached under .cache/lambda-site/ by their hash), the
`signoff` package and the venv's boto3 version (Lambda's runtime brings its own boto3).

And the floor: the same interpreter importing only the dependencies a Slack handler cannot do
without (Powertools' Logger and a Tracer patching botocore and http.client, pydantic's BaseModel,
boto3, bolt's App and its Lambda adapter). What a handler costs above that is Signoff's own."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "layers" / "core" / "requirements.txt"
PACKAGE_ROOT = ROOT / "layers" / "core"
CACHE = ROOT / ".cache" / "lambda-site"

_TIMED = (
    "import time; t, c = time.perf_counter(), time.process_time()\n{body}\n"
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)"
)
FLOOR = """\
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging import correlation_paths
Logger(service="floor"); Metrics(namespace="floor"); Tracer(service="floor", patch_modules=("botocore", "httplib"))
from pydantic import BaseModel
import boto3
from slack_bolt import App
from slack_bolt.adapter.aws_lambda import SlackRequestHandler"""


def site() -> Path | None:
    """The layer's requirements for this interpreter, installed once per requirements hash; None
    when pip cannot reach a package index (the benchmarks then say so and skip these figures)."""
    boto3 = importlib.metadata.version("boto3")
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + f"|boto3=={boto3}|{sys.version}".encode()).hexdigest()[:16]
    target = CACHE / key
    if not (target / ".complete").exists():
        result = subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--target", str(target), "-r", str(REQUIREMENTS), f"boto3=={boto3}",
            ],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            print(f"lambda-like site: pip failed, skipped:\n{result.stderr[-2000:]}", file=sys.stderr)
            return None
        (target / ".complete").touch()
    return target


def _run(function_dir: Path, site_dir: Path, body: str, env: dict[str, str]) -> tuple[float, float]:
    path = [str(function_dir), str(site_dir), str(PACKAGE_ROOT)]
    code = f"import sys; sys.path[:0] = {path!r}\n" + _TIMED.format(body=body)
    result = subprocess.run(
        [sys.executable, "-S", "-E", "-c", code],
        cwd=function_dir,
        env={**os.environ, "LAMBDA_TASK_ROOT": str(function_dir), **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing in {function_dir.name} failed:\n{result.stderr[-2000:]}")
    wall, cpu = result.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def cold_import(function_dir: Path, repeats: int, env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Median wall and CPU ms of importing `function_dir`/handler.py, and of the floor, each in
    `repeats` fresh Lambda-like interpreters (alternated, so both see the same machine load)."""
    site_dir = site()
    if site_dir is None:
        return None
    handler, floor = [], []
    for _ in range(repeats):
        handler.append(_run(function_dir, site_dir, "import handler", env or {}))
        floor.append(_run(function_dir, site_dir, FLOOR, env or {}))
    handler_ms = statistics.median(w for w, _ in handler)
    floor_ms = statistics.median(w for w, _ in floor)
    return {
        "median_ms": round(handler_ms, 1),
        "cpu_median_ms": round(statistics.median(c for _, c in handler), 1),
        "dependency_floor_ms": round(floor_ms, 1),
        "signoff_above_floor_ms": round(handler_ms - floor_ms, 1),
    }

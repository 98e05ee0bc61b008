"""Signoff benchmarks: figures only, no network, no pass/fail.

    python -m bench.run            # from the repository root; writes bench/results.json
    python -m bench.run --quick    # shorter runs (a smoke test)
    python -m bench.run --profile  # also print where the engine and the Slack ack spend their time (cProfile)

Measured:
  engine            signoff.domain.engine.assess decisions per second, one thread, sample + randomised requests
  intake_inmemory   POST /v1/checkpoints (auto gate) through the intake handler in-process, in-memory store
  intake_moto       the same through the real wiring (DynamoDB repository and idempotency) on moto
  slack_ack         the Slack callback's ack of a signed button click, in-process and warm (bench/slack_ack.py):
                    an approval that decides, an outsider's refused click, a Deny that opens a modal
  cold_import_ms    importing each functions/*/handler.py in a fresh interpreter
  helpdesk          the helpdesk on Slack (bench/helpdesk.py): the Events API ack (p99 < 300 ms warm), question ->
                    answer posted on the local embedded path (p95 < 1.5 s), the Slack handler's cold import with
                    the helpdesk on and LAMBDA_TASK_ROOT set (< 400 ms), and the core layer's size
  local_growth      the local stack (`python -m local`) filled to 10,000 checkpoints: p50/p99 of auto and
                    gated POST /v1/checkpoints per 1,000 stored, then sustained gated checkpoints per second
                    (created, carded, approved by a signed click, finalized) (bench/growth.py)

Powertools and everything that imports it are imported inside the functions below, after
`configure_env()` has switched metrics, tracing and info logs off.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import datetime as dt
import gc
import importlib.metadata
import importlib.util
import json
import os
import platform
import pstats
import random
import statistics
import subprocess
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from bench import growth, helpdesk
from bench.context import FakeLambdaContext

if TYPE_CHECKING:
    from signoff.domain.models import CheckpointRequest
    from signoff.domain.policy import LoadedPolicy

ROOT = Path(__file__).resolve().parents[1]
POLICY_PATH = ROOT / "signoff.yaml"
ROUTING_PATH = ROOT / "routing.yaml"
EVENTS = ROOT / "events" / "api"
FUNCTIONS = ROOT / "functions"
RESULTS_PATH = ROOT / "bench" / "results.json"

TARGET_DECISIONS_PER_S = 20_000
TARGET_P99_MS = 5.0
TARGET_IMPORT_MS = 400.0
TARGET_SLACK_ACK_P99_MS = 300.0  # Slack gives up on an unanswered interaction after 3 s

BENCH_ENV = {
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "signoff",
    # Fake credentials: nothing here may reach a real AWS account.
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
CALLER_ARN = "arn:aws:iam::123456789012:user/bench"
TABLE_NAME = "signoff-bench"
IDEMPOTENCY_TABLE_NAME = "signoff-bench-idempotency"
APPROVAL_STATE_MACHINE_ARN = "arn:aws:states:us-east-1:123456789012:stateMachine:signoff-bench-approval"


@dataclass(frozen=True)
class Config:
    engine_seconds: float = 2.0
    engine_variants: int = 300
    inmemory_warmup: int = 200
    inmemory_requests: int = 2000
    moto_warmup: int = 30
    moto_requests: int = 300
    slack_warmup: int = 50
    slack_clicks: int = 500
    import_repeats: int = 5
    growth_total: int = 10_000
    growth_block: int = 1_000
    growth_sustained: int = 300
    helpdesk_warmup: int = 20
    helpdesk_requests: int = 300


QUICK = Config(
    engine_seconds=0.2,
    engine_variants=50,
    inmemory_warmup=10,
    inmemory_requests=50,
    moto_warmup=2,
    moto_requests=10,
    slack_warmup=5,
    slack_clicks=30,
    import_repeats=1,
    growth_total=300,
    growth_block=100,
    growth_sustained=20,
    helpdesk_warmup=3,
    helpdesk_requests=30,
)


def configure_env() -> None:
    os.environ.update(BENCH_ENV)
    from local.lambdas import quiet_disabled_metrics

    quiet_disabled_metrics()  # no EMF lines between the figures
    # The handlers emit no metrics yet; Powertools warns about that on every flush.
    warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


# -- engine ------------------------------------------------------------------------------------


def _sample_bodies() -> list[dict[str, Any]]:
    return [json.loads((EVENTS / f"checkpoint-{name}.json").read_text()) for name in ("auto", "soft", "hard")]


def _variant(rng: random.Random, base: dict[str, Any], environments: list[str]) -> dict[str, Any]:
    """A sample request with randomised signals and risk facts (valid by construction)."""
    body = copy.deepcopy(base)
    body["environment"] = rng.choice(environments)
    body["signals"] = {
        # Skewed towards confident requests so that every gate kind shows up in the mix.
        "model_confidence": round(rng.betavariate(6, 1), 3),
        "validation": [{"name": f"check-{i}", "passed": rng.random() < 0.9} for i in range(rng.randint(0, 6))],
        "observability_alignment": round(rng.betavariate(6, 1), 3),
        "historical_success": round(rng.betavariate(6, 1), 3),
    }
    body["risk"] = {
        "blast_radius_pct": round(rng.uniform(0, 30) if rng.random() < 0.8 else rng.uniform(0, 100), 1),
        "production_data": rng.random() < 0.2,
        "rollback_available": rng.random() < 0.9,
        "migration": rng.random() < 0.1,
        "data_sensitivity": rng.choices(["public", "internal", "confidential", "restricted"], weights=[3, 4, 2, 1])[0],
    }
    return body


def engine_requests(policy: LoadedPolicy, variants: int) -> list[CheckpointRequest]:
    """The three sample requests and `variants` randomised ones (seeded: every run sees the same)."""
    from signoff.domain.models import CheckpointRequest

    samples = _sample_bodies()
    rng = random.Random(42)
    environments = list(policy.policy.environments)
    bodies = samples + [_variant(rng, rng.choice(samples), environments) for _ in range(variants)]
    return [CheckpointRequest.model_validate(body) for body in bodies]


def bench_engine(seconds: float, variants: int, *, profile: bool = False) -> dict[str, Any]:
    from signoff.domain.engine import assess
    from signoff.domain.policy import load_policy

    policy = load_policy(POLICY_PATH)
    requests = engine_requests(policy, variants)
    gates = Counter(assess(request, policy).gate.kind.value for request in requests)  # also warms up

    decisions = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for request in requests:
            assess(request, policy)
        decisions += len(requests)
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - start

    if profile:
        _profile(lambda: [assess(request, policy) for request in requests * 20])
    per_s = decisions / elapsed
    return {
        "decisions": decisions,
        "seconds": round(elapsed, 3),
        "decisions_per_s": round(per_s),
        "us_per_decision": round(1e6 / per_s, 2),
        "requests": len(requests),
        "gate_mix": dict(sorted(gates.items())),
        "target_decisions_per_s": TARGET_DECISIONS_PER_S,
    }


def _profile(work: Callable[[], object]) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(work)
    print("\nengine profile (top 20 by total time):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats(pstats.SortKey.TIME).print_stats(20)


# -- intake ------------------------------------------------------------------------------------


def load_handler(name: str) -> ModuleType:
    """functions/<name>/handler.py as a module, loaded by path like the Lambda runtime would."""
    path = FUNCTIONS / name / "handler.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}_handler", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkpoint_event(body: str, idempotency_key: str) -> dict[str, Any]:
    """An API Gateway REST proxy event for POST /v1/checkpoints signed by an IAM user."""
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key}
    return {
        "resource": "/v1/checkpoints",
        "path": "/v1/checkpoints",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "resourcePath": "/v1/checkpoints",
            "httpMethod": "POST",
            "path": "/prod/v1/checkpoints",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "identity": {"userArn": CALLER_ARN, "caller": "AIDABENCH", "sourceIp": "127.0.0.1"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def _latencies_ms(handler: Callable[[dict[str, Any], Any], dict[str, Any]], warmup: int, count: int) -> list[float]:
    body = (EVENTS / "checkpoint-auto.json").read_text()
    run_id = uuid.uuid4().hex[:8]
    samples: list[float] = []
    for i in range(warmup + count):
        if i == warmup:
            gc.collect()  # start the measured run without the warm-up's garbage
        event = checkpoint_event(body, f"bench-{run_id}-{i}")
        context = FakeLambdaContext("signoff-intake-bench")
        start = time.perf_counter_ns()
        response = handler(event, context)
        elapsed = time.perf_counter_ns() - start
        if response["statusCode"] != 200:
            raise RuntimeError(f"request {i} answered {response['statusCode']}: {response['body']}")
        if i >= warmup:
            samples.append(elapsed / 1e6)
    return samples


def _summary(samples: list[float], warmup: int) -> dict[str, Any]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    tenth = max(1, len(samples) // 10)
    return {
        "requests": len(samples),
        "warmup": warmup,
        "p50_ms": round(cuts[49], 3),
        "p95_ms": round(cuts[94], 3),
        "p99_ms": round(cuts[98], 3),
        "max_ms": round(max(samples), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "requests_per_s": round(1000 / statistics.fmean(samples)),
        # A store that slows down as it fills shows here: compare the first and the last tenth.
        "p50_first_tenth_ms": round(statistics.median(samples[:tenth]), 3),
        "p50_last_tenth_ms": round(statistics.median(samples[-tenth:]), 3),
    }


def bench_intake_inmemory(warmup: int, count: int) -> dict[str, Any]:
    from signoff import composition
    from signoff.adapters.clock import SystemClock
    from signoff.domain.policy import load_policy
    from signoff.testing.memory import InMemoryCheckpointRepository
    from signoff.usecases.intake import CheckpointService

    handler = load_handler("intake").handler
    policy = load_policy(POLICY_PATH)
    service = CheckpointService(InMemoryCheckpointRepository(), policy, SystemClock())
    composition.reset()
    composition.override(api=service, policy=policy)
    try:
        summary = _summary(_latencies_ms(handler, warmup, count), warmup)
    finally:
        composition.reset()
    summary["target_p99_ms"] = TARGET_P99_MS
    return summary


@contextmanager
def _env(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def create_tables(client: Any) -> None:
    """The main single table (with the by-status GSI and a stream) and the idempotency table."""
    client.create_table(
        TableName=TABLE_NAME,
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "status_pk", "status_sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-status",
                "KeySchema": [
                    {"AttributeName": "status_pk", "KeyType": "HASH"},
                    {"AttributeName": "status_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.create_table(
        TableName=IDEMPOTENCY_TABLE_NAME,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )


def bench_intake_moto(warmup: int, count: int) -> dict[str, Any]:
    import boto3
    from moto import mock_aws

    from signoff import composition

    handler = load_handler("intake").handler
    env = {
        "TABLE_NAME": TABLE_NAME,
        "IDEMPOTENCY_TABLE_NAME": IDEMPOTENCY_TABLE_NAME,
        "SIGNOFF_POLICY_PATH": str(POLICY_PATH),
        "SIGNOFF_ROUTING_PATH": str(ROUTING_PATH),
        # Read by the wiring; an auto-gated request starts no approval workflow, so none exists on moto.
        "APPROVAL_STATE_MACHINE_ARN": APPROVAL_STATE_MACHINE_ARN,
    }
    with mock_aws(), _env(env):
        client = boto3.client("dynamodb")
        create_tables(client)
        composition.reset()
        try:
            summary = _summary(_latencies_ms(handler, warmup, count), warmup)
        finally:
            composition.reset()
        stored = client.scan(TableName=TABLE_NAME, Select="COUNT")["Count"]
    # Each auto-gated request writes the checkpoint and two audit events (requested, decided).
    summary["items_written"] = stored
    summary["note"] = (
        "moto deep-copies every table on each transact_write_items, so latency grows with the items stored;"
        " these figures measure moto, not DynamoDB"
    )
    return summary


# -- slack ack ---------------------------------------------------------------------------------


def bench_slack_ack(warmup: int, count: int, *, profile: bool = False) -> dict[str, Any]:
    from bench import slack_ack

    samples = slack_ack.click_latencies(warmup, count)
    if profile:
        slack_ack.profile_clicks(max(10, count // 5))
    results: dict[str, Any] = {
        kind: {"what": slack_ack.DESCRIPTIONS[kind], **_summary(samples[kind], warmup)} for kind in slack_ack.KINDS
    }
    results["target_p99_ms"] = TARGET_SLACK_ACK_P99_MS
    results["note"] = (
        "in-process and warm: the function's handler (Powertools context, bolt signature check, directory,"
        " DecisionService.act on in-memory fakes, views.open on FakeSlack over loopback, ack); one click of each"
        " kind per iteration, each on a fresh checkpoint. Lazy listeners are recorded, not run; on Lambda bolt"
        " starts them with a synchronous lambda:Invoke before acking, which is not included"
    )
    return results


# -- cold imports ------------------------------------------------------------------------------

_IMPORT_SNIPPET = "import time; t = time.perf_counter(); import handler; print((time.perf_counter() - t) * 1000)"


def _import_once(function_dir: Path, extra_env: dict[str, str] | None = None) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_SNIPPET],
        cwd=function_dir,
        env={**os.environ, **(extra_env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {function_dir.name}/handler.py failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def top_imports(function_dir: Path, limit: int = 10) -> list[dict[str, Any]]:
    """`python -X importtime` of the handler: the modules with the most self time."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import handler"],
        cwd=function_dir,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=False,
    )
    rows: list[dict[str, Any]] = []
    for line in result.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        rows.append(
            {"module": parts[2].strip(), "self_ms": int(parts[0]) / 1000, "cumulative_ms": int(parts[1]) / 1000}
        )
    return sorted(rows, key=lambda row: row["self_ms"], reverse=True)[:limit]


def bench_cold_imports(repeats: int) -> dict[str, Any]:
    """Import each handler in fresh interpreters: with the benchmark's environment, and again with
    LAMBDA_TASK_ROOT set, as on Lambda, where the X-Ray SDK skips building its sampling client at import
    (it touches /tmp/.aws-xray/initialized)."""
    results: dict[str, Any] = {}
    for handler in sorted(FUNCTIONS.glob("*/handler.py")):
        function_dir = handler.parent
        samples = [_import_once(function_dir) for _ in range(repeats)]
        in_lambda = [_import_once(function_dir, {"LAMBDA_TASK_ROOT": str(function_dir)}) for _ in range(repeats)]
        entry: dict[str, Any] = {
            "median_ms": round(statistics.median(samples), 1),
            "max_ms": round(max(samples), 1),
            "samples_ms": [round(s, 1) for s in samples],
            "lambda_env_median_ms": round(statistics.median(in_lambda), 1),
            "lambda_env_max_ms": round(max(in_lambda), 1),
            "target_ms": TARGET_IMPORT_MS,
        }
        if entry["median_ms"] >= TARGET_IMPORT_MS:
            entry["top_imports"] = top_imports(function_dir)
        results[function_dir.name] = entry
    return results


# -- report ------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for package in ("aws-lambda-powertools", "pydantic", "pydantic-core", "boto3", "moto"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "packages": versions,
    }


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def format_table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str, str]] = []
    engine = results["engine"]
    rows.append(
        (
            "engine assess (1 thread)",
            f"{engine['decisions_per_s']:,} decisions/s ({engine['us_per_decision']} us each)",
            f">= {TARGET_DECISIONS_PER_S:,}/s",
            _verdict(engine["decisions_per_s"] >= TARGET_DECISIONS_PER_S),
        )
    )
    for key, label in (("intake_inmemory", "intake POST, in-memory"), ("intake_moto", "intake POST, moto")):
        lat = results[key]
        target = lat.get("target_p99_ms")
        rows.append(
            (
                f"{label} (n={lat['requests']})",
                f"p50 {lat['p50_ms']:.2f} / p95 {lat['p95_ms']:.2f} / p99 {lat['p99_ms']:.2f} ms",
                f"p99 < {target:g} ms" if target else "(figures only)",
                _verdict(lat["p99_ms"] < target) if target else "",
            )
        )
    slack = results["slack_ack"]
    for kind in ("approve", "refused", "modal"):
        lat = slack[kind]
        rows.append(
            (
                f"slack ack, {kind} (n={lat['requests']})",
                f"p50 {lat['p50_ms']:.2f} / p95 {lat['p95_ms']:.2f} / p99 {lat['p99_ms']:.2f}"
                f" / max {lat['max_ms']:.2f} ms",
                f"p99 < {slack['target_p99_ms']:g} ms",
                _verdict(lat["p99_ms"] < slack["target_p99_ms"]),
            )
        )
    for name, imp in results["cold_import_ms"].items():
        rows.append(
            (
                f"cold import {name}/handler.py",
                f"median {imp['median_ms']:.0f} / max {imp['max_ms']:.0f} ms"
                f" (LAMBDA_TASK_ROOT set: {imp['lambda_env_median_ms']:.0f} / {imp['lambda_env_max_ms']:.0f})",
                f"< {TARGET_IMPORT_MS:g} ms",
                _verdict(imp["median_ms"] < TARGET_IMPORT_MS),
            )
        )
    for label, result, target, passed in helpdesk.format_rows(results["helpdesk"]):
        rows.append((label, result, target, _verdict(bool(passed))))
    for label, result, target, ok in growth.format_rows(results["local_growth"]):
        rows.append((label, result, target, _verdict(ok) if target != "(figures only)" else ""))
    header = ("benchmark", "result", "target", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    machine = results["machine"]
    lines.append(f"\nPython {machine['python']} on {machine['platform']}, {machine['cpu_count']} CPUs")
    return "\n".join(lines)


def run(config: Config, *, profile: bool = False) -> dict[str, Any]:
    configure_env()
    return {
        "engine": bench_engine(config.engine_seconds, config.engine_variants, profile=profile),
        "intake_inmemory": bench_intake_inmemory(config.inmemory_warmup, config.inmemory_requests),
        "intake_moto": bench_intake_moto(config.moto_warmup, config.moto_requests),
        "slack_ack": bench_slack_ack(config.slack_warmup, config.slack_clicks, profile=profile),
        "cold_import_ms": bench_cold_imports(config.import_repeats),
        "helpdesk": helpdesk.bench_helpdesk(config.helpdesk_warmup, config.helpdesk_requests, config.import_repeats),
        "local_growth": growth.bench_growth(
            config.growth_total, config.growth_block, 0.05, config.growth_sustained, workers=8
        ),
        "machine": machine_info(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Signoff benchmarks (figures only).")
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of the engine loop and of Slack clicks"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="where to write the JSON results")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    results = run(QUICK if args.quick else Config(), profile=args.profile)
    print(format_table(results))
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

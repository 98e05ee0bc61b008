"""`python -m local` (with infra/ on PYTHONPATH): start the local stack and serve the API.
`make local` synthesizes first; pass --synth to do it here."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from local.app import SIGNING_SECRET_VAR, LocalSignoff
from local.server import LOCAL_CALLER, LocalApi
from local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_SECONDS = 0.5  # SIGTERM/Ctrl-C to exit stays under a second


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--outdir", type=Path, default=ROOT / "cdk.out", help="the synthesized cloud assembly")
    parser.add_argument("--synth", action="store_true", help="synthesize the CDK app first")
    parser.add_argument(
        "--environments",
        type=int,
        default=1,
        help="execution environments per function: invocations of one function that run at once",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)

    if args.synth:
        subprocess.run([sys.executable, str(ROOT / "infra" / "app.py")], check=True, cwd=ROOT)
    local = LocalSignoff(args.outdir, args.host, args.port, environments=max(1, args.environments)).start()
    assert local.api is not None and local.stack is not None
    print(banner(local.api, local.stack, local.signing_secret), flush=True)

    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    stopped.wait()
    # Stop what answers requests, but never wait long: moto's execution workers are not daemon
    # threads and sleep out their task timeouts (minutes under the shipped policy), and nothing
    # here needs them, since the state lives in memory. Whatever is not done in time is dropped.
    stopper = threading.Thread(target=local.stop, name="stop", daemon=True)
    stopper.start()
    stopper.join(timeout=STOP_GRACE_SECONDS)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def banner(api: LocalApi, stack: LocalStack, signing_secret: str) -> str:
    url = api.url
    port = url.rsplit(":", 1)[-1]
    make = "make " if port == "8080" else f"PORT={port} make "
    archive = stack.archive_dir or "(none)"
    return "\n".join(
        [
            f"Signoff local stack listening on {url}",
            f"  policy version   {stack.outputs.get('PolicyVersion', '?')}",
            f"  API              {url}/v1/checkpoints   (caller: {LOCAL_CALLER}; SigV4 is not checked locally)",
            f"  OpenAPI          {url}/v1/openapi.json",
            f"  Slack sandbox    {url}/sandbox   (cards posted to the fake Slack; click as any person)",
            f"  Slack events     {url}/v1/slack/events",
            f"  signing secret   {signing_secret}   (set {SIGNING_SECRET_VAR} to change it)",
            *(
                [f"  Teams messages   {url}/v1/teams/messages   (fake Bot Connector; /sandbox/api/teams/click)"]
                if any(r.template == "/v1/teams/messages" for r in stack.routes)
                else []
            ),
            f"  tables           {stack.outputs.get('TableName')}, {stack.outputs.get('IdempotencyTableName')}",
            "  state            in memory: the tables and workflows start empty each run, so the archive",
            f"                   mirror {archive} was cleared too",
            "",
            "Try it:",
            f"  curl -s -X POST {url}/v1/checkpoints -H 'content-type: application/json' \\",
            "       -H 'Idempotency-Key: demo-1' -d @events/api/checkpoint-auto.json",
            f"  {make}demo        # the three samples: auto, soft and hard gates",
            f"  .venv/bin/signoff audit verify --url {url}",
            "",
            "Stop with Ctrl-C.",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())

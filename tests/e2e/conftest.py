from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class LocalSignoff:
    url: str

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, hdrs = exc.code, exc.read(), dict(exc.headers)
        return Reply(status, {k.lower(): v for k, v in hdrs.items()}, json.loads(raw) if raw else None)

    def count_all(self) -> int:
        """Checkpoints stored in any status."""
        total = 0
        for status in ("pending", "approved", "denied", "expired", "cancelled"):
            token = None
            while True:
                query = f"?status={status}&limit=100" + (f"&next_token={token}" if token else "")
                page = self.call("GET", "/v1/checkpoints" + query).body
                total += len(page["items"])
                token = page.get("next_token")
                if not token:
                    break
        return total


@pytest.fixture(scope="session")
def signoff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    """The README's local stack, started from a fresh synthesis on a free port."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "infra"), "CDK_OUTDIR": str(outdir)}
    subprocess.run([sys.executable, str(ROOT / "infra" / "app.py")], cwd=ROOT, env=env, check=True, capture_output=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--outdir", str(outdir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = None
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline and url is None:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        match = re.search(r"listening on (http://\S+)", line)
        url = match.group(1) if match else None
    if url is None:
        proc.kill()
        pytest.fail("local stack did not start:\n" + "".join(seen))
    try:
        yield LocalSignoff(url)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

"""The end-to-end suite runs the README's local stack in a subprocess, synthesized from the CDK
app with the fast test policy (waits of seconds) and the example workflow, and talks to it over
HTTP only: the API, Slack's callback route (signed payloads), the sandbox's view of the fake
Slack, and the local execution list."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST_POLICY = ROOT / "tests" / "e2e" / "policy-fast.yaml"
# This checkout's infra and core package, ahead of whatever the virtualenv installed (an editable
# install of another checkout would otherwise run in the stack's process).
PYTHONPATH = os.pathsep.join([str(ROOT / "infra"), str(ROOT / "layers" / "core")])
SIGNING_SECRET = "signoff-local-signing-secret"  # the local stack's documented default
# What the Slack app answers when a concurrent write won the checkpoint's optimistic lock.
BUSY = "nothing was recorded: please try again"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@dataclass
class LocalSignoff:
    url: str
    archive: Path | None = None  # where the stack mirrors its S3 audit archive
    log: Path | None = None  # everything the stack wrote (handler logs included)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("content-type", "application/json")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=CEILING) as resp:
                status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, raw, hdrs = exc.code, exc.read(), dict(exc.headers)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode()
        return Reply(status, {k.lower(): v for k, v in hdrs.items()}, parsed)

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

    # -- the human side ----------------------------------------------------------------------------

    def slack(self) -> dict[str, Any]:
        body: dict[str, Any] = self.call("GET", "/sandbox/api/state").body
        return body

    def cards(self, checkpoint_id: str) -> list[dict[str, Any]]:
        """Every message (with its channel) whose buttons or text name this checkpoint."""
        found = []
        for channel, messages in self.slack()["channels"].items():
            for message in messages:
                if checkpoint_id in json.dumps(message["blocks"]):
                    found.append({**message, "channel": channel})
        return found

    def act(self, person: str, checkpoint_id: str, action: str, *, channel: str | None = None) -> dict[str, Any]:
        """Click a card's button as a person (on their DM card when there is one)."""
        cards = [c for c in self.cards(checkpoint_id) if channel is None or c["channel"] == channel]
        assert cards, f"no card for {checkpoint_id}"
        slack_user = next(p["slack_user"] for p in self.slack()["people"] if p["id"] == person)
        mine = [c for c in cards if c["channel"] == "D" + slack_user.removeprefix("U")] or cards
        card = mine[0]
        body = {"person": person, "channel": card["channel"], "ts": card["ts"], "action_id": f"signoff:{action}"}
        return self._until_recorded("/sandbox/api/click", {**body, "value": checkpoint_id})

    def _until_recorded(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a click or a submission; when Signoff answers that the checkpoint was too busy to
        record it (a concurrent write of the workflow won the optimistic lock), send it again, as
        the person would. Decided by the answer, never by the time it took."""
        deadline = time.monotonic() + CEILING
        while True:
            reply = self.call("POST", path, body)
            assert reply.status == 200, reply.body
            result: dict[str, Any] = reply.body
            if BUSY not in json.dumps(result) or time.monotonic() > deadline:
                return result

    def submit(self, person: str, view: dict[str, Any], text: str, **fields: str) -> dict[str, Any]:
        """Fill every input of a modal (`text`, or a field's own value) and submit it as a person."""
        inputs = [b["block_id"] for b in view["blocks"] if b.get("type") == "input"]
        values = {block: fields.get(block, text) for block in inputs}
        return self._until_recorded("/sandbox/api/submit", {"person": person, "view_id": view["id"], "values": values})

    def approve(self, person: str, checkpoint_id: str, comment: str = "looks good", **fields: str) -> dict[str, Any]:
        """Approve, writing a comment when the gate asks for one in a modal."""
        clicked = self.act(person, checkpoint_id, "approve")
        if clicked["views"]:
            return self.submit(person, clicked["views"][0], comment, **fields)
        return clicked

    def checkpoint(self, checkpoint_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("GET", f"/v1/checkpoints/{checkpoint_id}").body
        return body

    def events(self, checkpoint_id: str) -> list[dict[str, Any]]:
        body: dict[str, Any] = self.call("GET", f"/v1/checkpoints/{checkpoint_id}/events").body
        return list(body["items"])

    def executions(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/local/executions").body["executions"])

    def execution(self, name: str) -> dict[str, Any]:
        return next(e for e in self.executions() if e["name"] == name)


# A ceiling, not a deadline: polling stops as soon as the state is there, so it is set for the
# busiest machine (every core burnt by something else), never for the expected time.
CEILING = 180.0


def eventually(check: Callable[[], Any], timeout: float = CEILING, interval: float = 0.2) -> Any:
    """Poll until `check` returns something truthy (the workflow runs in real time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


# -- gates a test leaves to expire ------------------------------------------------------------------
# The test policies give every gate a test clicks minutes (a late click on a busy machine still
# lands), and keep seconds for the gates a test only waits out: these turn a sample into one of those.


def expiring_soft(body: dict[str, Any]) -> dict[str, Any]:
    """The soft sample in production (medium risk): the short fail-open veto window (veto-5s)."""
    body["environment"] = "production"
    return body


def expiring_review(body: dict[str, Any]) -> dict[str, Any]:
    """The soft sample as a fully confident production migration (high risk, high confidence): the
    short one-approver hard gate with escalation to team-leads, fail-closed (review-6s)."""
    body["environment"] = "production"
    body["risk"]["migration"] = True
    body["signals"].update(model_confidence=1.0, observability_alignment=1.0, historical_success=1.0)
    return body


def synthesized(tmp_path_factory: pytest.TempPathFactory, variant: dict[str, str]) -> Path:
    """The cloud assembly of one template variant (policy, routing, Teams...), synthesized once per
    test run: a warm synthesis takes tens of seconds, and xdist workers share this folder (the
    first to need a variant synthesizes it under a file lock; the others wait and reuse it)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    key = hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:16]
    outdir = shared / f"cdk.out-{key}"
    with (shared / f"cdk.out-{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (outdir / "Signoff.template.json").exists():
            env = {**os.environ, "PYTHONPATH": PYTHONPATH, "CDK_OUTDIR": str(outdir), **variant}
            subprocess.run(
                [sys.executable, str(ROOT / "infra" / "app.py")], cwd=ROOT, env=env, check=True, capture_output=True
            )
    return outdir


def start_local(
    tmp_path_factory: pytest.TempPathFactory,
    runtime_env: dict[str, str] | None = None,
    local_args: tuple[str, ...] = (),
    **extra_env: str,
) -> Iterator[LocalSignoff]:
    """Start `python -m local` on a free port from the CDK app synthesized with the fast test policy
    and the example workflow (or `extra_env`'s variant); stop it afterwards. `runtime_env` reaches the
    stack only (e.g. its log level), not the synthesis; `local_args` go to `python -m local`."""
    variant = {"SIGNOFF_POLICY": str(FAST_POLICY), "SIGNOFF_EXAMPLE": "1", **extra_env}
    outdir = synthesized(tmp_path_factory, variant)
    archive = tmp_path_factory.mktemp("archive")
    env = {
        **os.environ,
        "PYTHONPATH": PYTHONPATH,
        "CDK_OUTDIR": str(outdir),
        "SIGNOFF_ARCHIVE": str(archive),
        **variant,
        **(runtime_env or {}),
    }
    log = (tmp_path_factory.mktemp("logs") / "local.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "local", "--port", "0", "--outdir", str(outdir), *local_args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    url = None
    deadline = time.monotonic() + CEILING  # a cold start on a busy machine
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
        pytest.fail("local stack did not start:\n" + "".join(seen) + Path(log.name).read_text())
    # Keep draining its output (handler logs go to stdout, like in Lambda) so it never blocks.
    # Each line is flushed, so a test can read what the stack logged so far (see LocalSignoff.log).
    threading.Thread(target=lambda: [(log.write(line), log.flush()) for line in proc.stdout or []], daemon=True).start()
    try:
        yield LocalSignoff(url, archive, Path(log.name))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def signoff(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSignoff]:
    """The README's local stack, shared by the API and gate scenarios."""
    yield from start_local(tmp_path_factory)

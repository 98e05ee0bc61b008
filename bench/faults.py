"""A fault run on the local stack: are decisions still delivered when chat misbehaves?

    python -m bench.faults --checkpoints 1000        # figures printed and written to bench/faults.json

`make local`'s stack (shipped policy) takes `checkpoints` requests, every one with a webhook to a
receiver here: auto gates, review gates (one approver) and review gates embedded in the example
Step Functions workflow. Meanwhile the fake Slack is scripted to fail: 429s with Retry-After and
5xx on chat.postMessage, and chat.update failing for the whole run (persistent). Every gated card
is approved by a signed click delivered twice (Slack retries deliveries); every `crowd_every`-th
card gets `clickers` concurrent clicks at once (its approver, the requester, people who may not
approve).

A checkpoint none of whose posts got through is decided by its workflow without a card (nobody
could be reached) and counted as such. Then it counts, from the API and the receiver: every
checkpoint decided exactly once, every
gated checkpoint's webhook delivered once (one delivery id, one callback_delivered event; an auto
gate's decision is its 200 response), every
embedding workflow answered (its execution ended), no 5xx anywhere, every click either the one
vote or an audited refusal, and `signoff audit verify` clean. It exits 1 if any count is off."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from bench.growth import ROOT, Client, local_stack, sample

RESULTS = ROOT / "bench" / "faults.json"
EXAMPLE_MACHINE = "Signoff-example-release"


class Receiver:
    """The requester's webhook: records every delivery (checkpoint id, delivery id)."""

    def __init__(self) -> None:
        self.deliveries: dict[str, list[str]] = defaultdict(list)
        lock = threading.Lock()
        received = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                with lock:
                    received[str(body.get("checkpoint_id"))].append(str(self.headers.get("X-Signoff-Delivery")))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, fmt: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


class Run:
    def __init__(self, client: Client, receiver: Receiver, people: list[str], clickers: int) -> None:
        self.client = client
        self.receiver = receiver
        self.people = people
        self.clickers = clickers
        self.statuses: Counter[int] = Counter()
        self.clicks = 0
        self.lock = threading.Lock()
        self.problems: list[str] = []
        self.uncarded: Counter[str] = Counter()  # decided without a card ever posted, by status

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        status, answer = self.client.call(method, path, body, headers)
        with self.lock:
            self.statuses[status] += 1
        return status, answer

    def create(self, kind: str) -> dict[str, Any]:
        body = sample("auto") if kind == "auto" else sample("soft", model_confidence=0.1)
        body["callback_url"] = self.receiver.url
        if kind == "embedded":
            self.call("POST", "/local/executions", {"state_machine": EXAMPLE_MACHINE, "input": {"checkpoint": body}})
            return {"kind": kind, "request_id": body["request_id"]}
        status, cp = self.call("POST", "/v1/checkpoints", body, {"Idempotency-Key": str(uuid.uuid4())})
        if status not in (200, 202):
            raise RuntimeError(f"POST /v1/checkpoints answered {status}: {cp}")
        if cp["request"]["request_id"] != body["request_id"]:  # answered with another request's checkpoint
            with self.lock:
                self.problems.append(
                    f"{body['request_id']} was answered with {cp['id']} of {cp['request']['request_id']}"
                )
        return {"kind": kind, "request_id": body["request_id"], "id": cp["id"], "checkpoint": cp}

    def click(self, person: str, card: dict[str, Any], checkpoint_id: str, act: str, deliveries: int = 1) -> None:
        request = {"person": person, "channel": card["channel"], "ts": card["ts"], "action_id": f"signoff:{act}"}
        status, answer = self.call(
            "POST", "/sandbox/api/click", {**request, "value": checkpoint_id, "deliveries": deliveries}
        )
        with self.lock:
            self.clicks += deliveries
            for inner in answer.get("statuses", []) if isinstance(answer, dict) else []:
                self.statuses[inner] += 1
        if status != 200:
            raise RuntimeError(f"sandbox click answered {status}: {answer}")

    def carded(self, checkpoint_id: str, timeout: float = 600) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The checkpoint's cards once posted, or none once it was decided without one (nobody
        could be reached: every post failed) or `timeout` passed; and the checkpoint."""
        deadline = time.monotonic() + timeout
        while True:
            _, body = self.client.call("GET", f"/sandbox/api/cards/{checkpoint_id}?wait=30")
            _, cp = self.client.call("GET", f"/v1/checkpoints/{checkpoint_id}")
            cards = body.get("cards") if isinstance(body, dict) else None
            if cards or cp.get("status") != "PENDING" or time.monotonic() > deadline:
                return cards or [], cp

    def decide(self, checkpoint_id: str, crowd: bool) -> None:
        cards, cp = self.carded(checkpoint_id)
        if not cards:
            with self.lock:
                if cp.get("status") == "PENDING":
                    _, execution = self.client.call("GET", f"/local/executions/{checkpoint_id}")
                    self.problems.append(f"{checkpoint_id}: no card and still pending; execution {execution}")
                else:
                    self.uncarded[str(cp.get("status"))] += 1
            return
        approver = cp["approvers"][0]
        if not crowd:
            self.click(approver, cards[0], checkpoint_id, "approve", deliveries=2)
            return
        others = [p for p in self.people if p not in cp["approvers"]] or [cp["request"]["requester"]["id"]]
        crowd_of = [approver] + [others[i % len(others)] for i in range(self.clickers - 1)]
        barrier = threading.Barrier(len(crowd_of))

        def one(person: str) -> None:
            barrier.wait()
            self.click(person, cards[0], checkpoint_id, "approve", deliveries=2 if person == approver else 1)

        with ThreadPoolExecutor(len(crowd_of)) as pool:
            list(pool.map(one, crowd_of))


def _by_request(client: Client) -> dict[str, str]:
    """Checkpoint id by request id, in every status (an embedded one may be decided already)."""
    found: dict[str, str] = {}
    for status in ("pending", "approved", "denied", "expired", "cancelled"):
        token = None
        while True:
            path = f"/v1/checkpoints?status={status}&limit=100" + (f"&next_token={token}" if token else "")
            _, page = client.call("GET", path)
            for cp in page["items"]:
                found[cp["request"]["request_id"]] = cp["id"]
            token = page.get("next_token")
            if not token:
                break
    return found


def run(url: str, archive: Path, checkpoints: int, clickers: int, crowd_every: int, workers: int) -> dict[str, Any]:
    # A crowd of clicks queues behind the Slack function's environments (and chat.update's retries
    # wait out their backoff in them), so a click may wait minutes for its turn.
    client = Client(url, timeout=900)
    receiver = Receiver()
    routing = yaml.safe_load((ROOT / "routing.yaml").read_text())
    people = [p["id"] for p in routing["people"] if p.get("slack")]
    work = Run(client, receiver, people, clickers)
    started = time.monotonic()
    # Chat misbehaves for the whole run: posts are rate limited and fail now and then, and
    # chat.update never works (the client's own retries are used up every time).
    faults = [
        {
            "method": "chat.postMessage",
            "error": "ratelimited",
            "status": 429,
            "times": checkpoints // 4,
            "retry_after": 0,
        },
        {"method": "chat.postMessage", "error": "internal_error", "status": 500, "times": checkpoints // 4},
        {"method": "chat.update", "error": "internal_error", "status": 500, "times": 10**9},
    ]
    for fault in faults:
        work.call("POST", "/sandbox/api/faults", fault)
    kinds = ["auto" if i % 10 < 4 else "embedded" if i % 10 == 9 else "gated" for i in range(checkpoints)]
    with ThreadPoolExecutor(workers) as pool:
        created = list(pool.map(work.create, kinds))
    # The embedded checkpoints are created by the example workflow: find them by request id.
    deadline = time.monotonic() + 600
    embedded = [c for c in created if c["kind"] == "embedded"]
    while embedded and time.monotonic() < deadline:
        known = _by_request(client)
        for c in embedded:
            c["id"] = c.get("id") or known.get(c["request_id"])
        if all(c.get("id") for c in embedded):
            break
        time.sleep(1)
    work.problems += [f"embedded request {c['request_id']}: no checkpoint found" for c in embedded if not c.get("id")]
    created = [c for c in created if c.get("id")]
    gated = [c for c in created if c["kind"] != "auto"]
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda ic: work.decide(ic[1]["id"], ic[0] % crowd_every == 0), enumerate(gated)))
    for c in gated:
        try:
            client.wait(f"/local/executions/{c['id']}", lambda b: b["status"] != "RUNNING", timeout=600)
        except TimeoutError as exc:
            work.problems.append(f"{c['id']}: its approval workflow still runs ({exc})")
    client.call("POST", "/local/drain")
    time.sleep(2)  # the last webhooks (delivered by Finalize before it returns) are in flight
    return _count(url, archive, client, work, created, receiver, time.monotonic() - started)


def _count(
    url: str, archive: Path, client: Client, work: Run, created: list[dict[str, Any]], receiver: Receiver, took: float
) -> dict[str, Any]:
    decided_once = delivered_once = one_delivery_id = votes = refused = card_failures = 0
    problems: list[str] = list(work.problems)
    for c in created:
        _, events = client.call("GET", f"/v1/checkpoints/{c['id']}/events")
        types = Counter(e["type"] for e in events["items"])
        decided = types["decided"] + types["cancelled"]
        decided_once += decided == 1
        # An auto gate's decision is the 200 response itself; the webhook carries decisions made later.
        webhook = c["kind"] != "auto"
        delivered = types["callback_delivered"] == (1 if webhook else 0)
        delivered_once += delivered
        one_delivery_id += len(set(receiver.deliveries.get(c["id"], []))) == (1 if webhook else 0)
        votes += types["voted"]
        refused += types["refused"]
        card_failures += types["card_update_failed"]
        if decided != 1 or not delivered:
            problems.append(f"{c['id']} ({c['kind']}): decided {decided}x, delivered {types['callback_delivered']}x")
    embedded = [c for c in created if c["kind"] == "embedded"]
    answered = 0
    _, listed = client.call("GET", "/local/executions")
    example_runs = [e for e in listed["executions"] if e.get("state_machine") == EXAMPLE_MACHINE]
    answered = sum(1 for e in example_runs if e["status"] != "RUNNING")
    verify = subprocess.run(
        [sys.executable, "-m", "signoff.tools.cli", "audit", "verify", "--url", url, "--archive", str(archive)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    server_errors = sum(n for status, n in work.statuses.items() if status >= 500)
    result = {
        "checkpoints": len(created),
        "distinct_checkpoints": len({c["id"] for c in created}),
        "by_kind": dict(Counter(c["kind"] for c in created)),
        "seconds": round(took, 1),
        "decided_exactly_once": decided_once,
        "webhook_as_expected": delivered_once,  # gated: exactly one delivery; auto: none (answered at once)
        "one_delivery_id_as_expected": one_delivery_id,
        "embedding_workflows": len(embedded),
        "embedding_workflows_answered": answered,
        "decided_without_a_card": dict(work.uncarded),  # every post failed: nobody could be reached
        "clicks_sent": work.clicks,
        "votes": votes,
        "refusals_in_trail": refused,
        "card_update_failures_recorded": card_failures,
        "responses_by_status": dict(sorted(work.statuses.items())),
        "server_errors": server_errors,
        "audit_verify_exit": verify.returncode,
        "audit_verify": verify.stdout.strip().splitlines()[-3:] + verify.stderr.strip().splitlines()[-3:],
        "problems": problems[:20],
    }
    result["ok"] = (
        decided_once == delivered_once == one_delivery_id == len(created)
        and answered == len(embedded)
        and server_errors == 0
        and votes + refused == work.clicks  # every click is the one vote or an audited refusal
        and verify.returncode == 0
        and not work.problems
        and result["distinct_checkpoints"] == len(created)
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=1000)
    parser.add_argument("--clickers", type=int, default=20, help="concurrent clickers on a crowded card")
    parser.add_argument("--crowd-every", type=int, default=10, help="every n-th gated card is crowded")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--environments",
        type=int,
        default=4,
        help="execution environments per function: a crowd's clicks reach the Slack function at once",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--workdir", type=Path, help="keep the stack's synthesis, archive and log here")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="signoff-faults-")))
        workdir.mkdir(parents=True, exist_ok=True)
        url = stack.enter_context(local_stack(workdir, args.environments)).url
        result = run(url, workdir / "archive", args.checkpoints, args.clickers, args.crowd_every, args.workers)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())

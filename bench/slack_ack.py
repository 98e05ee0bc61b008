"""Slack callback ack latency, in-process and warm (used by bench/run.py).

Each timed request is a signed block_actions click as Slack posts it, in an API Gateway REST proxy
event, through what functions/slack/handler.py runs: Powertools' inject_lambda_context, then
`signoff.surfaces.slack.app.handle` on `request_handler(build_app(...))` - bolt's signature check and
authorize, the directory lookup, DecisionService.act, views.open when the act needs a modal, and
the ack. The app runs on in-memory fakes (checkpoints, workflow) and a SystemClock; the Web API is
infra/local/fake_slack.py's FakeSlack on 127.0.0.1.

Not timed: creating the checkpoint, building and signing the request, and the lazy half of a click
(the ephemeral answer, the card updates). Lazy listeners are handed to a runner that only records
them; on Lambda, bolt's runner starts them with a synchronous lambda:Invoke (InvocationType=Event)
before the ack is returned, a network call these figures leave out.

Kinds, one of each per iteration, each on a fresh checkpoint (the hard sample with internal data:
the two-person gate, 2 approvals, requester may not approve, comment requirement switched off):
  approve  Bob's approval is recorded first (not timed); Carol's Approve click is timed: it records
           the second vote, decides APPROVED and answers the workflow's task token
  refused  Mallory (in the directory, not an approver) clicks Approve: refused, and the refusal is
           written to the audit trail
  modal    Bob clicks Deny: the reason form opens (views.open on the fake Web API over loopback)
"""

from __future__ import annotations

import cProfile
import gc
import json
import logging
import pstats
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slack_bolt import BoltRequest
from slack_bolt.lazy_listener import LazyListenerRunner

from bench.context import FakeLambdaContext

if TYPE_CHECKING:
    from local.fake_slack import FakeSlack
    from signoff.domain.models import Checkpoint, CheckpointRequest
    from signoff.surfaces.slack.identity import SlackDirectory
    from signoff.testing.memory import InMemoryCheckpointRepository, InMemoryWorkflow
    from signoff.usecases.decisions import DecisionService
    from signoff.usecases.intake import CheckpointService

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
POLICY_PATH = ROOT / "signoff.yaml"
ROUTING_PATH = ROOT / "routing.yaml"
HARD_SAMPLE = ROOT / "events" / "api" / "checkpoint-hard.json"

KINDS = ("approve", "refused", "modal")
DESCRIPTIONS = {
    "approve": "2nd Approve on a 2-of-N hard gate: vote, decide APPROVED, answer the task token",
    "refused": "Approve by an outsider (mallory): refused and audited",
    "modal": "Deny: opens the reason modal (views.open on FakeSlack, 127.0.0.1)",
}
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
CALLER = "arn:aws:iam::123456789012:user/bench"
CHANNEL = "C0RELEASE"  # where the card of a production deploy goes; only read by the lazy half
CARD_TS = "1767268800.000001"
LAZY = ["after_click"]


class RecordingLazyRunner(LazyListenerRunner):
    """Records which lazy listeners bolt starts, and runs none of them."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("signoff.bench.lazy")
        self.started: list[str] = []

    def start(self, function: Callable[..., None], request: BoltRequest) -> None:
        self.started.append(getattr(function, "__name__", repr(function)))


def slack_event(body: str, headers: dict[str, str]) -> dict[str, Any]:
    """POST /v1/slack/events as API Gateway hands it over (no IAM identity: Slack signs instead)."""
    return {
        "resource": "/v1/slack/events",
        "path": "/v1/slack/events",
        "httpMethod": "POST",
        "headers": dict(headers),
        "multiValueHeaders": {key: [value] for key, value in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "resourcePath": "/v1/slack/events",
            "httpMethod": "POST",
            "path": "/prod/v1/slack/events",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "Slackbot 1.0 (+https://api.slack.com/robots)"},
        },
        "body": body,
        "isBase64Encoded": False,
    }


@contextmanager
def _infra_importable() -> Iterator[None]:
    """infra/ on sys.path for `local.fake_slack` (make sets PYTHONPATH=infra; a bare run does not)."""
    added = str(INFRA) not in sys.path
    if added:
        sys.path.append(str(INFRA))
    try:
        yield
    finally:
        if added and str(INFRA) in sys.path:
            sys.path.remove(str(INFRA))


@dataclass
class SlackBench:
    """The app on in-memory fakes and FakeSlack, and the request builders for each kind."""

    fake: FakeSlack
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    runner: RecordingLazyRunner
    service: CheckpointService
    decisions: DecisionService
    directory: SlackDirectory
    repo: InMemoryCheckpointRepository
    workflow: InMemoryWorkflow
    request: CheckpointRequest
    users: dict[str, str]
    _seq: int = 0

    def checkpoint(self) -> tuple[Checkpoint, str]:
        """A fresh pending checkpoint with a task token (what Notify leaves behind)."""
        from signoff.ports import TaskToken

        cp = self.service.create(self.request, caller=CALLER, idempotency_key=None)
        self._seq += 1
        token = f"bench-task-token-{self._seq}"
        expires = cp.deadline or self.decisions.clock.now()
        self.repo.put_token(cp.id, TaskToken(token=token, phase="initial", expires_at=expires))
        return cp, token

    def vote(self, cp: Checkpoint, name: str) -> None:
        from signoff.domain.acts import Act

        actor = self.directory.actor(enterprise=None, team=self.fake.team, user=self.users[name])
        result = self.decisions.act(cp.id, actor, Act.APPROVE)
        if not result.ok or result.decided:
            raise RuntimeError(f"the untimed first approval went wrong: {result.message}")

    def click_event(self, name: str, cp: Checkpoint, act: str) -> dict[str, Any]:
        from local.fake_slack import block_actions_payload, interactivity_body, signed_request

        self._seq += 1
        trigger = f"{self._seq}.1767268800.bench-trigger"
        payload = block_actions_payload(self.fake.team, self.users[name], cp.id, act, CHANNEL, CARD_TS, trigger)
        body = interactivity_body(payload)
        return slack_event(body, signed_request(body, SIGNING_SECRET))

    def prepare(self, kind: str) -> tuple[dict[str, Any], Callable[[dict[str, Any]], None]]:
        """The event to time for `kind`, and a check of what it must have done (run after timing)."""
        cp, token = self.checkpoint()
        if kind == "approve":
            self.vote(cp, "bob")
            return self.click_event("carol", cp, "approve"), lambda response: self._approved(cp, token)
        if kind == "refused":
            return self.click_event("mallory", cp, "approve"), lambda response: self._refused(cp)
        if kind == "modal":
            views = len(self.fake.views())
            return self.click_event("bob", cp, "deny"), lambda response: self._opened(cp, views)
        raise ValueError(kind)

    def _approved(self, cp: Checkpoint, token: str) -> None:
        from signoff.domain.models import Status

        now = self.repo.get(cp.id)
        answer = self.workflow.answers.get(token)
        if now.status is not Status.APPROVED or len(now.votes) != 2 or answer is None or answer["status"] != "APPROVED":
            raise RuntimeError(f"the approve click did not decide {cp.id}: {now.status}, answer {answer}")

    def _refused(self, cp: Checkpoint) -> None:
        from signoff.audit.events import EventType

        last = self.repo.events(cp.id)[-1]
        if last.type is not EventType.REFUSED or last.data.get("refusal") != "unauthorized":
            raise RuntimeError(f"mallory's click was not refused and audited: {last.type} {last.data}")

    def _opened(self, cp: Checkpoint, views_before: int) -> None:
        from signoff.surfaces.slack.blocks import Form

        views = self.fake.views()  # what FakeSlack accepted and stored
        view = views[-1] if len(views) == views_before + 1 else {}
        if view.get("callback_id") != Form.DENY.value or view.get("private_metadata") != cp.id:
            raise RuntimeError(f"the deny click opened no reason form for {cp.id} ({len(views)} views opened)")
        if self.repo.get(cp.id).votes:
            raise RuntimeError("a deny click recorded a vote before its form was submitted")

    def click(self, kind: str, profiler: cProfile.Profile | None = None) -> float:
        """One click of `kind`: its ack latency in ms, after checking what it did. A profiler, if
        given, runs around the handler call only."""
        event, verify = self.prepare(kind)
        context = FakeLambdaContext("signoff-slack-bench")
        self.runner.started.clear()
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter_ns()
        response = self.handler(event, context)
        elapsed = time.perf_counter_ns() - start
        if profiler is not None:
            profiler.disable()
        if response.get("statusCode") != 200 or response.get("body"):
            raise RuntimeError(f"{kind} click answered {response.get('statusCode')}: {response.get('body')!r}")
        if self.runner.started != LAZY:
            raise RuntimeError(f"{kind} click started lazy listeners {self.runner.started}, expected {LAZY}")
        verify(response)
        return elapsed / 1e6


def _policy() -> Any:
    """The shipped policy with the two-person gate's comment requirement off (a plain Approve click
    votes; otherwise Approve opens the comment form)."""
    import yaml

    from signoff.domain.policy import parse_policy

    data = yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))
    data["gates"]["two-person"]["comment_required"] = False
    return parse_policy(data, source="signoff.yaml, two-person gate without comment_required")


@contextmanager
def slack_bench() -> Iterator[SlackBench]:
    from aws_lambda_powertools.logging import correlation_paths

    from signoff.adapters.clock import SystemClock
    from signoff.domain.models import CheckpointRequest
    from signoff.domain.routing import load_routing
    from signoff.observability import logger
    from signoff.surfaces.slack.app import build_app, handle, request_handler
    from signoff.surfaces.slack.chat import SlackChat, web_client
    from signoff.surfaces.slack.identity import SlackDirectory
    from signoff.testing.memory import InMemoryCheckpointRepository, InMemoryWorkflow
    from signoff.usecases.decisions import DecisionService
    from signoff.usecases.intake import CheckpointService

    with _infra_importable():
        from local.fake_slack import FakeSlack

        routing = load_routing(ROUTING_PATH)
        policy = _policy()
        body = json.loads(HARD_SAMPLE.read_text(encoding="utf-8"))
        body["risk"]["data_sensitivity"] = "internal"
        request = CheckpointRequest.model_validate(body)
        users = {p.id.split("@")[0]: p.slack.user for p in routing.routing.people if p.slack}

        with FakeSlack() as fake:
            client = web_client(fake.token, fake.url)
            repo = InMemoryCheckpointRepository()
            clock = SystemClock()
            workflow = InMemoryWorkflow()
            decisions = DecisionService(repo, clock, workflow)
            directory = SlackDirectory(routing, client)
            app = build_app(
                signing_secret=SIGNING_SECRET,
                client=client,
                decisions=decisions,
                routing=routing,
                repository=repo,
                directory=directory,
                chats=[SlackChat(client, routing, directory)],
            )
            runner = RecordingLazyRunner()
            adapter = request_handler(app, runner)

            # functions/slack/handler.py, with the adapter built here instead of from the secret.
            @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False)
            def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
                return handle(event, context, handler=adapter)

            bench = SlackBench(
                fake=fake,
                handler=handler,
                runner=runner,
                service=CheckpointService(repo, policy, clock, routing=routing),
                decisions=decisions,
                directory=directory,
                repo=repo,
                workflow=workflow,
                request=request,
                users=users,
            )
            _check_scenario(bench)
            yield bench


def _check_scenario(bench: SlackBench) -> None:
    """The checkpoint is the gate the kinds assume (a policy or routing change shows here)."""
    cp, _ = bench.checkpoint()
    gate = cp.assessment.gate
    wanted = {f"{name}@example.com" for name in ("bob", "carol")}
    if (
        gate.kind.value != "hard"
        or gate.approvals_required != 2
        or gate.comment_required
        or not wanted <= set(cp.approvers)
        or "mallory@example.com" in cp.approvers
    ):
        raise RuntimeError(
            f"the hard sample no longer gets a 2-of-N gate without comment that Bob and Carol approve:"
            f" {gate.kind.value}, {gate.approvals_required} approvals, comment {gate.comment_required},"
            f" approvers {cp.approvers}"
        )


def click_latencies(warmup: int, count: int) -> dict[str, list[float]]:
    """Ack latencies (ms) per kind: `warmup` + `count` iterations, one click of each kind per
    iteration (interleaved, so drift and GC land on every kind alike); the warm-up is dropped."""
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    with slack_bench() as bench:
        for i in range(warmup + count):
            if i == warmup:
                gc.collect()
            for kind in KINDS:
                elapsed = bench.click(kind)
                if i >= warmup:
                    samples[kind].append(elapsed)
    return samples


def profile_clicks(clicks: int, limit: int = 25) -> None:
    """cProfile of the handler call (not the preparation) over `clicks` warm clicks, per kind."""
    with slack_bench() as bench:
        for kind in KINDS:
            for _ in range(20):
                bench.click(kind)
            profiler = cProfile.Profile()
            for _ in range(clicks):
                bench.click(kind, profiler)
            print(f"\nslack ack profile, {kind} ({clicks} clicks; top {limit} by cumulative time):")
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(pstats.SortKey.CUMULATIVE).print_stats(limit)

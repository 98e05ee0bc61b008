"""Shared test helpers: the one loader for sample events, small builders that tweak a sample,
in-memory wiring, API Gateway REST proxy events and the Lambda handlers loaded from their files."""

from __future__ import annotations

import copy
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from signoff.audit.events import AuditEvent, EventType, chain_event
from signoff.domain.models import Checkpoint, CheckpointRequest, Status
from signoff.domain.policy import LoadedPolicy, load_policy, parse_policy
from signoff.ports import CheckpointRepository
from signoff.testing.memory import FixedClock, InMemoryCheckpointRepository
from signoff.usecases.intake import CheckpointService

REPO_ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = REPO_ROOT / "events"
POLICY_PATH = REPO_ROOT / "signoff.yaml"
CALLER_ARN = "arn:aws:iam::123456789012:user/ci-pipeline"
DELETE = object()
"""Marker for `tweak`: remove the key instead of setting it."""

# -- sample events -----------------------------------------------------------------------------


def load_event(name: str) -> dict[str, Any]:
    """A sample from events/ by name: 'checkpoint-auto' (looked up in events/api) or 'api/checkpoint-auto'.
    Every call returns a fresh copy, so tests may mutate it."""
    relative = name if "/" in name else f"api/{name}"
    return json.loads((EVENTS_DIR / f"{relative}.json").read_text(encoding="utf-8"))


def tweak(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of `data` with dotted paths set (or removed with DELETE):
    tweak(body, {"signals.model_confidence": 1.7, "environment": DELETE})."""
    result = copy.deepcopy(data)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node: Any = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        key: Any = int(leaf) if isinstance(node, list) else leaf
        if value is DELETE:
            del node[key]
        else:
            node[key] = value
    return result


def request_body(gate: str = "auto", changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of the sample that gets `gate` (auto, soft or hard), optionally tweaked."""
    return tweak(load_event(f"checkpoint-{gate}"), changes or {})


def make_request(gate: str = "auto", changes: dict[str, Any] | None = None) -> CheckpointRequest:
    return CheckpointRequest.model_validate(request_body(gate, changes))


# -- policies ----------------------------------------------------------------------------------


def policy_data() -> dict[str, Any]:
    """The shipped signoff.yaml as a plain dict (a fresh copy to derive test policies from)."""
    return yaml.safe_load(POLICY_PATH.read_text(encoding="utf-8"))


@cache
def shipped_policy() -> LoadedPolicy:
    return load_policy(POLICY_PATH)


def derived_policy(changes: dict[str, Any]) -> LoadedPolicy:
    """The shipped policy with dotted paths changed, validated through parse_policy."""
    return parse_policy(tweak(policy_data(), changes), source="derived")


# -- in-memory service -------------------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str = "signoff-intake"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:signoff-intake"
    aws_request_id: str = "00000000-0000-0000-0000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@dataclass
class MemoryWiring:
    service: CheckpointService
    repo: CheckpointRepository
    clock: FixedClock


def memory_service(
    *,
    policy: LoadedPolicy | None = None,
    repo: CheckpointRepository | None = None,
) -> MemoryWiring:
    """A CheckpointService on in-memory fakes (or the given repository) and a fixed clock."""
    repo = repo if repo is not None else InMemoryCheckpointRepository()
    clock = FixedClock()
    service = CheckpointService(
        repo=repo,
        policy=policy or shipped_policy(),
        clock=clock,
    )
    return MemoryWiring(service=service, repo=repo, clock=clock)


def stored_checkpoints(repo: CheckpointRepository) -> list[Any]:
    """Every checkpoint the repository holds, whatever its status (read through the port)."""
    found: list[Any] = []
    for status in Status:
        token: str | None = None
        while True:
            page = repo.list_by_status(status, limit=100, next_token=token)
            found += page.items
            token = page.next_token
            if token is None:
                break
    return found


def next_change(cp: Checkpoint, after_seq: int | None = None) -> tuple[Checkpoint, AuditEvent]:
    """A change of `cp` and the audit event recording it, as the service builds them for a save;
    `after_seq` chains the event after another sequence number (to provoke or avoid a clash)."""
    event = chain_event(
        checkpoint_id=cp.id,
        prev=(cp.audit_seq if after_seq is None else after_seq, cp.audit_head or ""),
        type=EventType.OUTCOME_REPORTED,
        at=cp.created_at,
        actor="tester",
        data={"outcome": "success"},
    )
    return cp.model_copy(update={"audit_seq": event.seq, "audit_head": event.hash}), event


# -- DynamoDB tables (integration tests) ------------------------------------------------------


@dataclass
class Tables:
    """A DynamoDB client and the two tables' names, with the scans the integration tests assert on."""

    client: Any
    table_name: str
    idempotency_table_name: str

    def items(self, table: str | None = None) -> list[dict[str, Any]]:
        """Every item of a table (low-level attribute values), scanned consistently."""
        paginator = self.client.get_paginator("scan")
        pages = paginator.paginate(TableName=table or self.table_name, ConsistentRead=True)
        return [item for page in pages for item in page.get("Items", [])]

    def sort_keys(self) -> list[str]:
        return sorted(item["sk"]["S"] for item in self.items())

    def idempotency_statuses(self) -> list[str]:
        return [item["status"]["S"] for item in self.items(self.idempotency_table_name)]


# -- API Gateway and handlers ------------------------------------------------------------------


def api_event(
    method: str,
    path: str,
    *,
    body: dict[str, Any] | str | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    user_arn: str = CALLER_ARN,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as an IAM-authenticated caller sends it."""
    raw_body = json.dumps(body) if isinstance(body, dict) else body
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "signoffapi",
            "stage": "v1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "httpMethod": method,
            "path": f"/v1{path}",
            "resourcePath": path,
            "identity": {"userArn": user_arn, "caller": "AIDAEXAMPLE", "sourceIp": "192.0.2.10"},
        },
        "body": raw_body,
        "isBase64Encoded": False,
    }


def response_header(response: dict[str, Any], name: str) -> str | None:
    """A header from a proxy response, whether Powertools put it in headers or multiValueHeaders."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return values[0]
    return None


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


@cache
def load_handler(function: str) -> ModuleType:
    """functions/<function>/handler.py imported under a distinct name (every handler is handler.py)."""
    path = REPO_ROOT / "functions" / function / "handler.py"
    spec = importlib.util.spec_from_file_location(f"signoff_function_{function}", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    return load_handler(function).handler(event, FakeLambdaContext(function_name=f"signoff-{function}"))

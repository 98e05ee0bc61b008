"""The GitHub Action's script end to end: a fake Actions token endpoint (on 127.0.0.1) and a stubbed
STS exchange stand in for GitHub OIDC and AWS; the requests go, signed with the assumed role's
credentials, to the local stack, where a person approves or denies with a signed Slack click. The
step's exit code, outputs and job summary follow the decision."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from signoff.tools.github_action import run
from tests.e2e.conftest import ROOT, LocalSignoff, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

RUNTIME_TOKEN = "actions-runtime-token"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUvc2hvcDpyZWY6cmVmcy9oZWFkcy9tYWluIn0.sig"
ROLE = "arn:aws:iam::123456789012:role/signoff-github"


@pytest.fixture
def token_endpoint() -> Iterator[str]:
    """The Actions runtime's OIDC endpoint: the ID token, for the STS audience and the runtime bearer only."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            ok = self.headers.get("Authorization") == f"Bearer {RUNTIME_TOKEN}" and "audience=sts.amazonaws.com" in (
                self.path
            )
            body = json.dumps({"value": ID_TOKEN} if ok else {"message": "bad token request"}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/_apis/token?api-version=2.0"
    server.shutdown()


def stubbed_sts() -> tuple[Any, Stubber]:
    """STS answering AssumeRoleWithWebIdentity for the job's ID token only."""
    sts = boto3.client("sts", region_name="eu-west-1", aws_access_key_id="unused", aws_secret_access_key="unused")
    stub = Stubber(sts)
    credentials = {
        "AccessKeyId": "ASIAGITHUBEXAMPLE01",
        "SecretAccessKey": "secret",
        "SessionToken": "session",
        "Expiration": "2026-11-30T10:00:00Z",
    }
    expected = {"RoleArn": ROLE, "WebIdentityToken": ID_TOKEN, "RoleSessionName": ANY, "DurationSeconds": 3600}
    stub.add_response("assume_role_with_web_identity", {"Credentials": credentials}, expected)
    stub.activate()
    return sts, stub


def step_env(signoff: LocalSignoff, tmp_path: Path, token_url: str, run_id: str) -> dict[str, str]:
    request = json.loads((ROOT / "events" / "api" / "checkpoint-soft.json").read_text())
    request["signals"]["model_confidence"] = 0.2  # low confidence: the one-approver hard gate ('review')
    del request["request_id"], request["workflow_id"], request["requester"]
    (tmp_path / "request.json").write_text(json.dumps(request))
    return {
        "INPUT_URL": signoff.url,
        "INPUT_ROLE-ARN": ROLE,
        "INPUT_REGION": "eu-west-1",
        "INPUT_REQUEST-FILE": str(tmp_path / "request.json"),
        "INPUT_TIMEOUT": "600",
        "INPUT_POLL": "0.5",
        "ACTIONS_ID_TOKEN_REQUEST_URL": token_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": RUNTIME_TOKEN,
        "GITHUB_REPOSITORY": "acme/shop",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_RUN_ID": run_id,
        "GITHUB_RUN_ATTEMPT": "1",
        "GITHUB_JOB": "deploy",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_OUTPUT": str(tmp_path / "output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }


def start(env: dict[str, str], pool: ThreadPoolExecutor) -> tuple[Future[int], Stubber]:
    sts, stub = stubbed_sts()
    return pool.submit(run, env, sts=sts), stub


def pending(signoff: LocalSignoff, run_id: str, step: Future[int]) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        assert not step.done(), f"the step ended before a decision: exit {step.result()}"
        items = signoff.call("GET", "/v1/checkpoints?status=pending&limit=100").body["items"]
        cp = next((c for c in items if c["request"].get("request_id") == f"github-{run_id}-1-deploy"), None)
        return cp if cp and signoff.cards(cp["id"]) else None

    found: dict[str, Any] = eventually(find)
    return found


def outputs(path: Path) -> dict[str, str]:
    """GITHUB_OUTPUT's heredoc entries: name<<DELIM, value lines, DELIM."""
    values, lines = {}, path.read_text().split("\n")
    i = 0
    while i < len(lines) and "<<" in lines[i]:
        name, delimiter = lines[i].split("<<", 1)
        end = lines.index(delimiter, i + 1)
        values[name] = "\n".join(lines[i + 1 : end])
        i = end + 1
    return values


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def test_the_action_exits_0_on_approval_with_its_outputs_and_summary(
    signoff: LocalSignoff, tmp_path: Path, token_endpoint: str, pool: ThreadPoolExecutor
) -> None:
    run_id = uuid.uuid4().hex[:10]
    step, stub = start(step_env(signoff, tmp_path, token_endpoint, run_id), pool)
    cp = pending(signoff, run_id, step)
    assert cp["request"]["requester"]["id"] == "github:acme/shop@refs/heads/main"
    assert cp["request"]["evidence"]["links"][0]["title"] == "GitHub Actions run"
    signoff.approve("grace@example.com", cp["id"])
    assert step.result(timeout=600) == 0
    stub.assert_no_pending_responses()  # the OIDC token was exchanged, once
    values = outputs(tmp_path / "output")
    assert values["status"] == "APPROVED" and values["checkpoint_id"] == cp["id"]
    assert values["decided_by"] and json.loads(values["conditions"]) == {}
    assert "Signoff: APPROVED" in (tmp_path / "summary.md").read_text()


def test_the_action_fails_the_step_on_a_denial(
    signoff: LocalSignoff, tmp_path: Path, token_endpoint: str, pool: ThreadPoolExecutor
) -> None:
    run_id = uuid.uuid4().hex[:10]
    step, _ = start(step_env(signoff, tmp_path, token_endpoint, run_id), pool)
    cp = pending(signoff, run_id, step)
    clicked = signoff.act("grace@example.com", cp["id"], "deny")
    signoff.submit("grace@example.com", clicked["views"][0], "no deploys on Friday")
    assert step.result(timeout=600) == 1
    values = outputs(tmp_path / "output")
    assert values["status"] == "DENIED" and "no deploys on Friday" in values["reason"]
    assert "Signoff: DENIED" in (tmp_path / "summary.md").read_text()

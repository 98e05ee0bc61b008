"""The GitHub Action's script without a network: the request it builds from a file and the step's
inputs, the OIDC token request and STS exchange (a botocore Stubber), and the errors that fail the
step with exit 3 before anything is asked. tests/e2e/test_github_action_e2e.py runs it against the
local stack."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from signoff.tools.github_action import (
    ActionError,
    assume_role,
    build_request,
    idempotency_key,
    oidc_token,
    run,
    summary,
    write_outputs,
)

pytestmark = pytest.mark.unit

GITHUB = {
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_RUN_ID": "77",
    "GITHUB_RUN_ATTEMPT": "2",
    "GITHUB_JOB": "deploy",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_WORKFLOW": "release",
    "GITHUB_SERVER_URL": "https://github.com",
}
ROLE = "arn:aws:iam::123456789012:role/signoff-github"


class TokenEndpoint:
    """The Actions runtime's token endpoint: answers {"value": token} to the right bearer."""

    def __init__(self, token: str = "header.payload.sig") -> None:
        self.token = token
        self.asked: list[tuple[str, str | None]] = []

    def open(self, request: Any, data: None = None, timeout: float = 0) -> Any:
        self.asked.append((request.full_url, request.get_header("Authorization")))
        return _Response(json.dumps({"value": self.token}).encode())


class _Response(io.BytesIO):
    status = 200


def test_the_request_comes_from_the_file_then_the_inputs_then_the_run(tmp_path: Path) -> None:
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"action": "deploy", "target": "v1", "summary": "from the file"}))
    env = {
        **GITHUB,
        "INPUT_REQUEST-FILE": str(request),
        "INPUT_ENVIRONMENT": "production",
        "INPUT_SERVICE": "shop",
        "INPUT_RISK": '{"blast_radius_pct": 10}',
    }
    body = build_request(env)
    assert body["action"] == "deploy" and body["summary"] == "from the file" and body["environment"] == "production"
    assert body["risk"] == {"blast_radius_pct": 10}
    assert body["requester"] == {
        "id": "github:acme/shop@refs/heads/main",
        "kind": "pipeline",
        "display_name": "octocat via GitHub Actions",
    }
    assert body["request_id"] == "github-77-2-deploy" and body["workflow_id"] == "acme/shop/release"
    assert body["evidence"]["links"][0] == {
        "title": "GitHub Actions run",
        "url": "https://github.com/acme/shop/actions/runs/77",
    }
    assert idempotency_key(env, body) == "github-acme/shop-77-2-deploy-deploy"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INPUT_RISK": "{not json"}, "input risk is not JSON"),
        ({"INPUT_REQUEST-FILE": "/nonexistent.json"}, "request-file /nonexistent.json"),
    ],
)
def test_bad_inputs_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ActionError, match=message):
        build_request(env)


def test_the_oidc_token_is_asked_for_the_sts_audience_with_the_runtime_bearer() -> None:
    endpoint = TokenEndpoint()
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.actions/x?api-version=2",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "rt",
    }
    assert oidc_token(env, endpoint) == "header.payload.sig"
    assert endpoint.asked == [("https://token.actions/x?api-version=2&audience=sts.amazonaws.com", "Bearer rt")]
    with pytest.raises(ActionError, match="id-token: write"):
        oidc_token({}, endpoint)


def test_the_token_is_exchanged_with_sts_for_the_role() -> None:
    sts = boto3.client("sts", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sts) as stub:
        stub.add_response(
            "assume_role_with_web_identity",
            {"Credentials": {"AccessKeyId": "ASIAEXAMPLEEXAMPLE1", "SecretAccessKey": "s", "SessionToken": "t",
                             "Expiration": "2026-11-30T10:00:00Z"}},
            {"RoleArn": ROLE, "RoleSessionName": "signoff-77-2", "WebIdentityToken": "a.b.c", "DurationSeconds": 3600},
        )  # fmt: skip
        session = assume_role(sts, ROLE, "a.b.c", GITHUB, "eu-west-1")
    assert session.get_credentials().access_key == "ASIAEXAMPLEEXAMPLE1" and session.region_name == "eu-west-1"

    with Stubber(sts) as stub:
        stub.add_client_error("assume_role_with_web_identity", "AccessDenied", "Not authorized to perform sts:Assume")
        with pytest.raises(ActionError, match="STS refused the GitHub OIDC token"):
            assume_role(sts, ROLE, "a.b.c", GITHUB, "eu-west-1")


def test_without_a_url_or_an_oidc_token_the_step_fails_before_asking(capsys: pytest.CaptureFixture[str]) -> None:
    assert run({}) == 3
    assert "give the Signoff API's URL" in capsys.readouterr().err
    assert run({"INPUT_URL": "https://x.execute-api.eu-west-1.amazonaws.com/live", "INPUT_ROLE-ARN": ROLE,
                "INPUT_REGION": "eu-west-1"}, sts=object()) == 3  # fmt: skip
    assert "id-token: write" in capsys.readouterr().err


def test_outputs_survive_newlines_and_the_summary_names_the_decision(tmp_path: Path) -> None:
    out = tmp_path / "output"
    cp = {"id": "cp_1", "status": "DENIED", "decided_by": "grace", "decision_reason": "line one\nline two"}
    write_outputs({"GITHUB_OUTPUT": str(out)}, {"reason": cp["decision_reason"], "status": "DENIED"})
    text = out.read_text()
    assert "reason<<SIGNOFF_EOF_" in text and "\nline one\nline two\nSIGNOFF_EOF_" in text
    assert "### ⛔ Signoff: DENIED" in summary(cp) and "| decided by | grace |" in summary(cp)

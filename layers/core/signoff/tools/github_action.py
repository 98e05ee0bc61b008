"""The script behind the GitHub Action (integrations/github/action.yml): ask Signoff from a workflow
step and wait for the decision.

1. Authenticate with GitHub OIDC: request the job's ID token (audience `sts.amazonaws.com`) from
   the Actions runtime and exchange it with STS (AssumeRoleWithWebIdentity) for the role that the
   `GitHubOidcAccess` CDK construct made (it may invoke Signoff's routes and nothing else). No
   long-lived AWS key is stored in GitHub. Without a role (the local stack) requests go unsigned.
2. Build the checkpoint request from a request file and/or the step's inputs, with the run's
   identity (repository, ref, run id, actor) and a link back to the run.
3. Create it (the idempotency key is the run, its attempt and the job: a retried step finds the
   same checkpoint), wait for the decision, set the step's outputs (status, decided_by, conditions,
   checkpoint_id), write the job summary, and exit 0 only when approved: 1 denied, 2 expired,
   cancelled or still pending when it stopped waiting, 3 an error.

Inputs arrive as the composite action passes them: environment variables `INPUT_<NAME>`.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError

from signoff.tools.client import CredentialSource, Opener, SignoffClient, SignoffClientError

EXIT = {"APPROVED": 0, "DENIED": 1, "EXPIRED": 2, "CANCELLED": 2, "PENDING": 2}
EXIT_ERROR = 3
AUDIENCE = "sts.amazonaws.com"
MAX_POLL_SECONDS = 15.0
MAX_FAILURES = 3


class ActionError(Exception):
    """The step cannot ask Signoff (bad input, no OIDC token, STS refused): exit 3 with the message."""


def _input(env: Mapping[str, str], name: str) -> str:
    return env.get("INPUT_" + name.upper().replace(" ", "_"), "").strip()


# -- 1. OIDC -----------------------------------------------------------------------------------------


def oidc_token(env: Mapping[str, str], opener: Opener) -> str:
    """The job's GitHub OIDC ID token (needs `permissions: id-token: write`)."""
    url, bearer = env.get("ACTIONS_ID_TOKEN_REQUEST_URL"), env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise ActionError("no GitHub OIDC token: give the job `permissions: id-token: write`")
    request = urllib.request.Request(
        f"{url}&audience={quote(AUDIENCE)}" if "?" in url else f"{url}?audience={quote(AUDIENCE)}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    try:
        with opener.open(request, timeout=30) as response:
            value = json.loads(response.read()).get("value")
    except (OSError, ValueError) as exc:
        raise ActionError(f"the GitHub OIDC token request failed: {exc}") from None
    if not isinstance(value, str) or not value:
        raise ActionError("the GitHub OIDC token response holds no token")
    return value


class WebIdentitySession:
    """A `CredentialSource` from STS AssumeRoleWithWebIdentity (the role lasts the job, 1 h at most)."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self._credentials = credentials
        self.region_name: str | None = region

    def get_credentials(self) -> Any:
        return self._credentials


def assume_role(sts: Any, role_arn: str, token: str, env: Mapping[str, str], region: str) -> CredentialSource:
    session_name = f"signoff-{env.get('GITHUB_RUN_ID', 'run')}-{env.get('GITHUB_RUN_ATTEMPT', '1')}"[:64]
    try:
        answer = sts.assume_role_with_web_identity(
            RoleArn=role_arn, RoleSessionName=session_name, WebIdentityToken=token, DurationSeconds=3600
        )
    except (ClientError, BotoCoreError) as exc:  # the message names the reason
        raise ActionError(f"STS refused the GitHub OIDC token for {role_arn}: {exc}") from None
    c = answer["Credentials"]
    return WebIdentitySession(Credentials(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"]), region)


# -- 2. the request -----------------------------------------------------------------------------------


def build_request(env: Mapping[str, str]) -> dict[str, Any]:
    """The checkpoint request: the request file's, then each given input on top, then the run's
    identity where the file says nothing."""
    body: dict[str, Any] = {}
    if path := _input(env, "request-file"):
        try:
            body = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ActionError(f"request-file {path}: {exc}") from None
        if not isinstance(body, dict):
            raise ActionError(f"request-file {path}: the request must be a JSON object")
    for name in ("action", "target", "environment", "service", "summary"):
        if value := _input(env, name):
            body[name] = value
    for name in ("signals", "risk", "evidence"):
        if value := _input(env, name):
            try:
                body[name] = json.loads(value)
            except ValueError as exc:
                raise ActionError(f"input {name} is not JSON: {exc}") from None
    repo, ref = env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_REF", "")
    body.setdefault("requester", {"id": f"github:{repo}@{ref}"[:128], "kind": "pipeline"})
    if env.get("GITHUB_ACTOR"):
        body["requester"].setdefault("display_name", f"{env['GITHUB_ACTOR']} via GitHub Actions"[:200])
    if run_id := env.get("GITHUB_RUN_ID"):
        body.setdefault("workflow_id", f"{repo}/{env.get('GITHUB_WORKFLOW', 'workflow')}"[:128])
        body.setdefault(
            "request_id", f"github-{run_id}-{env.get('GITHUB_RUN_ATTEMPT', '1')}-{env.get('GITHUB_JOB', '')}"
        )
        run_url = f"{env.get('GITHUB_SERVER_URL', 'https://github.com')}/{repo}/actions/runs/{run_id}"
        evidence = body.setdefault("evidence", {})
        evidence.setdefault("links", []).insert(0, {"title": "GitHub Actions run", "url": run_url})
    return body


def idempotency_key(env: Mapping[str, str], body: dict[str, Any]) -> str:
    """A retried step (same run, attempt and job) finds its checkpoint; a re-run attempt asks again."""
    if key := _input(env, "idempotency-key"):
        return key
    parts = [env.get("GITHUB_REPOSITORY", ""), env.get("GITHUB_RUN_ID", ""), env.get("GITHUB_RUN_ATTEMPT", "")]
    return "github-" + "-".join([*parts, env.get("GITHUB_JOB", ""), str(body.get("action", ""))])[:190]


# -- 3. ask, wait, report --------------------------------------------------------------------------------


def wait(
    client: SignoffClient, cp: dict[str, Any], timeout: float, poll: float, sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> dict[str, Any]:  # fmt: skip
    """Poll until the checkpoint is decided or `timeout` passes (then it is returned PENDING)."""
    give_up_at, delay, failures = clock() + timeout, poll, 0
    while cp.get("status") == "PENDING" and (remaining := give_up_at - clock()) > 0:
        sleep(min(delay, remaining))
        try:
            cp = client.get(str(cp["id"]))
            failures = 0
        except SignoffClientError as exc:
            failures += 1
            if not exc.transient or failures >= MAX_FAILURES:
                raise
        delay = min(delay * 1.5, MAX_POLL_SECONDS)
    return cp


def outputs(cp: dict[str, Any]) -> dict[str, str]:
    return {
        "status": str(cp.get("status") or ""),
        "decided_by": str(cp.get("decided_by") or ""),
        "conditions": json.dumps(cp.get("conditions") or {}, sort_keys=True),
        "checkpoint_id": str(cp.get("id") or ""),
        "reason": str(cp.get("decision_reason") or ""),
    }


def write_outputs(env: Mapping[str, str], values: dict[str, str]) -> None:
    if path := env.get("GITHUB_OUTPUT"):
        with Path(path).open("a", encoding="utf-8") as out:
            for name, value in values.items():
                # The heredoc form: a value may hold newlines (a reason); the delimiter cannot occur in it.
                delimiter = f"SIGNOFF_EOF_{uuid.uuid4().hex}"
                out.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def summary(cp: dict[str, Any]) -> str:
    status = str(cp.get("status"))
    icon = {"APPROVED": "✅", "DENIED": "⛔", "PENDING": "⏳"}.get(status, "⚠️")
    request, gate = cp.get("request") or {}, ((cp.get("assessment") or {}).get("gate") or {})
    lines = [
        f"### {icon} Signoff: {status}",
        "",
        f"**{request.get('action')} {request.get('target')}** to {request.get('environment')}",
        "",
        str(request.get("summary") or ""),
        "",
        "| | |",
        "|---|---|",
        f"| checkpoint | `{cp.get('id')}` |",
        f"| gate | {gate.get('kind')} ({gate.get('profile')}) |",
        f"| decided by | {cp.get('decided_by') or '-'} |",
        f"| reason | {(cp.get('decision_reason') or '-').replace('|', '/')} |",
    ]
    for name, value in (cp.get("conditions") or {}).items():
        lines.append(f"| condition {name} | {json.dumps(value) if not isinstance(value, str) else value} |")
    return "\n".join(lines) + "\n"


def run(
    env: Mapping[str, str],
    *,
    opener: Opener | None = None,
    sts: Any = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """The step: 0 approved, 1 denied, 2 not decided, 3 error (the message on stderr)."""
    from signoff.adapters.http_out import no_redirect_opener

    opener = opener or no_redirect_opener()
    try:
        url = _input(env, "url") or env.get("SIGNOFF_URL", "")
        if not url:
            raise ActionError("give the Signoff API's URL (input url)")
        session: CredentialSource | None = None
        if role := _input(env, "role-arn"):
            region = _input(env, "region") or env.get("AWS_REGION", "")
            if not region:
                raise ActionError("give the API's region (input region) to sign requests")
            if sts is None:
                import boto3

                sts = boto3.client("sts", region_name=region)
            session = assume_role(sts, role, oidc_token(env, opener), env, region)
        body = build_request(env)
        client = SignoffClient(url, sign=session is not None, session=session, opener=opener)
        _, cp = client.create(body, idempotency_key(env, body))
        print(f"checkpoint {cp.get('id')}: {cp.get('status')}, gate {(cp.get('assessment') or {}).get('gate')}")
        timeout = float(_input(env, "timeout") or 3600)
        poll = float(_input(env, "poll") or 5)
        cp = wait(client, cp, timeout, poll, sleep, clock)
    except (ActionError, SignoffClientError, ValueError) as exc:
        print(f"::error title=Signoff::{exc}", file=sys.stderr)
        return EXIT_ERROR
    write_outputs(env, outputs(cp))
    if path := env.get("GITHUB_STEP_SUMMARY"):
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(summary(cp))
    status = str(cp.get("status"))
    print(f"{status}" + (f" by {cp['decided_by']}" if cp.get("decided_by") else ""))
    if status != "APPROVED":
        print(f"::error title=Signoff {status}::{cp.get('decision_reason') or status}", file=sys.stderr)
    return EXIT.get(status, EXIT_ERROR)


def main() -> int:
    import os

    return run(os.environ)


if __name__ == "__main__":
    sys.exit(main())

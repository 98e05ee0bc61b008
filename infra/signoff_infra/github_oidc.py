"""GitHub Actions access to Signoff with OIDC: no AWS key stored in GitHub.

The GitHub OIDC identity provider (or an existing one: an account holds it once) and a role that
only the chosen repositories' jobs on the chosen branches can assume (the token's `sub` claim), for
the STS audience only, for at most an hour, and that may do one thing: `execute-api:Invoke` on
Signoff's checkpoint routes (create, read, cancel, report an outcome). Not the score route, not the
chat callbacks, nothing else in the account. The GitHub Action (integrations/github) assumes it."""

from __future__ import annotations

import re
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from constructs import Construct

from signoff_infra import nag

GITHUB_ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# What the GitHub Action calls: POST /v1/checkpoints, GET /v1/checkpoints/{id}, cancel, outcome.
CHECKPOINT_ROUTES = (
    ("POST", "/v1/checkpoints"),
    ("GET", "/v1/checkpoints/*"),
    ("POST", "/v1/checkpoints/*/cancel"),
    ("POST", "/v1/checkpoints/*/outcome"),
)
ROUTE_IDS = (
    "The '*' in the execute-api ARNs stands for one path parameter, the checkpoint id, on Signoff's own "
    "checkpoint routes (read, cancel, outcome): the caller cannot know the ids ahead."
)
_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9_./-]+\*?$")  # a name, or a prefix ending in one * (release/*)


class GitHubOidcAccess(Construct):
    """`role` (its ARN is the action's `role-arn`) for `repositories` ("owner/name") on `branches`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        repositories: Sequence[str],
        branches: Sequence[str] = ("main",),
        provider_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        _check(repositories, branches)
        if provider_arn is None:
            provider = iam.OidcProviderNative(self, "Provider", url=f"https://{GITHUB_ISSUER}", client_ids=[AUDIENCE])
            provider_arn = provider.oidc_provider_arn
        subjects = [f"repo:{repo}:ref:refs/heads/{branch}" for repo in repositories for branch in branches]
        self.role = iam.Role(
            self,
            "Role",
            description="GitHub Actions jobs of " + ", ".join(repositories) + ": Signoff's checkpoint routes only",
            max_session_duration=cdk.Duration.hours(1),
            assumed_by=iam.WebIdentityPrincipal(
                provider_arn,
                conditions={
                    "StringEquals": {f"{GITHUB_ISSUER}:aud": AUDIENCE},
                    "StringLike": {f"{GITHUB_ISSUER}:sub": subjects},
                },
            ),
        )
        stage = api.deployment_stage.stage_name
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["execute-api:Invoke"],
                resources=[api.arn_for_execute_api(method, path, stage) for method, path in CHECKPOINT_ROUTES],
            )
        )
        api_id, stage_id = nag.logical_id(api), nag.logical_id(api.deployment_stage)
        for method, path in CHECKPOINT_ROUTES:
            if "*" in path:
                arn = f"arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:<{api_id}>/<{stage_id}>"
                nag.acknowledge(self.role, f"AwsSolutions-IAM5[Resource::{arn}/{method}{path}]", ROUTE_IDS)


def _check(repositories: Sequence[str], branches: Sequence[str]) -> None:
    """A wildcard repository or branch would let any repository (or any branch, a fork's PR
    included) approve its own way in: refuse it at synth time."""
    if not repositories or not branches:
        raise ValueError("GitHubOidcAccess needs at least one repository and one branch")
    wrong = [r for r in repositories if not _REPOSITORY.match(r)]
    wrong += [b for b in branches if not _BRANCH.match(b) or b.startswith("*")]
    if wrong:
        raise ValueError(f"GitHubOidcAccess: not a repository (owner/name) or branch (name or prefix*): {wrong}")

"""GitHub Actions' way in, as synthesized (with cdk-nag on): the OIDC provider, a role only the
chosen repositories' jobs on the chosen branches can assume for the STS audience, allowed to invoke
Signoff's checkpoint routes and nothing else; and no wildcard repository or branch at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from app import build_app
from aws_cdk import aws_apigateway as apigw

from signoff_infra.github_oidc import GitHubOidcAccess

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]

ISSUER = "token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def body(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # The context `cdk synth -c githubRepositories=... -c githubBranches=...` gives the app.
    context = {"githubRepositories": "acme/shop,acme/infra", "githubBranches": "main,release/*"}
    outdir = tmp_path_factory.mktemp("cdk.out-github")
    app, stack = build_app(outdir=str(outdir), context=context)
    app.synth()  # cdk-nag runs here: an unacknowledged finding fails it
    template: dict[str, Any] = json.loads((Path(outdir) / f"{stack.stack_name}.template.json").read_text())
    return template


def of_type(body: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in body["Resources"].items() if r["Type"] == type_}


def github_role(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    roles = [
        (k, r)
        for k, r in of_type(body, "AWS::IAM::Role").items()
        if "AssumeRoleWithWebIdentity" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert len(roles) == 1
    return roles[0]


def test_the_provider_is_github_for_the_sts_audience(body: dict[str, Any]) -> None:
    (provider,) = of_type(body, "AWS::IAM::OIDCProvider").values()
    assert provider["Properties"]["Url"] == f"https://{ISSUER}"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]


def test_only_the_chosen_repositories_and_branches_may_assume_the_role(body: dict[str, Any]) -> None:
    _, role = github_role(body)
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity" and statement["Effect"] == "Allow"
    assert "Ref" in statement["Principal"]["Federated"]  # the provider above
    assert statement["Condition"]["StringEquals"] == {f"{ISSUER}:aud": "sts.amazonaws.com"}
    assert sorted(statement["Condition"]["StringLike"][f"{ISSUER}:sub"]) == [
        "repo:acme/infra:ref:refs/heads/main",
        "repo:acme/infra:ref:refs/heads/release/*",
        "repo:acme/shop:ref:refs/heads/main",
        "repo:acme/shop:ref:refs/heads/release/*",
    ]
    assert role["Properties"]["MaxSessionDuration"] == 3600


def test_the_role_may_invoke_the_checkpoint_routes_and_nothing_else(body: dict[str, Any]) -> None:
    logical_id, _ = github_role(body)
    policies = [
        p for p in of_type(body, "AWS::IAM::Policy").values() if {"Ref": logical_id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert [s["Action"] for s in statements] == ["execute-api:Invoke"]
    routes = []
    for arn in statements[0]["Resource"]:
        parts = arn["Fn::Join"][1]
        assert {"Ref": next(k for k in of_type(body, "AWS::ApiGateway::RestApi"))} in parts  # Signoff's API only
        routes.append(parts[-1].lstrip("/"))  # after the stage: "/POST/v1/checkpoints"
    assert sorted(routes) == sorted(
        ["POST/v1/checkpoints", "GET/v1/checkpoints/*", "POST/v1/checkpoints/*/cancel", "POST/v1/checkpoints/*/outcome"]
    )
    assert "GitHubRoleArn" in body["Outputs"]


@pytest.mark.parametrize(
    ("repositories", "branches"),
    [(["*"], ["main"]), (["acme/*"], ["main"]), (["acme/shop"], ["*"]), (["acme/shop"], []), ([], ["main"])],
)
def test_a_wildcard_repository_or_branch_is_refused_at_synth(repositories: list[str], branches: list[str]) -> None:
    stack = cdk.Stack(cdk.App(), "T")
    api = apigw.RestApi(stack, "Api")
    api.root.add_method("GET")
    with pytest.raises(ValueError, match="GitHubOidcAccess"):
        GitHubOidcAccess(stack, "GitHub", api=api, repositories=repositories, branches=branches)

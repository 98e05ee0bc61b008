"""The synthesized template has the shape DESIGN.md promises: IAM auth on the data routes, the
stream and the status index, TTL on idempotency, explicit log retention, no wildcard actions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from app import ROOT, build_app
from aws_cdk.assertions import Match, Template

from signoff.domain.errors import PolicyError
from signoff.domain.policy import load_policy
from signoff_infra.stack import SignoffStack

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]


def resources(body: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in body["Resources"].items() if r["Type"] == type_}


def route_table(body: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(method, path) -> authorization type, rebuilt from the API's resources and methods."""
    api_resources = resources(body, "AWS::ApiGateway::Resource")

    def path(ref: Any) -> str:
        if "Fn::GetAtt" in ref:
            return ""
        props = api_resources[ref["Ref"]]["Properties"]
        return f"{path(props['ParentId'])}/{props['PathPart']}"

    return {
        (m["Properties"]["HttpMethod"], path(m["Properties"]["ResourceId"])): m["Properties"]["AuthorizationType"]
        for m in resources(body, "AWS::ApiGateway::Method").values()
    }


def test_every_checkpoint_and_score_route_requires_iam(body: dict[str, Any]) -> None:
    # Given the synthesized API / When its routes are listed
    routes = route_table(body)
    # Then every data route is IAM-authorized and only the schema is public
    assert {k for k in routes if k[1].startswith(("/v1/checkpoints", "/v1/score"))} == {
        ("POST", "/v1/checkpoints"),
        ("GET", "/v1/checkpoints"),
        ("GET", "/v1/checkpoints/{checkpoint_id}"),
        ("GET", "/v1/checkpoints/{checkpoint_id}/events"),
        ("POST", "/v1/checkpoints/{checkpoint_id}/outcome"),
        ("POST", "/v1/checkpoints/{checkpoint_id}/cancel"),
        ("POST", "/v1/score"),
    }
    for (method, path), auth in routes.items():
        # Public: the schema, and Slack's callback (its request signature is verified instead).
        expected = "NONE" if path in ("/v1/openapi.json", "/v1/slack/events") else "AWS_IAM"
        assert auth == expected, f"{method} {path} has authorization {auth}"


def test_checkpoint_table_has_stream_status_index_and_is_retained(template: Template, body: dict[str, Any]) -> None:
    template.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": Match.object_like(
                {
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "GlobalSecondaryIndexes": [
                        Match.object_like(
                            {
                                "IndexName": "by-status",
                                "KeySchema": [
                                    {"AttributeName": "status_pk", "KeyType": "HASH"},
                                    {"AttributeName": "status_sk", "KeyType": "RANGE"},
                                ],
                            }
                        )
                    ],
                }
            ),
            "DeletionPolicy": "Retain",
        },
    )


def test_idempotency_table_expires_records(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_functions_run_on_the_core_layer_with_the_policy_and_logs_with_retention(body: dict[str, Any]) -> None:
    functions = resources(body, "AWS::Lambda::Function")
    assert len(functions) >= 2
    log_groups = resources(body, "AWS::Logs::LogGroup")
    assert log_groups and all("RetentionInDays" in g["Properties"] for g in log_groups.values())
    for name, fn in functions.items():
        props = fn["Properties"]
        assert props["Layers"], name
        assert props["Environment"]["Variables"]["SIGNOFF_POLICY_PATH"] == "/opt/signoff.yaml"
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "LoggingConfig" in props, f"{name} has no explicit log group"


def test_no_policy_grants_a_wildcard_action(body: dict[str, Any]) -> None:
    for name, policy in resources(body, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for action in actions:
                assert action != "*" and not action.endswith(":*"), f"{name} grants {action}"


def test_functions_roles_use_no_managed_policies(body: dict[str, Any]) -> None:
    for name, role in resources(body, "AWS::IAM::Role").items():
        principal = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        if principal.get("Service") == "lambda.amazonaws.com":
            assert "ManagedPolicyArns" not in role["Properties"], name


def test_intake_can_write_both_tables_and_scoring_touches_no_table(body: dict[str, Any]) -> None:
    policies = resources(body, "AWS::IAM::Policy")
    intake = [p for k, p in policies.items() if k.startswith("ApiIntake")]
    scoring = [p for k, p in policies.items() if k.startswith("ApiScoring")]
    intake_actions = {a for p in intake for s in p["Properties"]["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem"} <= intake_actions
    scoring_actions = {a for p in scoring for s in p["Properties"]["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert not {a for a in scoring_actions if a.startswith("dynamodb:")}


def test_policy_version_is_an_output(template: Template) -> None:
    template.has_output("PolicyVersion", {"Value": Match.string_like_regexp(r"^1\.0\.0\+[0-9a-f]{12}$")})


def test_an_invalid_policy_stops_synthesis(tmp_path: Path) -> None:
    # Given a policy whose weights do not add up to 100
    broken = tmp_path / "signoff.yaml"
    broken.write_text((ROOT / "signoff.yaml").read_text().replace("model: 40", "model: 45"))
    # When the app is built / Then synthesis is refused, naming the path
    with pytest.raises(PolicyError, match="weights: weights must add up to 100"):
        build_app(outdir=str(tmp_path / "out"), policy_path=broken)


@pytest.mark.skipif(shutil.which("npx") is None or not (ROOT / "node_modules").exists(), reason="npm ci not run")
def test_cdk_cli_synthesizes_with_cdk_json(tmp_path: Path) -> None:
    # cdk-nag runs as a policy-validation plugin: any unacknowledged finding fails this synthesis.
    result = subprocess.run(
        ["npx", "cdk", "synth", "--quiet", "--output", str(tmp_path / "cdk.out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "cdk.out" / "Signoff.template.json").exists()


def test_teams_is_opt_in_and_its_route_is_verified_by_the_bot_jwt(tmp_path: Path, body: dict[str, Any]) -> None:
    # Without the option: no Teams route, function or secret
    assert not any(path.startswith("/v1/teams") for _, path in route_table(body))
    # With it (`-c teams=true` or SIGNOFF_TEAMS=1)
    app = cdk.App(outdir=str(tmp_path / "out"), context={"teams": True})
    stack = SignoffStack(
        app,
        "SignoffTeams",
        policy=load_policy(ROOT / "signoff.yaml"),
        policy_path=ROOT / "signoff.yaml",
        routing_path=ROOT / "routing.yaml",
        teams=True,
    )
    teams = Template.from_stack(stack).to_json()
    assert route_table(teams)[("POST", "/v1/teams/messages")] == "NONE"
    secrets = resources(teams, "AWS::SecretsManager::Secret").values()
    assert any("app_password" in json.dumps(s["Properties"]) for s in secrets)
    functions = resources(teams, "AWS::Lambda::Function").values()
    assert all(
        "TEAMS_SECRET_ARN" in f["Properties"]["Environment"]["Variables"]
        for f in functions
        if "notify" in json.dumps(f)
    )


def test_only_intake_slack_and_finalize_start_approvals_each_on_the_approval_state_machine_alone(
    body: dict[str, Any],
) -> None:
    """The helpdesk's approvals start executions from the Slack function (the form's first step)
    and Finalize (each next step); by the machine's ARN, never a wildcard."""
    starters: dict[str, str] = {}
    for name, policy in resources(body, "AWS::IAM::Policy").items():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if "states:StartExecution" in actions:
                starters[name] = json.dumps(statement["Resource"])
    assert sorted(n.split("Role")[0] for n in starters) == ["ApiIntake", "ApiSlack", "ApprovalFinalize"]
    for name, resource in starters.items():
        assert "*" not in resource and ("-approval" in resource or "ApprovalStateMachine" in resource), name

"""Bedrock permissions exist only when helpdesk.yaml opts in, on the Slack function (where the lazy
helpdesk half runs) alone, and only for the configured model id and Knowledge Base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from app import ROOT
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from signoff.domain.helpdesk.config import ModelSettings
from signoff.domain.policy import load_policy
from signoff_infra.bedrock import grant_helpdesk_models
from signoff_infra.stack import SignoffStack

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]

MODEL_ID = "anthropic.claude-3-5-haiku-20241022-v1:0"
BEDROCK = ModelSettings.model_validate(
    {"provider": "bedrock", "bedrock": {"model_id": MODEL_ID, "knowledge_base_id": "KBID012345"}}
)


def _statements(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(policy's logical id, statement) for every IAM policy statement in the template."""
    found = []
    for logical_id, resource in body["Resources"].items():
        if resource["Type"] == "AWS::IAM::Policy":
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                found.append((logical_id, statement))
    return found


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_the_shipped_embedded_helpdesk_grants_no_bedrock_permission(body: dict[str, Any]) -> None:
    assert "bedrock:" not in json.dumps(body)


def test_opting_in_grants_invoke_on_the_model_and_retrieve_on_the_knowledge_base_only(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path / "out"))
    stack = SignoffStack(
        app,
        "SignoffBedrock",
        policy=load_policy(ROOT / "signoff.yaml"),
        policy_path=ROOT / "signoff.yaml",
        routing_path=ROOT / "routing.yaml",
        helpdesk_model=BEDROCK,
        env=cdk.Environment(account="123456789012", region="eu-west-1"),
    )
    body = Template.from_stack(stack).to_json()
    bedrock = [(pid, s) for pid, s in _statements(body) if any(a.startswith("bedrock:") for a in _actions(s))]

    # Two statements, both on the Slack function's role
    slack_role = stack.resolve(stack.api.slack.role.role_name)["Ref"]
    assert len(bedrock) == 2
    for policy_id, _ in bedrock:
        assert body["Resources"][policy_id]["Properties"]["Roles"] == [{"Ref": slack_role}]
    by_action = {tuple(_actions(s)): s["Resource"] for _, s in bedrock}
    assert by_action == {
        ("bedrock:InvokeModel",): {
            "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":bedrock:eu-west-1::foundation-model/{MODEL_ID}"]]
        },
        ("bedrock:Retrieve",): {
            "Fn::Join": [
                "",
                ["arn:", {"Ref": "AWS::Partition"}, ":bedrock:eu-west-1:123456789012:knowledge-base/KBID012345"],
            ]
        },
    }


def test_an_inference_profile_grants_the_profile_and_its_foundation_model() -> None:
    stack = cdk.Stack(cdk.App(), "Profile", env=cdk.Environment(account="123456789012", region="us-east-1"))
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    settings = ModelSettings.model_validate({"provider": "bedrock", "bedrock": {"model_id": "us." + MODEL_ID}})

    [statement] = grant_helpdesk_models(role, settings)

    resources = [stack.resolve(r) for r in statement.resources]
    text = json.dumps(resources)
    assert f"inference-profile/us.{MODEL_ID}" in text
    assert f"bedrock:*::foundation-model/{MODEL_ID}" in text
    assert len(resources) == 2


def test_the_embedded_provider_adds_nothing() -> None:
    stack = cdk.Stack(cdk.App(), "Embedded")
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))

    assert grant_helpdesk_models(role, ModelSettings()) == []
    assert "bedrock" not in json.dumps(Template.from_stack(stack).to_json())


def test_a_cross_region_inference_profile_passes_cdk_nag(tmp_path: Path) -> None:
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App(outdir=str(tmp_path / "out"))
    profile = ModelSettings.model_validate({"provider": "bedrock", "bedrock": {"model_id": "us." + MODEL_ID}})
    SignoffStack(
        app,
        "SignoffProfile",
        policy=load_policy(ROOT / "signoff.yaml"),
        policy_path=ROOT / "signoff.yaml",
        routing_path=ROOT / "routing.yaml",
        helpdesk_model=profile,
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))

    app.synth()  # raises ValidationFailed on an unacknowledged finding

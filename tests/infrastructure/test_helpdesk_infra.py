"""The helpdesk's infrastructure: a ticketing secret only the Slack function reads, the Ticketing
port's system and URL chosen at synth, and a sweeper that may escalate hand-offs (write the table,
read the Slack secret)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from app import ROOT
from aws_cdk.assertions import Template

from signoff.domain.policy import load_policy
from signoff_infra.stack import SignoffStack

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]


def resources(body: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in body["Resources"].items() if r["Type"] == type_}


def function(body: dict[str, Any], name: str) -> tuple[str, dict[str, Any]]:
    """(logical id, properties) of the function built from functions/<name>."""
    found = [
        (k, r["Properties"])
        for k, r in resources(body, "AWS::Lambda::Function").items()
        if f"signoff {name}" in json.dumps(body["Resources"][r["Properties"]["Role"]["Fn::GetAtt"][0]])
    ]
    assert len(found) == 1, name
    return found[0]


def ticketing_secret(body: dict[str, Any]) -> str:
    found = [k for k, s in resources(body, "AWS::SecretsManager::Secret").items() if "ticketing" in json.dumps(s)]
    assert len(found) == 1
    return found[0]


def readers_of(body: dict[str, Any], secret: str) -> set[str]:
    """The roles whose policies allow reading `secret`."""
    roles = set()
    for policy in resources(body, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if "secretsmanager:GetSecretValue" in statement["Action"] and {"Ref": secret} in (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            ):
                roles |= {r["Ref"] for r in policy["Properties"]["Roles"]}
    return roles


def actions_on_table(body: dict[str, Any], role: str) -> set[str]:
    table = next(
        k for k, t in resources(body, "AWS::DynamoDB::Table").items() if "GlobalSecondaryIndexes" in t["Properties"]
    )
    found: set[str] = set()
    for policy in resources(body, "AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if table in json.dumps(statement["Resource"]):
                found |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    return found


def synth(tmp_path: Path, **context: Any) -> dict[str, Any]:
    app = cdk.App(outdir=str(tmp_path / "out"), context=context)
    stack = SignoffStack(
        app,
        "SignoffHelpdesk",
        policy=load_policy(ROOT / "signoff.yaml"),
        policy_path=ROOT / "signoff.yaml",
        routing_path=ROOT / "routing.yaml",
    )
    return Template.from_stack(stack).to_json()


def test_only_the_slack_function_reads_the_ticketing_secret(body: dict[str, Any]) -> None:
    secret = ticketing_secret(body)
    shape = json.dumps(body["Resources"][secret]["Properties"])
    assert '\\"user\\"' in shape and '\\"token\\"' in shape  # {"user", "token"}: what the adapters read
    slack_id, slack = function(body, "slack")
    variables = slack["Environment"]["Variables"]
    assert variables["TICKETING_SECRET_ARN"] == {"Ref": secret}
    assert "TICKETING_SYSTEM" not in variables  # no system chosen: hand-offs go to the thread only
    assert readers_of(body, secret) == {slack["Role"]["Fn::GetAtt"][0]}


def test_the_sweeper_can_escalate_hand_offs(body: dict[str, Any]) -> None:
    _, sweeper = function(body, "sweeper")
    role = sweeper["Role"]["Fn::GetAtt"][0]
    variables = sweeper["Environment"]["Variables"]
    assert "SLACK_SECRET_ARN" in variables and "SIGNOFF_HELPDESK_PATH" in variables
    slack_secret = variables["SLACK_SECRET_ARN"]["Ref"]
    assert role in readers_of(body, slack_secret)
    assert {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:GetItem"} <= actions_on_table(body, role)


def test_the_ticketing_system_and_its_url_are_chosen_at_synth(tmp_path: Path) -> None:
    body = synth(tmp_path, ticketing="jira", ticketing_url="https://lumen.atlassian.net")

    _, slack = function(body, "slack")
    variables = slack["Environment"]["Variables"]
    assert variables["TICKETING_SYSTEM"] == "jira"
    assert variables["TICKETING_URL"] == "https://lumen.atlassian.net"
    assert variables["TICKETING_SECRET_ARN"] == {"Ref": ticketing_secret(body)}


@pytest.mark.parametrize(
    "context",
    [{"ticketing": "zendesk", "ticketing_url": "https://x.zendesk.com"}, {"ticketing": "jira"},
     {"ticketing": "jira", "ticketing_url": "http://lumen.atlassian.net"}],
)  # fmt: skip
def test_a_wrong_ticketing_choice_stops_synthesis(tmp_path: Path, context: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="-c ticketing must be one of jira, servicenow"):
        synth(tmp_path, **context)

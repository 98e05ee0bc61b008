"""The local stack's parse-once patch of moto's interpreter (infra/local/moto_interpreter.py): a
definition is parsed once, and concurrent executions of it still decide independently (a Choice
state keeps per-run state while it evaluates, so each execution needs its own program)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse import asl_parser

from local import moto_interpreter

pytestmark = pytest.mark.integration
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/sfn"
# A Choice per input, then a Map whose items each pass their own Choice: all per-run state.
DEFINITION = json.dumps(
    {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.n", "NumericGreaterThan": 5, "Next": "Big"}],
                "Default": "Small",
            },
            "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "Next": "Each"},
            "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "Next": "Each"},
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ResultPath": "$.items",
                "Iterator": {
                    "StartAt": "Odd",
                    "States": {
                        "Odd": {
                            "Type": "Choice",
                            "Choices": [{"Variable": "$", "NumericEquals": 1, "Next": "One"}],
                            "Default": "Other",
                        },
                        "One": {"Type": "Pass", "Result": "one", "End": True},
                        "Other": {"Type": "Pass", "Result": "other", "End": True},
                    },
                },
                "End": True,
            },
        },
    }
)


def output(sfn: Any, arn: str) -> dict[str, Any]:
    for _ in range(200):
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            assert described["status"] == "SUCCEEDED", described
            result: dict[str, Any] = json.loads(described["output"])
            return result
        time.sleep(0.05)
    raise AssertionError(f"{arn} still running")


def test_parsed_once_and_every_execution_decides_on_its_own_input(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[str] = []
    original = asl_parser.AmazonStateLanguageParser.parse

    def counted(definition: str) -> Any:
        parses.append(definition)
        return original(definition)

    monkeypatch.setattr(asl_parser.AmazonStateLanguageParser, "parse", staticmethod(counted))
    moto_interpreter.install()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(name="choices", definition=DEFINITION, roleArn=ROLE)["stateMachineArn"]
        validated = len(parses)  # create_state_machine validates by parsing, as moto always does
        inputs = [{"n": n, "items": [n % 3, 1, n]} for n in range(12)]
        arns = [
            sfn.start_execution(stateMachineArn=machine, name=f"run-{i}", input=json.dumps(body))["executionArn"]
            for i, body in enumerate(inputs)
        ]
        results = [output(sfn, arn) for arn in arns]
    assert [r["size"] for r in results] == ["big" if b["n"] > 5 else "small" for b in inputs]
    assert [r["items"] for r in results] == [["one" if x == 1 else "other" for x in b["items"]] for b in inputs]
    assert len(parses) - validated <= 1  # twelve executions, at most one more parse

"""The approval state machine as CDK synthesizes it, run by moto's Step Functions interpreter with
the real Notify and Finalize steps (on in-memory fakes, answering tokens through the Step Functions
adapter): a chat error that may pass is retried by the state machine and the card posted once; a
refusal goes through the catch to Finalize, which expires the request with the refusal named.

The interpreter's Retry waits are recorded instead of slept; the test waits on an event that
Finalize sets, never on the clock."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

from signoff.adapters.stepfunctions import StepFunctionsWorkflow
from signoff.domain.acts import Act
from signoff.domain.models import Status
from signoff_infra.workflow import ApprovalWorkflow
from tests.gates import BOB, Gates, actor, gates, one_of_one

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]

INTERNAL = {"risk.data_sensitivity": "internal"}  # a hard gate whose card goes to C0RELEASE
ROLE = "arn:aws:iam::123456789012:role/signoff-test"


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    """The synthesized ASL, with each function's ARN left as a `${<logical id>}` placeholder."""
    stack = cdk.Stack(cdk.App(), "WorkflowTest", env=cdk.Environment(account="123456789012", region="us-east-1"))
    layer = lambda_.LayerVersion.from_layer_version_arn(
        stack, "Core", "arn:aws:lambda:us-east-1:123456789012:layer:c:1"
    )
    ApprovalWorkflow(stack, "Approval", layer=layer, environment={}, name="approval-test")
    (machine,) = Template.from_stack(stack).find_resources("AWS::StepFunctions::StateMachine").values()
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return {"text": "".join(_part(p) for p in parts)}


def _part(part: Any) -> str:
    if isinstance(part, str):
        return part
    if "Fn::GetAtt" in part:
        return "${" + str(part["Fn::GetAtt"][0]) + "}"
    pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
    return pseudo[part["Ref"]]


class Interpreter:
    """moto with its interpreter on; Lambda invocations run the given Python functions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.functions: dict[str, Any] = {}
        self.retry_waits: list[float] = []
        monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=self.retry_waits.append))
        registry = self.functions

        def invoke(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
            try:
                return json.dumps(registry[function.function_name](payload)), False, ""
            except Exception as exc:  # noqa: BLE001 - the error Lambda reports, named by its class
                return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), True, ""

        monkeypatch.setattr(LambdaFunction, "_invoke_lambda", invoke)

    def deploy(self, definition: str, steps: dict[str, Any]) -> str:
        lam = boto3.client("lambda")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("handler.py", "")
        for name, run in steps.items():
            arn = lam.create_function(
                FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="handler.handler",
                Code={"ZipFile": buffer.getvalue()},
            )["FunctionArn"]  # fmt: skip
            self.functions[name] = run
            definition = definition.replace("${" + name + "}", arn)
        machine = boto3.client("stepfunctions").create_state_machine(
            name="approval-test", definition=definition, roleArn=ROLE
        )
        return str(machine["stateMachineArn"])


@pytest.fixture
def interpreter(monkeypatch: pytest.MonkeyPatch) -> Iterator[Interpreter]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.client("iam").create_role(RoleName="signoff-test", AssumeRolePolicyDocument="{}")
        yield Interpreter(monkeypatch)


def _run(interpreter: Interpreter, definition: dict[str, Any], g: Gates, cp_id: str, click: bool) -> dict[str, Any]:
    """Start the approval execution of `cp_id`; when `click`, approve as soon as the card is up.
    Returns Finalize's output once it ran."""
    done = threading.Event()
    finalized: dict[str, Any] = {}

    def notify(event: dict[str, Any]) -> dict[str, Any]:
        out = g.steps.notify(event["checkpoint_id"], event["phase"], event["task_token"])
        if click and out["posted"]:
            g.decisions.act(cp_id, actor(BOB), Act.APPROVE)  # an approver quick on the button
        return out

    def finalize(event: dict[str, Any]) -> dict[str, Any]:
        finalized.update(g.steps.finalize(event["checkpoint_id"], event.get("decision")))
        done.set()
        return finalized

    logical = {fn: _logical_id(definition["text"], fn) for fn in ("Notify", "Finalize")}
    arn = interpreter.deploy(definition["text"], {logical["Notify"]: notify, logical["Finalize"]: finalize})
    workflow = StepFunctionsWorkflow(arn)
    g.steps.workflow = g.decisions.workflow = workflow
    # No escalation, and a wait long enough never to end before the click (nor the test).
    workflow.start(cp_id, {"checkpoint_id": cp_id, "first_wait_seconds": 600, "escalation_wait_seconds": 0})
    assert done.wait(timeout=30), "Finalize never ran"
    return finalized


def _logical_id(text: str, function: str) -> str:
    """The placeholder of the approval construct's `function` (e.g. ApprovalNotifyFunction1A2B3C4D)."""
    start = text.index("${Approval" + function)
    return text[start + 2 : text.index("}", start)]


def test_a_chat_outage_is_retried_by_the_state_machine_and_the_card_posted_once(
    interpreter: Interpreter, definition: dict[str, Any]
) -> None:
    # Given Slack failing (after its client's own retries) the first two times Notify posts
    g = gates(one_of_one())
    g.chat.fail("post", "service_unavailable", times=2)
    cp = g.create("hard", INTERNAL)
    # When the approval execution runs
    out = _run(interpreter, definition, g, cp.id, click=True)
    # Then the state machine retried Notify 20 s and 40 s later, the card went out once and the
    # approval made it through
    assert interpreter.retry_waits == [20, 40]
    assert g.chat.attempts["post"] == 3 and [where for where, _ in g.chat.posts] == ["C0RELEASE"]
    assert out["status"] == "APPROVED" and g.repo.get(cp.id).status is Status.APPROVED


def test_a_refusal_is_caught_and_the_request_expires_naming_it(
    interpreter: Interpreter, definition: dict[str, Any]
) -> None:
    # Given a fail-open gate whose only channel does not exist
    g = gates(one_of_one())
    g.chat.unreachable.add("C0RELEASE")
    cp = g.create("hard", INTERNAL)
    # When the approval execution runs
    out = _run(interpreter, definition, g, cp.id, click=False)
    # Then nothing was retried, and Finalize got the catch's error: the request expired saying why
    assert interpreter.retry_waits == []
    assert (out["status"], out["decided_by"], out["reason"]) == (
        "EXPIRED",
        "policy (unreachable)",
        "no approver could be notified: slack channel_not_found on C0RELEASE",
    )

"""Signoff inside your own Step Functions workflow: one Task state that asks Signoff and waits.

    checkpoint = SignoffCheckpointTask(self, "Ask Signoff", intake_function=intake,
                                       request=sfn.JsonPath.object_at("$.checkpoint"))
    definition = prepare.next(checkpoint).next(deploy)

The task resumes with the decision (status, decided_by, conditions, ...) at `result_path` on
approval, and fails with `Signoff.Denied`, `Signoff.Expired` or `Signoff.Cancelled` otherwise
(`Signoff.InvalidRequest` when the request itself is refused): catch them like any error."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

ERRORS = ["Signoff.Denied", "Signoff.Expired", "Signoff.Cancelled", "Signoff.InvalidRequest"]


class SignoffCheckpointTask(tasks.LambdaInvoke):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        intake_function: lambda_.IFunction,
        request: Any,
        result_path: str = "$.signoff",
        timeout: cdk.Duration | None = None,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            lambda_function=intake_function,
            integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
            payload=sfn.TaskInput.from_object(
                {
                    "signoff_checkpoint": request,
                    "task_token": sfn.JsonPath.task_token,
                    # Execution and state name make the idempotency key: a retried task finds the
                    # checkpoint it created instead of asking twice.
                    "execution": sfn.JsonPath.string_at("$$.Execution.Id"),
                    "state": sfn.JsonPath.string_at("$$.State.Name"),
                }
            ),
            result_path=result_path,
            # No heartbeat: Signoff may answer before the intake invocation returns (auto gates).
            task_timeout=sfn.Timeout.duration(timeout) if timeout else None,
        )


class ExampleReleaseWorkflow(Construct):
    """A release pipeline that asks Signoff before deploying (synthesized when the app's
    `example` context or SIGNOFF_EXAMPLE is set; the local stack always runs it)."""

    def __init__(self, scope: Construct, construct_id: str, *, intake_function: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        ask = SignoffCheckpointTask(
            self, "Ask Signoff", intake_function=intake_function, request=sfn.JsonPath.object_at("$.checkpoint")
        )
        deploy = sfn.Pass(
            self,
            "Deploy",
            parameters={
                "deployed": True,
                "checkpoint_id.$": "$.signoff.checkpoint_id",
                "conditions.$": "$.signoff.conditions",
                "approved_by.$": "$.signoff.decided_by",
            },
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=f"{cdk.Stack.of(self).stack_name}-example-release",
            definition_body=sfn.DefinitionBody.from_chainable(ask.next(deploy)),
            tracing_enabled=True,
            timeout=cdk.Duration.days(7),
        )

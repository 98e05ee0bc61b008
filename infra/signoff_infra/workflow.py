"""The approval workflow: a Standard state machine that waits for people with a deadline,
escalates, applies the gate's timeout rule and always finalizes.

  Notify (.waitForTaskToken, TimeoutSecondsPath = veto window or approval deadline)
    ├─ answered ───────────────────────────────────────────────────────────▶ Finalize
    └─ States.Timeout ─▶ escalation? ─ yes ─▶ Escalate (.waitForTaskToken) ─┬▶ Finalize
                                     └ no ──────────────────────────────────┴▶ Timed out ─▶ Finalize
Finalize applies the timeout rule (fail-closed / fail-open / cancel) when nobody decided.

Chat trouble: each surface retries its transient errors (5xx, 429, timeouts) for seconds; one
that outlasts them everywhere fails Notify with `ChatUnavailable`, retried here minutes apart
(it posted nothing, so a retry posts nothing twice). A refusal (channel_not_found, invalid_auth)
fails it with `NobodyReachable`; both, once retries are spent, go to "Approvers unreachable",
which hands Finalize the error so the expiry names it.
JSONPath only: the local interpreter (moto) has no JSONata."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from signoff_infra import nag
from signoff_infra.functions import SignoffFunction

# Notify's transient chat failure (signoff.usecases.workflow_steps.ChatUnavailable): retried at
# 20 s, 40 s and 80 s. About 2.5 minutes of a chat outage are absorbed before the request expires,
# which stays inside the sweeper's 5-minute grace past the deadline (the wait starts when the card
# is posted, so a retried Notify pushes the decision that much later).
CHAT_UNAVAILABLE = "ChatUnavailable"
CHAT_RETRY_INTERVAL = cdk.Duration.seconds(20)
CHAT_RETRY_ATTEMPTS = 3
CHAT_RETRY_BACKOFF = 2


class ApprovalWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        name: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.notify = SignoffFunction(
            self,
            "Notify",
            name="notify",
            description="Approval workflow: keep the task token, post the card or the escalation",
            layer=layer,
            environment=environment,
            # A card per approver's DM, each call with the Slack client's retries (10 s timeout,
            # up to 3 tries with backoff): a timeout mid-way would leave cards posted unrecorded.
            timeout=cdk.Duration.seconds(120),
        )
        self.finalize = SignoffFunction(
            self,
            "Finalize",
            name="finalize",
            description="Approval workflow: timeout rule, card update, webhook, caller's task token, metrics",
            layer=layer,
            environment=environment,
            # The webhook's retries (a 45 s budget), then every card update with its client's retries.
            timeout=cdk.Duration.seconds(120),
        )

        def wait_for_people(state_id: str, phase: str, timeout_path: str) -> tasks.LambdaInvoke:
            return tasks.LambdaInvoke(
                self,
                state_id,
                lambda_function=self.notify.function,
                integration_pattern=sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
                payload=sfn.TaskInput.from_object(
                    {
                        "checkpoint_id": sfn.JsonPath.string_at("$.checkpoint_id"),
                        "phase": phase,
                        "task_token": sfn.JsonPath.task_token,
                    }
                ),
                # No heartbeat: an answer arriving while Notify still runs must not be lost.
                task_timeout=sfn.Timeout.at(timeout_path),
                result_path="$.decision",
            )

        finalize = tasks.LambdaInvoke(
            self,
            "Finalize decision",
            lambda_function=self.finalize.function,
            payload=sfn.TaskInput.from_object(
                {
                    "checkpoint_id": sfn.JsonPath.string_at("$.checkpoint_id"),
                    "decision": sfn.JsonPath.object_at("$.decision"),
                }
            ),
            payload_response_only=True,
            retry_on_service_exceptions=True,
        )
        finalize.add_retry(
            errors=["States.TaskFailed"], interval=cdk.Duration.seconds(2), max_attempts=3, backoff_rate=2
        )

        timed_out = sfn.Pass(
            self, "Nobody decided", result=sfn.Result.from_object({"timed_out": True}), result_path="$.decision"
        )
        timed_out.next(finalize)
        # The caught error goes on to Finalize: its name, and Lambda's error document (Notify's
        # message names who refused and why), so the expiry's reason can say so.
        unreachable = sfn.Pass(
            self,
            "Approvers unreachable",
            parameters={
                "notify_failed": True,
                "error": sfn.JsonPath.string_at("$.error.Error"),
                "cause": sfn.JsonPath.string_at("$.error.Cause"),
            },
            result_path="$.decision",
        )
        unreachable.next(finalize)

        notify = wait_for_people("Wait for approvers", "initial", "$.first_wait_seconds")
        escalate = wait_for_people("Escalate and wait", "escalation", "$.escalation_wait_seconds")
        for task in (notify, escalate):
            task.add_retry(errors=["Lambda.ServiceException", "Lambda.TooManyRequestsException"], max_attempts=3)
            task.add_retry(
                errors=[CHAT_UNAVAILABLE],
                interval=CHAT_RETRY_INTERVAL,
                max_attempts=CHAT_RETRY_ATTEMPTS,
                backoff_rate=CHAT_RETRY_BACKOFF,
            )
        escalate.add_catch(timed_out, errors=["States.Timeout"], result_path="$.timeout")
        escalate.add_catch(timed_out, errors=["States.ALL"], result_path="$.error")
        escalate.next(finalize)

        has_escalation = (
            sfn.Choice(self, "Escalation route?")
            .when(sfn.Condition.number_greater_than("$.escalation_wait_seconds", 0), escalate)
            .otherwise(timed_out)
        )
        notify.add_catch(has_escalation, errors=["States.Timeout"], result_path="$.timeout")
        # Nobody was told (chat refused, still down after retries, no destination): expire rather
        # than wait for nobody.
        notify.add_catch(unreachable, errors=["States.ALL"], result_path="$.error")
        notify.next(finalize)

        for fn in (self.notify, self.finalize):
            # Step Functions' grant covers the function's versions and aliases too (`<arn>:*`).
            nag.acknowledge(self, f"AwsSolutions-IAM5[Resource::<{nag.logical_id(fn.function)}.Arn>:*]", nag.VERSIONS)
        self.log_group = logs.LogGroup(
            self, "Logs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(notify),
            tracing_enabled=True,
            # A gate waits a year at most (the Standard limit); policies validate their waits below it.
            timeout=cdk.Duration.days(365),
            # Every transition is logged, without execution data: inputs carry task tokens.
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )

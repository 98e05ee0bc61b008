"""The REST API: IAM (SigV4) auth on every checkpoint and scoring route, access logs, tracing,
and the intake and scoring functions behind it."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from signoff_infra import nag
from signoff_infra.data import DataTables
from signoff_infra.functions import SignoffFunction

STAGE = "live"
API_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
# Throttling at the stage (requests per second, burst). The chat routes are open to the internet
# (their signature is checked in the function), so a flood of unsigned requests is throttled at
# the edge, per route, before it costs a Lambda invocation; the signed IAM routes get the default.
DEFAULT_RATE, DEFAULT_BURST = 200, 400
CHAT_RATE, CHAT_BURST = 50, 100
SLACK_ROUTE, TEAMS_ROUTE = "/v1/slack/events", "/v1/teams/messages"
# Each chat callback's reserved concurrency: a flood that gets past the throttle can use at most
# this many of the account's concurrent executions, and intake keeps the rest.
CHAT_CONCURRENCY = 20


class SignoffApi(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: DataTables,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        teams: bool = False,
        helpdesk_environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.intake = SignoffFunction(
            self,
            "Intake",
            name="intake",
            description="POST/GET /v1/checkpoints*: score, gate and store checkpoint requests",
            layer=layer,
            environment=environment,  # an Idempotency-Key names the checkpoint: no idempotency table
        )

        self.slack = SignoffFunction(
            self,
            "Slack",
            name="slack",
            description="POST /v1/slack/events: Slack interactivity, slash commands and events",
            layer=layer,
            # The helpdesk claims each Events API delivery there (retries change nothing).
            environment={
                **environment,
                "IDEMPOTENCY_TABLE_NAME": data.idempotency.table_name,
                **(helpdesk_environment or {}),  # the Ticketing port's system, URL and secret
            },
            reserved_concurrency=CHAT_CONCURRENCY,
            timeout=cdk.Duration.seconds(30),
        )
        data.idempotency.grant_read_write_data(self.slack.function)
        # Bolt's lazy listeners re-invoke this function asynchronously. A separate policy keeps the
        # function's ARN out of its own role's default policy (which would be a circular dependency).
        iam.Policy(
            self,
            "SlackSelfInvoke",
            roles=[self.slack.role],
            statements=[
                iam.PolicyStatement(
                    actions=["lambda:InvokeFunction", "lambda:GetFunction"],
                    resources=[self.slack.function.function_arn],
                )
            ],
        )

        self.scoring = SignoffFunction(
            self,
            "Scoring",
            name="scoring",
            description="POST /v1/score: the decision engine as a dry run (stores nothing)",
            layer=layer,
        )

        access_logs = logs.LogGroup(
            self, "AccessLogs", retention=logs.RetentionDays.THREE_MONTHS, removal_policy=cdk.RemovalPolicy.DESTROY
        )
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name="signoff",
            description="Signoff: may this automation run?",
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.DESTROY,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                tracing_enabled=True,
                throttling_rate_limit=DEFAULT_RATE,
                throttling_burst_limit=DEFAULT_BURST,
                method_options={
                    f"{route}/POST": apigw.MethodDeploymentOptions(
                        throttling_rate_limit=CHAT_RATE, throttling_burst_limit=CHAT_BURST
                    )
                    for route in ([SLACK_ROUTE, TEAMS_ROUTE] if teams else [SLACK_ROUTE])
                },
                logging_level=apigw.MethodLoggingLevel.ERROR,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
            # Pipelines sign with SigV4; the caller's IAM identity is the `caller` of a checkpoint.
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        # Basic validation at the edge; bodies are validated with field-level errors by the handlers.
        validator = self.rest_api.add_request_validator(
            "Basic", validate_request_parameters=True, validate_request_body=True
        )
        intake = apigw.LambdaIntegration(self.intake.function)
        scoring = apigw.LambdaIntegration(self.scoring.function)

        v1 = self.rest_api.root.add_resource("v1")
        checkpoints = v1.add_resource("checkpoints")
        checkpoints.add_method("POST", intake, request_validator=validator)
        checkpoints.add_method("GET", intake, request_validator=validator)
        one = checkpoints.add_resource("{checkpoint_id}")
        one.add_method("GET", intake, request_validator=validator)
        one.add_resource("events").add_method("GET", intake, request_validator=validator)
        one.add_resource("outcome").add_method("POST", intake, request_validator=validator)
        one.add_resource("cancel").add_method("POST", intake, request_validator=validator)
        v1.add_resource("score").add_method("POST", scoring, request_validator=validator)
        # The schema is public documentation: no credentials needed to read it.
        openapi = v1.add_resource("openapi.json").add_method(
            "GET", intake, authorization_type=apigw.AuthorizationType.NONE, request_validator=validator
        )
        nag.acknowledge(openapi, "AwsSolutions-APIG4", nag.PUBLIC_SCHEMA)
        # Slack cannot sign with SigV4: its request signature (verified by the handler) is the proof.
        slack_events = (
            v1.add_resource("slack")
            .add_resource("events")
            .add_method(
                "POST",
                apigw.LambdaIntegration(self.slack.function),
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
            )
        )
        nag.acknowledge(slack_events, "AwsSolutions-APIG4", nag.SLACK_SIGNED)
        nag.acknowledge(self.rest_api, nag.managed_policy_finding(API_LOGS_POLICY), nag.API_LOGS_ROLE)
        self.teams = self._teams(v1, data, layer, environment, validator) if teams else None

    def _teams(
        self,
        v1: apigw.Resource,
        data: DataTables,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        validator: apigw.RequestValidator,
    ) -> SignoffFunction:
        """POST /v1/teams/messages: the Bot Connector's activities (its RS256 JWT is the proof)."""
        teams = SignoffFunction(
            self,
            "Teams",
            name="teams",
            description="POST /v1/teams/messages: Teams Action.Execute invokes and installation events",
            layer=layer,
            reserved_concurrency=CHAT_CONCURRENCY,
            environment={**environment, "IDEMPOTENCY_TABLE_NAME": data.idempotency.table_name},
            timeout=cdk.Duration.seconds(30),
        )
        # Retried activities are kept out through the idempotency table (it has the TTL).
        data.idempotency.grant_read_write_data(teams.function)
        # Slow follow-ups (other cards, thread replies) run in an async self-invocation.
        iam.Policy(
            self,
            "TeamsSelfInvoke",
            roles=[teams.role],
            statements=[
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[teams.function.function_arn])
            ],
        )
        route = (
            v1.add_resource("teams")
            .add_resource("messages")
            .add_method(
                "POST",
                apigw.LambdaIntegration(teams.function),
                authorization_type=apigw.AuthorizationType.NONE,
                request_validator=validator,
            )
        )
        nag.acknowledge(route, "AwsSolutions-APIG4", nag.TEAMS_SIGNED)
        return teams

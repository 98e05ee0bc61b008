"""One helper for every Signoff function: the same runtime, layer, tracing, log group with
retention and a role that can write only to that log group."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from signoff_infra.layer import HELPDESK_IN_LAYER, POLICY_IN_LAYER, ROUTING_IN_LAYER, RUNTIME

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


class SignoffFunction(Construct):
    """`functions/<name>/handler.py` as a Lambda function on the core layer."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        description: str,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str] | None = None,
        timeout: cdk.Duration | None = None,
        memory_size: int = 512,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "Logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY)
        # An explicit role instead of AWSLambdaBasicExecutionRole: logs go to this group only.
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=f"signoff {name}"
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler="handler.handler",
            code=lambda_.Code.from_asset(str(FUNCTIONS / name), exclude=["__pycache__", "*.pyc"]),
            layers=[layer],
            role=self.role,
            log_group=self.log_group,
            memory_size=memory_size,
            timeout=timeout or cdk.Duration.seconds(10),
            tracing=lambda_.Tracing.ACTIVE,
            reserved_concurrent_executions=reserved_concurrency,
            environment={
                "SIGNOFF_POLICY_PATH": POLICY_IN_LAYER,
                "SIGNOFF_ROUTING_PATH": ROUTING_IN_LAYER,
                "SIGNOFF_HELPDESK_PATH": HELPDESK_IN_LAYER,  # knowledge/ beside it, in the layer
                "POWERTOOLS_SERVICE_NAME": "signoff",
                "POWERTOOLS_METRICS_NAMESPACE": "Signoff",
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(environment or {}),
            },
        )

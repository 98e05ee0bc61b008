"""SignoffStack: composes one construct per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from signoff.domain.helpdesk.config import ModelSettings, load_helpdesk_config
from signoff.domain.policy import LoadedPolicy
from signoff_infra import nag
from signoff_infra.api import SignoffApi
from signoff_infra.audit import AuditArchive
from signoff_infra.bedrock import grant_helpdesk_models
from signoff_infra.data import DataTables
from signoff_infra.embed import ExampleReleaseWorkflow
from signoff_infra.github_oidc import GitHubOidcAccess
from signoff_infra.layer import HELPDESK_PATH, SHADOW_POLICY_IN_LAYER, CoreLayer
from signoff_infra.monitoring import Monitoring
from signoff_infra.secrets import Secrets
from signoff_infra.waf import ApiFirewall
from signoff_infra.workflow import ApprovalWorkflow

TASK_ANSWERS = ["states:SendTaskSuccess", "states:SendTaskFailure"]
EMBEDDERS = (
    "Workflows embedding a checkpoint are other applications' state machines in this account; their task tokens "
    "are answered with SendTaskSuccess/Failure, whose resource is the caller's state machine, unknown here."
)


class SignoffStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: LoadedPolicy,
        policy_path: Path,
        routing_path: Path,
        helpdesk_path: Path = HELPDESK_PATH,
        shadow_policy: LoadedPolicy | None = None,
        shadow_policy_path: Path | None = None,
        example: bool = False,
        teams: bool = False,
        helpdesk_model: ModelSettings | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.policy = policy
        # Which models the helpdesk uses (helpdesk.yaml's `model`): Bedrock permissions only if it opts in.
        self.helpdesk_model = helpdesk_model or load_helpdesk_config(HELPDESK_PATH).config.model
        self.data = DataTables(self, "Data")
        self.secrets = Secrets(self, "Secrets", teams=teams)
        self.core = CoreLayer(
            self,
            "Core",
            policy_path=policy_path,
            routing_path=routing_path,
            helpdesk_path=helpdesk_path,
            shadow_policy_path=shadow_policy_path,
        )

        # Named up front so functions can know the ARN without depending on the state machine
        # (which depends on them).
        approval_name = f"{self.stack_name}-approval"
        self.approval_arn = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=approval_name,
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        self.embedders_arn = self.format_arn(
            service="states", resource="stateMachine", resource_name="*", arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME
        )
        env = {
            "TABLE_NAME": self.data.table.table_name,
            "APPROVAL_STATE_MACHINE_ARN": self.approval_arn,
            "SLACK_SECRET_ARN": self.secrets.slack.secret_arn,
            "CALLBACK_SECRET_ARN": self.secrets.webhook.secret_arn,
        }
        if self.secrets.teams is not None:
            env["TEAMS_SECRET_ARN"] = self.secrets.teams.secret_arn  # Teams is a surface: post there too
        if shadow_policy_path is not None:
            env["SIGNOFF_SHADOW_POLICY_PATH"] = SHADOW_POLICY_IN_LAYER  # evaluated beside, never acts
        # Finalize carries a helpdesk approval on (its conversation, the next step, the executor).
        workflow_env = {**env, "IDEMPOTENCY_TABLE_NAME": self.data.idempotency.table_name}
        self.workflow = ApprovalWorkflow(
            self, "Approval", layer=self.core.layer, environment=workflow_env, name=approval_name
        )
        self.api = SignoffApi(
            self,
            "Api",
            data=self.data,
            layer=self.core.layer,
            environment=env,
            teams=teams,
            helpdesk_environment=self._ticketing_environment(),
        )
        if self.node.try_get_context("waf") in (True, "true", "1"):
            # Optional: rate-based rules and IP reputation in front of the stage (`-c waf=true`).
            ApiFirewall(self, "Firewall", api=self.api.rest_api)
        if repositories := self.node.try_get_context("githubRepositories"):
            # Optional: GitHub Actions jobs may ask Signoff, with OIDC (`-c githubRepositories=owner/name,...
            # -c githubBranches=main,release/*`); the role's ARN is the action's role-arn.
            branches = str(self.node.try_get_context("githubBranches") or "main").split(",")
            github = GitHubOidcAccess(
                self, "GitHub", api=self.api.rest_api, repositories=str(repositories).split(","), branches=branches
            )
            cdk.CfnOutput(self, "GitHubRoleArn", value=github.role.role_arn)
        self._grant()
        # The audit archive: S3 (Object Lock with `-c archive_object_lock_days=N`), Glue, Athena.
        lock_days = self.node.try_get_context("archive_object_lock_days")
        self.audit = AuditArchive(
            self,
            "Audit",
            table=self.data.table,
            layer=self.core.layer,
            environment={},  # the archiver needs only ARCHIVE_BUCKET, which the construct sets
            object_lock_days=int(lock_days) if lock_days else None,
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            api=self.api.rest_api,
            functions={
                "intake": self.api.intake.function,
                "scoring": self.api.scoring.function,
                "slack": self.api.slack.function,
                "notify": self.workflow.notify.function,
                "finalize": self.workflow.finalize.function,
                **({"teams": self.api.teams.function} if self.api.teams else {}),
            },
            approval_state_machine=self.workflow.state_machine,
            sweeper_layer=self.core.layer,
            # The sweeper also pings the on-call of unclaimed helpdesk hand-offs (in Slack).
            sweeper_environment={
                "TABLE_NAME": self.data.table.table_name,
                "SLACK_SECRET_ARN": self.secrets.slack.secret_arn,
            },
            table=self.data.table,
            archiver=self.audit.archiver.function,
            archiver_dlq=self.audit.dlq,
            slack_function=self.api.slack.function,
        )
        self._grant_helpdesk()
        if example:
            self.example = ExampleReleaseWorkflow(self, "Example", intake_function=self.api.intake.function)
            nag.acknowledge(self.example, "AwsSolutions-SF1", nag.EXAMPLE_LOGS)
            nag.acknowledge(
                self.example,
                f"AwsSolutions-IAM5[Resource::<{nag.logical_id(self.api.intake.function)}.Arn>:*]",
                nag.VERSIONS,
            )
            cdk.CfnOutput(self, "ExampleStateMachineArn", value=self.example.state_machine.state_machine_arn)
            # A timed-out or aborted embedding execution may be one Signoff never answered.
            self.monitoring.watch_embedding_workflow("ExampleRelease", self.example.state_machine)

        cdk.CfnOutput(self, "ApiUrl", value=self.api.rest_api.url, description="Base URL of the Signoff API")
        cdk.CfnOutput(self, "SlackEventsUrl", value=f"{self.api.rest_api.url}v1/slack/events")
        if self.api.teams is not None:
            cdk.CfnOutput(self, "TeamsMessagesUrl", value=f"{self.api.rest_api.url}v1/teams/messages")
        cdk.CfnOutput(self, "TableName", value=self.data.table.table_name)
        cdk.CfnOutput(self, "IdempotencyTableName", value=self.data.idempotency.table_name)
        cdk.CfnOutput(self, "ApprovalStateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "IntakeFunctionArn", value=self.api.intake.function.function_arn)
        cdk.CfnOutput(self, "SlackSecretArn", value=self.secrets.slack.secret_arn)
        cdk.CfnOutput(self, "ArchiveBucketName", value=self.audit.bucket.bucket_name)
        cdk.CfnOutput(self, "AthenaWorkGroup", value=self.audit.workgroup_name)
        cdk.CfnOutput(self, "GlueDatabase", value=self.audit.database_name)
        cdk.CfnOutput(self, "ArchiverDlqUrl", value=self.audit.dlq.queue_url)
        cdk.CfnOutput(
            self, "AlarmsTopicArn", value=self.monitoring.topic.topic_arn, description="Subscribe the on-call here"
        )
        cdk.CfnOutput(self, "DashboardName", value=self.monitoring.dashboard.dashboard_name)
        cdk.CfnOutput(self, "PolicyVersion", value=policy.version, description="Policy stamped on every decision")
        if shadow_policy is not None:
            cdk.CfnOutput(self, "ShadowPolicyVersion", value=shadow_policy.version, description="Evaluated, never acts")
        nag.acknowledge_stack(self)

    def _ticketing_environment(self) -> dict[str, str]:
        """The helpdesk's Ticketing port: the secret always (filled in after deployment), the system
        and its URL when chosen at synth (`-c ticketing=jira -c ticketing_url=https://<site>.atlassian.net`);
        without them hand-offs go to the thread only."""
        env = {"TICKETING_SECRET_ARN": self.secrets.ticketing.secret_arn}
        system, url = self.node.try_get_context("ticketing"), self.node.try_get_context("ticketing_url")
        if not system:
            return env
        if system not in TICKETING_SYSTEMS or not isinstance(url, str) or not url.startswith("https://"):
            raise ValueError(
                f"-c ticketing must be one of {', '.join(TICKETING_SYSTEMS)} with -c ticketing_url=https://..."
            )
        return {**env, "TICKETING_SYSTEM": system, "TICKETING_URL": url}

    def _grant_helpdesk(self) -> None:
        """The Slack function opens tickets; the sweeper escalates hand-offs (a conversation's
        escalation is a conditional write) and pings the on-call in Slack."""
        self.secrets.ticketing.grant_read(self.api.slack.function)
        sweeper = self.monitoring.sweeper
        # A conversation's save is a transaction of conditional puts: PutItem, nothing else.
        put = iam.PolicyStatement(actions=["dynamodb:PutItem"], resources=[self.data.table.table_arn])
        sweeper.role.add_to_policy(put)
        self.secrets.slack.grant_read(sweeper.function)

    def _grant(self) -> None:
        """Least privilege, per function."""
        table, machine = self.data.table, self.workflow.state_machine
        intake, slack = self.api.intake, self.api.slack
        notify, finalize = self.workflow.notify, self.workflow.finalize
        for fn in (intake, slack, notify, finalize):
            table.grant_read_write_data(fn.function)
        nag.acknowledge(self, f"AwsSolutions-IAM5[Resource::<{nag.logical_id(table)}.Arn>/index/*]", nag.TABLE_INDEXES)
        for fn in (slack, notify, finalize):
            self.secrets.slack.grant_read(fn.function)
        # Finalize signs checkpoint webhooks and helpdesk executor calls; the Slack function signs the
        # executor call of a helpdesk request whose gate is auto (approved as the form is submitted).
        for fn in (finalize, slack):
            self.secrets.webhook.grant_read(fn.function)
        machine.grant_start_execution(intake.function)
        # The helpdesk's approvals: the form's first checkpoint (slack), each next step (finalize). By
        # ARN, not grant_*: the state machine depends on finalize, so finalize's role may not depend on it.
        for fn in (slack, finalize):
            fn.role.add_to_policy(iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.approval_arn]))
        # The approval workflow's own tokens: decisions (chat), cancellations (intake), late notify.
        deciders = (intake, slack, notify, *([self.api.teams] if self.api.teams else []))
        for fn in deciders:
            fn.role.add_to_policy(iam.PolicyStatement(actions=TASK_ANSWERS, resources=[self.approval_arn]))
        if self.api.teams is not None and self.secrets.teams is not None:
            table.grant_read_write_data(self.api.teams.function)
            self.secrets.slack.grant_read(self.api.teams.function)  # its follow-ups refresh Slack cards too
            for fn in (slack, notify, finalize, self.api.teams):
                self.secrets.teams.grant_read(fn.function)
        grant_helpdesk_models(slack.role, self.helpdesk_model)
        # Embedding workflows' tokens: answered at once for auto gates (intake), else by Finalize.
        for fn in (intake, finalize):
            fn.role.add_to_policy(iam.PolicyStatement(actions=TASK_ANSWERS, resources=[self.embedders_arn]))
            nag.acknowledge(fn.role, f"AwsSolutions-IAM5[Resource::{_arn_pattern(self)}]", EMBEDDERS)


TICKETING_SYSTEMS = ("jira", "servicenow")


def _arn_pattern(stack: cdk.Stack) -> str:
    """How cdk-nag writes the account's `stateMachine:*` ARN in its finding ids."""
    return "arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:*"

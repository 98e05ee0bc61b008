"""Monitoring: the pending-checkpoint sweeper, the alarms topic, the alarms and one dashboard with
the executive, on-call and debug rows of the approvals guide.

The business metrics are Powertools EMF metrics in the `Signoff` namespace with the one default
dimension `service=signoff` (signoff.observability): CheckpointRequested and AutoApproved (intake),
GateOpened and Escalated (Notify), Approved, Denied, Expired, Cancelled, ApprovalLatency and
CardUpdateFailed (Finalize), UnauthorizedAttempt (chat decisions), PendingApprovals,
StalledApprovals and UnansweredCallers (sweeper).

Alarms page through one SNS topic; what a missing datapoint means is decided per alarm:
- metrics emitted only when something happens (UnauthorizedAttempt, Lambda Errors, API 5XXError,
  SQS depth of an idle queue): no data means nothing happened, NOT_BREACHING;
- StalledApprovals and UnansweredCallers, emitted by every sweep (zeros included): a missed sweep
  neither raises nor clears the page (IGNORE), and SweeperSilent, BREACHING on missing data, says
  the sweep stopped;
- the approval state machine's ExecutionsFailed / TimedOut / Aborted: any one pages (Finalize
  no longer fails for chat trouble, so a failed execution is a decision that may not have left)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from signoff_infra import nag
from signoff_infra.functions import SignoffFunction

# Must match signoff.observability (the infrastructure tests check it); not imported from there
# because that module builds Powertools' Logger/Tracer/Metrics, which synthesis does not need.
NAMESPACE = "Signoff"
SERVICE = "signoff"

SWEEP_EVERY = cdk.Duration.minutes(5)
FIVE_MINUTES = cdk.Duration.minutes(5)
HOUR = cdk.Duration.hours(1)
DAY = cdk.Duration.days(1)
# DynamoDB streams keep records 24 h: an archiver an hour behind still has 23 h before the archive
# loses events ("the archive holds every event").
ITERATOR_AGE_LIMIT_MS = 3600 * 1000
APPROVAL_RATE_TARGET = 90  # percent, gated checkpoints (the guide's starting target for routine ops)
LATENCY_TARGET_S = 15 * 60  # the guide's "< 15 minutes for prod"
DASHBOARD_WIDTH = 24  # CloudWatch's grid
EXECUTIVE_RANGE = "-P30D"  # the executive row always shows the last 30 days, whatever the picker says


def business_metric(
    name: str, statistic: str = "Sum", period: cdk.Duration = FIVE_MINUTES, label: str | None = None
) -> cw.Metric:
    """One of Signoff's EMF metrics, as Powertools publishes it (namespace + service dimension)."""
    return cw.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={"service": SERVICE},
        statistic=statistic,
        period=period,
        label=label,
    )


class Monitoring(Construct):
    """The sweeper (every 5 minutes), the alarms topic, `alarms` (name -> Alarm) and `dashboard`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: apigw.RestApi,
        functions: dict[str, lambda_.IFunction],
        approval_state_machine: sfn.IStateMachine,
        sweeper_layer: lambda_.ILayerVersion,
        sweeper_environment: dict[str, str],
        table: dynamodb.Table,
        archiver: lambda_.IFunction | None,
        archiver_dlq: sqs.IQueue | None,
        slack_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._alarm_prefix = f"{stack.stack_name}-"
        self.alarms: dict[str, cw.Alarm] = {}

        self.sweeper = self._sweeper(sweeper_layer, sweeper_environment, table)
        self.topic = self._topic(stack)
        self._alarm_action = cw_actions.SnsAction(self.topic)

        self._business_alarms()
        self._platform_alarms(api, slack_function, archiver, archiver_dlq)
        self._workflow_alarms("Approval", approval_state_machine, ("failed", "timed_out", "aborted"))

        watched = {**functions, "sweeper": self.sweeper.function}
        if archiver is not None:
            watched.setdefault("archiver", archiver)
        from signoff_infra.helpdesk_dashboard import helpdesk_rows  # it imports this module's helpers

        self.dashboard = cw.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"{stack.stack_name}-approvals",
            default_interval=cdk.Duration.days(1),  # on-call and debug; executive is pinned
            widgets=[
                *self._executive_rows(),
                *helpdesk_rows(),
                *self._on_call_rows(approval_state_machine),
                *self._debug_rows(api, watched, archiver, archiver_dlq),
            ],
        )

    # -- the sweeper -------------------------------------------------------------------------------

    def _sweeper(
        self, layer: lambda_.ILayerVersion, environment: dict[str, str], table: dynamodb.Table
    ) -> SignoffFunction:
        sweeper = SignoffFunction(
            self,
            "Sweeper",
            name="sweeper",
            description="Every 5 minutes: count pending checkpoints and the ones stalled past their deadline",
            layer=layer,
            environment=environment,
            # Pages through every pending checkpoint (bounded by signoff.usecases.sweeper.MAX_PAGES).
            timeout=cdk.Duration.seconds(60),
        )
        table.grant_read_data(sweeper.function)
        nag.acknowledge(
            sweeper.role, f"AwsSolutions-IAM5[Resource::<{nag.logical_id(table)}.Arn>/index/*]", nag.TABLE_INDEXES
        )
        events.Rule(
            self,
            "SweepSchedule",
            description="Signoff: count pending and stalled checkpoints",
            schedule=events.Schedule.rate(SWEEP_EVERY),
            targets=[
                targets.LambdaFunction(
                    sweeper.function,
                    # A sweep delayed past the next one is worthless: the next one counts afresh.
                    max_event_age=cdk.Duration.minutes(4),
                    retry_attempts=2,
                )
            ],
        )
        return sweeper

    # -- the alarms topic ------------------------------------------------------------------------

    def _topic(self, stack: cdk.Stack) -> sns.Topic:
        # A customer managed key, not alias/aws/sns: CloudWatch cannot publish to a topic encrypted
        # with the AWS managed key (its key policy cannot be changed to let CloudWatch use it).
        key = kms.Key(
            self,
            "AlarmsKey",
            description="Signoff alarms topic",
            enable_key_rotation=True,
            # It only protects alarm notifications in flight; nothing stored needs it later.
            removal_policy=cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(7),
        )
        topic = sns.Topic(self, "AlarmsTopic", display_name="Signoff alarms", master_key=key, enforce_ssl=True)
        # Only this stack's alarms (named "<stack>-…") in this account may use the key and publish:
        # the confused-deputy guard for a service principal.
        cloudwatch = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        conditions = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{self._alarm_prefix}*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }
        key.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=conditions,
            )
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                principals=[cloudwatch], actions=["sns:Publish"], resources=[topic.topic_arn], conditions=conditions
            )
        )
        return topic

    # -- alarms ----------------------------------------------------------------------------------

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        *,
        threshold: float,
        comparison: cw.ComparisonOperator,
        missing: cw.TreatMissingData,
        description: str,
        evaluation_periods: int = 1,
    ) -> cw.Alarm:
        alarm = cw.Alarm(
            self,
            name,
            alarm_name=f"{self._alarm_prefix}{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(self._alarm_action)
        # The all-clear goes to the same people, so nobody chases an alarm that has already cleared.
        alarm.add_ok_action(self._alarm_action)
        self.alarms[name] = alarm
        return alarm

    def _business_alarms(self) -> None:
        above = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
        self._alarm(
            "StalledApprovals",
            business_metric("StalledApprovals", "Maximum"),
            threshold=0,
            comparison=above,
            # Emitted by every sweep; a missed sweep keeps the state (SweeperSilent reports it).
            missing=cw.TreatMissingData.IGNORE,
            description="Checkpoints still PENDING more than 5 minutes past their deadline: their approval "
            "workflow is broken (never started, failed, or Finalize could not write). The sweeper's log lists "
            "their ids; see the approval state machine's failed executions.",
        )
        self._alarm(
            "SweeperSilent",
            business_metric("PendingApprovals", "SampleCount"),
            threshold=1,
            comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            # Every sweep emits PendingApprovals: no sample for 15 minutes means the sweep is not
            # running, so "nothing stalled" cannot be claimed.
            missing=cw.TreatMissingData.BREACHING,
            evaluation_periods=3,
            description="The pending-checkpoint sweeper has reported nothing for 15 minutes: StalledApprovals is "
            "blind. Check the sweeper function's errors and its EventBridge schedule.",
        )
        self._alarm(
            "UnansweredCallers",
            business_metric("UnansweredCallers", "Maximum"),
            threshold=0,
            comparison=above,
            missing=cw.TreatMissingData.IGNORE,  # emitted by every sweep, like StalledApprovals
            description="Checkpoints decided more than 15 minutes ago whose webhook has no delivery on record "
            "(neither delivered nor given up) or whose embedding workflow was never answered: Finalize did not "
            "run to its end. The sweeper's log lists their ids; see the approval execution of each.",
        )
        self._alarm(
            "UnauthorizedAttempt",
            business_metric("UnauthorizedAttempt"),
            threshold=1,
            comparison=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            missing=cw.TreatMissingData.NOT_BREACHING,  # emitted only when an attempt happens
            description="Someone who is not an eligible approver (or the requester, against separation of "
            "duties) tried to act on a checkpoint. Security signal: the audit trail's REFUSED events name them.",
        )

    def watch_embedding_workflow(self, name: str, machine: sfn.IStateMachine) -> None:
        """Alarms on a workflow that embeds a checkpoint (the example release workflow): a timed-out
        or aborted execution may be one Signoff never answered. Its failed executions are not
        watched: Signoff.Denied / Expired / Cancelled fail it by design unless it catches them."""
        self._workflow_alarms(name, machine, ("timed_out", "aborted"))

    def _workflow_alarms(self, name: str, machine: sfn.IStateMachine, ends: tuple[str, ...]) -> None:
        metric = {
            "failed": (machine.metric_failed, "Failed", "failed (a step kept failing after its retries)"),
            "timed_out": (machine.metric_timed_out, "TimedOut", "timed out"),
            "aborted": (machine.metric_aborted, "Aborted", "was stopped"),
        }
        for end in ends:
            measure, suffix, what = metric[end]
            self._alarm(
                f"{name}Executions{suffix}",
                measure(period=FIVE_MINUTES, statistic="Sum"),
                threshold=0,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
                missing=cw.TreatMissingData.NOT_BREACHING,  # reported only when an execution ends so
                description=f"An execution of the {name} state machine {what}: its checkpoint's decision may "
                "not have reached the webhook or the embedding workflow. The execution's history names the "
                "checkpoint (its name); the sweeper's UnansweredCallers follows up.",
            )

    def _platform_alarms(
        self,
        api: apigw.RestApi,
        slack_function: lambda_.IFunction,
        archiver: lambda_.IFunction | None,
        archiver_dlq: sqs.IQueue | None,
    ) -> None:
        above = cw.ComparisonOperator.GREATER_THAN_THRESHOLD
        quiet = cw.TreatMissingData.NOT_BREACHING  # these metrics are absent when nothing ran or failed
        # Callback 5xx, two ways: the Slack function failing (Slack shows the approver an error and
        # the click is lost), and API Gateway answering 5xx on any route (the Slack callback, a
        # pipeline's intake, or a function API Gateway could not reach).
        self._alarm(
            "SlackCallbackErrors",
            slack_function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
            threshold=0,
            comparison=above,
            missing=quiet,
            description="The Slack callback function failed: approvers' clicks may not have been recorded.",
        )
        self._alarm(
            "Api5xx",
            api.metric_server_error(period=FIVE_MINUTES, statistic="Sum"),
            threshold=0,
            comparison=above,
            missing=quiet,
            description="The Signoff API answered 5xx (Slack callback or checkpoint routes).",
        )
        if archiver is not None:
            self._alarm(
                "ArchiverErrors",
                archiver.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=0,
                comparison=above,
                missing=quiet,
                description="The audit archiver failed on a stream batch: it retries, then sends it to its DLQ.",
            )
            self._alarm(
                "ArchiverIteratorAge",
                archiver.metric("IteratorAge", period=FIVE_MINUTES, statistic="Maximum"),
                threshold=ITERATOR_AGE_LIMIT_MS,
                comparison=above,
                missing=quiet,  # reported only while there are records to read
                evaluation_periods=3,
                description="The audit archiver is over an hour behind the table's stream (which keeps 24 h): "
                "fix it before the archive loses events.",
            )
        if archiver_dlq is not None:
            self._alarm(
                "ArchiveDlqDepth",
                archiver_dlq.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES, statistic="Maximum"),
                threshold=0,
                comparison=above,
                missing=quiet,  # SQS stops reporting an idle, empty queue
                description="Audit events the archiver gave up on are waiting in its DLQ: the S3 archive is "
                "missing them until they are replayed.",
            )

    # -- dashboard -------------------------------------------------------------------------------

    def _executive_rows(self) -> list[list[cw.IWidget]]:
        requested = business_metric("CheckpointRequested", period=DAY, label="Requested")
        auto = business_metric("AutoApproved", period=DAY, label="Auto-approved")
        outcome = {
            "approved": business_metric("Approved", period=DAY),
            "denied": business_metric("Denied", period=DAY),
            "expired": business_metric("Expired", period=DAY),
        }
        # FILL: a day with approvals but no denials must still give a rate, not a gap.
        rate = cw.MathExpression(
            expression="100 * FILL(approved, 0) / (FILL(approved, 0) + FILL(denied, 0) + FILL(expired, 0))",
            using_metrics=outcome,
            label="Approved / (approved + denied + expired), %",
            period=DAY,
        )
        gated = cw.MathExpression(
            expression="FILL(requested, 0) - FILL(auto, 0)",
            using_metrics={"requested": requested, "auto": auto},
            label="Gated (soft or hard)",
            period=DAY,
        )
        return [
            [
                _header(
                    "Executive",
                    "The last 30 days, per day. Gated = soft or hard gates (auto gates are decided at once).",
                )
            ],
            [
                cw.GraphWidget(title="Checkpoints requested per day", left=[requested], width=4, start=EXECUTIVE_RANGE),
                cw.GraphWidget(
                    title="Auto vs. gated per day", left=[auto, gated], stacked=True, width=4, start=EXECUTIVE_RANGE
                ),
                cw.SingleValueWidget(
                    title="Approval rate (gated), 30 days, %",
                    metrics=[rate],
                    set_period_to_time_range=True,
                    start=EXECUTIVE_RANGE,
                    width=4,
                ),
                cw.GraphWidget(
                    title="Approval rate (gated) per day, %",
                    left=[rate],
                    left_y_axis=cw.YAxisProps(min=0, max=100),
                    left_annotations=[cw.HorizontalAnnotation(value=APPROVAL_RATE_TARGET, label="target")],
                    width=4,
                    start=EXECUTIVE_RANGE,
                ),
                cw.GraphWidget(
                    title="Approval latency (request to decision), s",
                    left=[
                        business_metric("ApprovalLatency", "p50", DAY, "p50"),
                        business_metric("ApprovalLatency", "p95", DAY, "p95"),
                    ],
                    left_annotations=[cw.HorizontalAnnotation(value=LATENCY_TARGET_S, label="15 min")],
                    width=4,
                    start=EXECUTIVE_RANGE,
                ),
                cw.GraphWidget(
                    title="Expired per day",
                    left=[business_metric("Expired", period=DAY)],
                    width=4,
                    start=EXECUTIVE_RANGE,
                ),
            ],
        ]

    def _on_call_rows(self, machine: sfn.IStateMachine) -> list[list[cw.IWidget]]:
        return [
            [_header("On-call", "What needs a person now: waiting and stalled checkpoints, escalations, refusals.")],
            [
                cw.GraphWidget(
                    title="Pending and stalled approvals",
                    left=[
                        business_metric("PendingApprovals", "Maximum", label="Pending"),
                        business_metric("StalledApprovals", "Maximum", label="Stalled (past deadline + 5 min)"),
                    ],
                    width=6,
                ),
                cw.GraphWidget(title="Escalated", left=[business_metric("Escalated")], width=4),
                cw.GraphWidget(title="Unauthorized attempts", left=[business_metric("UnauthorizedAttempt")], width=4),
                cw.GraphWidget(
                    title="Approval workflow: failed / timed out / aborted",
                    left=[
                        machine.metric_failed(period=FIVE_MINUTES, statistic="Sum", label="Failed"),
                        machine.metric_timed_out(period=FIVE_MINUTES, statistic="Sum", label="Timed out"),
                        machine.metric_aborted(period=FIVE_MINUTES, statistic="Sum", label="Aborted"),
                    ],
                    width=5,
                ),
                cw.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=5, height=6),
            ],
            [
                cw.GraphWidget(
                    title="Decisions not delivered / cards not updated",
                    left=[business_metric("UnansweredCallers", "Maximum", label="Unanswered callers")],
                    right=[business_metric("CardUpdateFailed", label="Cards not updated")],
                    width=8,
                ),
            ],
        ]

    def _debug_rows(
        self,
        api: apigw.RestApi,
        watched: dict[str, lambda_.IFunction],
        archiver: lambda_.IFunction | None,
        archiver_dlq: sqs.IQueue | None,
    ) -> list[list[cw.IWidget]]:
        def per_function(title: str, metric: str, statistic: str) -> cw.GraphWidget:
            lines = [
                fn.metric(metric, period=FIVE_MINUTES, statistic=statistic, label=name) for name, fn in watched.items()
            ]
            return cw.GraphWidget(title=title, left=lines, width=8)

        widgets: list[cw.IWidget] = [
            per_function("Lambda errors", "Errors", "Sum"),
            per_function("Lambda throttles", "Throttles", "Sum"),
            per_function("Lambda duration p99, ms", "Duration", "p99"),
            cw.GraphWidget(
                title="API 4XX / 5XX",
                left=[
                    api.metric_client_error(period=FIVE_MINUTES, statistic="Sum", label="4XX"),
                    api.metric_server_error(period=FIVE_MINUTES, statistic="Sum", label="5XX"),
                ],
                width=6,
            ),
            cw.GraphWidget(
                title="API latency, ms",
                left=[
                    api.metric_latency(period=FIVE_MINUTES, statistic="p50", label="p50"),
                    api.metric_latency(period=FIVE_MINUTES, statistic="p99", label="p99"),
                    api.metric_integration_latency(period=FIVE_MINUTES, statistic="p99", label="integration p99"),
                ],
                width=6,
            ),
        ]
        if archiver is not None:
            widgets.append(
                cw.GraphWidget(
                    title="Archiver iterator age (ms) and errors",
                    left=[
                        archiver.metric("IteratorAge", period=FIVE_MINUTES, statistic="Maximum", label="iterator age")
                    ],
                    right=[archiver.metric_errors(period=FIVE_MINUTES, statistic="Sum", label="errors")],
                    width=6,
                )
            )
        if archiver_dlq is not None:
            widgets.append(
                cw.GraphWidget(
                    title="Archive DLQ depth",
                    left=[
                        archiver_dlq.metric_approximate_number_of_messages_visible(
                            period=FIVE_MINUTES, statistic="Maximum", label="messages"
                        )
                    ],
                    width=6,
                )
            )
        return [[_header("Debug", "Functions, API, audit archive.")], *_rows(widgets)]


def _header(title: str, text: str) -> cw.TextWidget:
    return cw.TextWidget(markdown=f"## {title}\n{text}", width=DASHBOARD_WIDTH, height=2)


def _rows(widgets: list[cw.IWidget]) -> list[list[cw.IWidget]]:
    """Widgets in rows no wider than the grid, in order."""
    rows: list[list[cw.IWidget]] = [[]]
    used: float = 0  # jsii types widths as numbers
    for widget in widgets:
        if used + widget.width > DASHBOARD_WIDTH:
            rows.append([])
            used = 0
        rows[-1].append(widget)
        used += widget.width
    return rows

"""The Monitoring construct on a minimal stack, with cdk-nag's AwsSolutions checks as a validation
plugin (an unacknowledged finding fails synthesis): the sweeper and its schedule, the alarms topic,
each alarm's metric, threshold, missing-data rule and action, and the dashboard's three rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from signoff import observability
from signoff_infra import monitoring, nag
from signoff_infra.layer import RUNTIME, CoreLayer
from signoff_infra.monitoring import Monitoring
from tests.helpers import REPO_ROOT

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]

STACK = "MonitoringTest"
BUSINESS = [
    "CheckpointRequested",
    "AutoApproved",
    "GateOpened",
    "Approved",
    "Denied",
    "Expired",
    "Escalated",
    "UnauthorizedAttempt",
    "ApprovalLatency",
    "PendingApprovals",
    "StalledApprovals",
    "UnansweredCallers",
    "CardUpdateFailed",
]
# Scaffolding only: these stand in for the real stack's resources, which carry their own rules.
TEST_ONLY = "Test scaffolding standing in for a resource of the real stack; not what the construct under test creates."


def _function(scope: cdk.Stack, name: str) -> lambda_.Function:
    role = iam.Role(scope, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    return lambda_.Function(
        scope,
        name,
        runtime=RUNTIME,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context):\n    return event\n"),
        role=role,
    )


def _api(scope: cdk.Stack) -> apigw.RestApi:
    api = apigw.RestApi(
        scope,
        "Api",
        rest_api_name="monitoring-test",
        cloud_watch_role=False,
        deploy_options=apigw.StageOptions(
            tracing_enabled=True,
            logging_level=apigw.MethodLoggingLevel.ERROR,
            access_log_destination=apigw.LogGroupLogDestination(logs.LogGroup(scope, "ApiLogs")),
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
        default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
    )
    validator = api.add_request_validator("Basic", validate_request_parameters=True, validate_request_body=True)
    api.root.add_method("GET", apigw.MockIntegration(), request_validator=validator)
    nag.acknowledge(api, "AwsSolutions-APIG3", TEST_ONLY)
    return api


def _machine(scope: cdk.Stack) -> sfn.StateMachine:
    return sfn.StateMachine(
        scope,
        "Approval",
        definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(scope, "Wait for people")),
        tracing_enabled=True,
        logs=sfn.LogOptions(destination=logs.LogGroup(scope, "MachineLogs"), level=sfn.LogLevel.ALL),
    )


def _table(scope: cdk.Stack) -> dynamodb.Table:
    table = dynamodb.Table(
        scope,
        "Checkpoints",
        partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True
        ),
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    table.add_global_secondary_index(
        index_name="by-status",
        partition_key=dynamodb.Attribute(name="status_pk", type=dynamodb.AttributeType.STRING),
        sort_key=dynamodb.Attribute(name="status_sk", type=dynamodb.AttributeType.STRING),
    )
    return table


def _dlq(scope: cdk.Stack) -> sqs.Queue:
    queue = sqs.Queue(scope, "ArchiveDlq", enforce_ssl=True, encryption=sqs.QueueEncryption.SQS_MANAGED)
    nag.acknowledge(queue, "AwsSolutions-SQS3", TEST_ONLY)  # it is the dead-letter queue
    return queue


def _synthesize(outdir: Path) -> tuple[Monitoring, dict[str, Any]]:
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, STACK, env=cdk.Environment(account="123456789012", region="us-east-1"))
    table = _table(stack)
    slack, intake, archiver = (_function(stack, n) for n in ("Slack", "Intake", "Archiver"))
    layer = CoreLayer(stack, "Core", policy_path=REPO_ROOT / "signoff.yaml", routing_path=REPO_ROOT / "routing.yaml")
    built = Monitoring(
        stack,
        "Monitoring",
        api=_api(stack),
        functions={"intake": intake, "slack": slack},
        approval_state_machine=_machine(stack),
        sweeper_layer=layer.layer,
        sweeper_environment={"TABLE_NAME": table.table_name},
        table=table,
        archiver=archiver,
        archiver_dlq=_dlq(stack),
        slack_function=slack,
    )
    # The real stack's stack-wide acknowledgements (X-Ray's Resource::*, WAF, Cognito).
    nag.acknowledge_stack(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises on any unacknowledged AwsSolutions finding
    return built, json.loads((outdir / f"{STACK}.template.json").read_text())


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Monitoring, dict[str, Any]]:
    return _synthesize(tmp_path_factory.mktemp("monitoring.out"))


@pytest.fixture(scope="module")
def body(synthesized: tuple[Monitoring, dict[str, Any]]) -> dict[str, Any]:
    return synthesized[1]


@pytest.fixture(scope="module")
def template(body: dict[str, Any]) -> Template:
    return Template.from_json(body)


def _resources(body: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in body["Resources"].items() if r["Type"] == type_}


def _one(body: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = _resources(body, type_)
    assert len(found) == 1, f"{type_}: {sorted(found)}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource["Properties"]


def _logical_id(prefix: str, body: dict[str, Any], type_: str) -> str:
    (found,) = [k for k in _resources(body, type_) if k.startswith(prefix)]
    return found


def _dashboard(body: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body as JSON, with CloudFormation references written as ${LogicalId}."""
    _, props = _one(body, "AWS::CloudWatch::Dashboard")
    parts = props["DashboardBody"]["Fn::Join"][1]

    def text(part: Any) -> str:
        if isinstance(part, str):
            return part
        if "Ref" in part:
            return "${" + str(part["Ref"]) + "}"
        return "${" + ".".join(part["Fn::GetAtt"]) + "}"

    return dict(json.loads("".join(text(p) for p in parts)))


def _alarm(body: dict[str, Any], name: str) -> dict[str, Any]:
    for resource in _resources(body, "AWS::CloudWatch::Alarm").values():
        if resource["Properties"]["AlarmName"] == f"{STACK}-{name}":
            return dict(resource["Properties"])
    raise AssertionError(f"no alarm {name}")


# -- names -------------------------------------------------------------------------------------


def test_dashboard_metrics_use_the_namespace_and_dimension_powertools_publishes() -> None:
    assert (monitoring.NAMESPACE, monitoring.SERVICE) == (observability.NAMESPACE, observability.SERVICE)
    assert observability.metrics.namespace == monitoring.NAMESPACE
    assert observability.metrics.service == monitoring.SERVICE  # Powertools adds it as the "service" dimension


# -- the sweeper -------------------------------------------------------------------------------


def test_a_schedule_runs_the_sweeper_every_five_minutes(template: Template, body: dict[str, Any]) -> None:
    sweeper = _logical_id("MonitoringSweeperFunction", body, "AWS::Lambda::Function")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(5 minutes)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [sweeper, "Arn"]}})],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Permission",
        {"FunctionName": {"Fn::GetAtt": [sweeper, "Arn"]}, "Principal": "events.amazonaws.com"},
    )
    props = body["Resources"][sweeper]["Properties"]
    assert props["Handler"] == "handler.handler"
    assert props["Environment"]["Variables"]["TABLE_NAME"] == {
        "Ref": _logical_id("Checkpoints", body, "AWS::DynamoDB::Table")
    }


def test_the_sweeper_may_only_read_the_table_and_put_items(body: dict[str, Any]) -> None:
    # It puts conversations when it escalates a helpdesk hand-off (a transaction of conditional puts).
    role = _logical_id("MonitoringSweeperRole", body, "AWS::IAM::Role")
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in _resources(body, "AWS::IAM::Policy").values()
        if {"Ref": role} in r["Properties"]["Roles"]
    ]
    actions = {a for statements in policies for s in statements for a in _list(s["Action"])}
    dynamo = {a for a in actions if a.startswith("dynamodb:")}
    reads = ("BatchGet", "Get", "Query", "Scan", "Describe", "Condition")
    assert dynamo and all(a == "dynamodb:PutItem" or a.split(":")[1].startswith(reads) for a in dynamo), dynamo


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- the topic ---------------------------------------------------------------------------------


def test_the_alarms_topic_is_encrypted_with_a_rotated_key_cloudwatch_may_use(body: dict[str, Any]) -> None:
    key_id, key = _one(body, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    _, topic = _one(body, "AWS::SNS::Topic")
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    cloudwatch = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert len(cloudwatch) == 1 and set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert cloudwatch[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


def test_the_topic_accepts_only_tls_and_only_this_stacks_alarms(body: dict[str, Any]) -> None:
    _, policy = _one(body, "AWS::SNS::TopicPolicy")
    statements = policy["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    (publish,) = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert publish["Action"] == "sns:Publish"
    source = publish["Condition"]["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
    assert source == ["arn:", {"Ref": "AWS::Partition"}, f":cloudwatch:us-east-1:123456789012:alarm:{STACK}-*"]
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}


# -- alarms ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "metric", "namespace", "statistic", "operator", "threshold", "missing"),
    [
        ("StalledApprovals", "StalledApprovals", "Signoff", "Maximum", "GreaterThanThreshold", 0, "ignore"),
        ("SweeperSilent", "PendingApprovals", "Signoff", "SampleCount", "LessThanThreshold", 1, "breaching"),
        ("UnansweredCallers", "UnansweredCallers", "Signoff", "Maximum", "GreaterThanThreshold", 0, "ignore"),
        (
            "ApprovalExecutionsFailed",
            "ExecutionsFailed",
            "AWS/States",
            "Sum",
            "GreaterThanThreshold",
            0,
            "notBreaching",
        ),
        (
            "ApprovalExecutionsTimedOut",
            "ExecutionsTimedOut",
            "AWS/States",
            "Sum",
            "GreaterThanThreshold",
            0,
            "notBreaching",
        ),
        (
            "ApprovalExecutionsAborted",
            "ExecutionsAborted",
            "AWS/States",
            "Sum",
            "GreaterThanThreshold",
            0,
            "notBreaching",
        ),
        (
            "UnauthorizedAttempt",
            "UnauthorizedAttempt",
            "Signoff",
            "Sum",
            "GreaterThanOrEqualToThreshold",
            1,
            "notBreaching",
        ),
        ("SlackCallbackErrors", "Errors", "AWS/Lambda", "Sum", "GreaterThanThreshold", 0, "notBreaching"),
        ("Api5xx", "5XXError", "AWS/ApiGateway", "Sum", "GreaterThanThreshold", 0, "notBreaching"),
        ("ArchiverErrors", "Errors", "AWS/Lambda", "Sum", "GreaterThanThreshold", 0, "notBreaching"),
        (
            "ArchiverIteratorAge",
            "IteratorAge",
            "AWS/Lambda",
            "Maximum",
            "GreaterThanThreshold",
            3_600_000,
            "notBreaching",
        ),
        (
            "ArchiveDlqDepth",
            "ApproximateNumberOfMessagesVisible",
            "AWS/SQS",
            "Maximum",
            "GreaterThanThreshold",
            0,
            "notBreaching",
        ),
    ],
)
def test_each_alarm_watches_its_metric_and_notifies_the_topic(
    synthesized: tuple[Monitoring, dict[str, Any]],
    body: dict[str, Any],
    name: str,
    metric: str,
    namespace: str,
    statistic: str,
    operator: str,
    threshold: float,
    missing: str,
) -> None:
    alarm = _alarm(body, name)
    assert (alarm["MetricName"], alarm["Namespace"], alarm["Statistic"]) == (metric, namespace, statistic)
    assert (alarm["ComparisonOperator"], alarm["Threshold"], alarm["TreatMissingData"]) == (
        operator,
        threshold,
        missing,
    )
    assert alarm["Period"] == 300
    topic = {"Ref": _one(body, "AWS::SNS::Topic")[0]}
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    assert alarm["AlarmDescription"]
    assert name in synthesized[0].alarms


def test_business_alarms_watch_the_service_dimension(body: dict[str, Any]) -> None:
    for name in ("StalledApprovals", "SweeperSilent", "UnauthorizedAttempt", "UnansweredCallers"):
        assert _alarm(body, name)["Dimensions"] == [{"Name": "service", "Value": "signoff"}]


def test_execution_alarms_watch_the_approval_state_machine(body: dict[str, Any]) -> None:
    machine = _logical_id("Approval", body, "AWS::StepFunctions::StateMachine")
    for end in ("Failed", "TimedOut", "Aborted"):
        alarm = _alarm(body, f"ApprovalExecutions{end}")
        assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}], end
        assert (alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (1, 1), end


def test_callback_alarms_watch_the_slack_function_and_the_api(body: dict[str, Any]) -> None:
    slack = _logical_id("Slack", body, "AWS::Lambda::Function")
    assert _alarm(body, "SlackCallbackErrors")["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": slack}}]
    assert _alarm(body, "Api5xx")["Dimensions"] == [{"Name": "ApiName", "Value": "monitoring-test"}]
    dlq = _logical_id("ArchiveDlq", body, "AWS::SQS::Queue")
    assert _alarm(body, "ArchiveDlqDepth")["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}
    ]


def test_a_stall_pages_at_once_but_a_silent_sweeper_only_after_three_missed_periods(body: dict[str, Any]) -> None:
    assert (
        _alarm(body, "StalledApprovals")["EvaluationPeriods"],
        _alarm(body, "StalledApprovals")["DatapointsToAlarm"],
    ) == (1, 1)
    assert (_alarm(body, "SweeperSilent")["EvaluationPeriods"], _alarm(body, "SweeperSilent")["DatapointsToAlarm"]) == (
        3,
        3,
    )


def test_without_an_archiver_there_are_no_archive_alarms(tmp_path: Path) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, STACK)
    table = _table(stack)
    slack = _function(stack, "Slack")
    built = Monitoring(
        stack,
        "Monitoring",
        api=_api(stack),
        functions={"slack": slack},
        approval_state_machine=_machine(stack),
        sweeper_layer=lambda_.LayerVersion.from_layer_version_arn(
            stack, "Core", "arn:aws:lambda:us-east-1:123456789012:layer:core:1"
        ),
        sweeper_environment={"TABLE_NAME": table.table_name},
        table=table,
        archiver=None,
        archiver_dlq=None,
        slack_function=slack,
    )
    assert sorted(built.alarms) == [
        "Api5xx",
        "ApprovalExecutionsAborted",
        "ApprovalExecutionsFailed",
        "ApprovalExecutionsTimedOut",
        "SlackCallbackErrors",
        "StalledApprovals",
        "SweeperSilent",
        "UnansweredCallers",
        "UnauthorizedAttempt",
    ]
    # An embedding workflow fails by design when Signoff denies: only its timeouts and aborts page.
    example = sfn.StateMachine(
        stack, "Example", definition_body=sfn.DefinitionBody.from_chainable(sfn.Pass(stack, "Deploy"))
    )
    built.watch_embedding_workflow("Example", example)
    assert {"ExampleExecutionsTimedOut", "ExampleExecutionsAborted"} <= set(built.alarms)
    assert "ExampleExecutionsFailed" not in built.alarms
    alarm = built.alarms["ExampleExecutionsTimedOut"].node.default_child
    assert isinstance(alarm, cw.CfnAlarm)
    assert stack.resolve(alarm.dimensions) == [
        {
            "name": "StateMachineArn",
            "value": {"Ref": stack.get_logical_id(cast(sfn.CfnStateMachine, example.node.default_child))},
        }
    ]


# -- dashboard ---------------------------------------------------------------------------------


def test_the_dashboard_has_an_executive_an_on_call_and_a_debug_row(body: dict[str, Any]) -> None:
    widgets = _dashboard(body)["widgets"]
    headers = [w["properties"]["markdown"].split("\n")[0] for w in widgets if w["type"] == "text"]
    assert headers == ["## Executive", "## Helpdesk", "## On-call", "## Debug"]
    # Rows are laid out top to bottom in that order.
    tops = {h: w["y"] for w in widgets if w["type"] == "text" for h in [w["properties"]["markdown"].split("\n")[0]]}
    assert tops["## Executive"] < tops["## On-call"] < tops["## Debug"]
    assert all(w["x"] + w["width"] <= 24 for w in widgets)


def _titled(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {w["properties"]["title"]: w for w in _dashboard(body)["widgets"] if "title" in w["properties"]}


def _metric_names(widget: dict[str, Any]) -> set[str]:
    """Metric names of a widget's lines (CloudWatch's metric arrays: namespace, name, dims..., options)."""
    names: set[str] = set()
    for line in widget["properties"].get("metrics", []):
        plain = [p for p in line if isinstance(p, str)]
        if len(plain) >= 2 and plain[0] != "...":
            names.add(plain[1])
    return names


def test_the_dashboard_shows_every_business_metric(body: dict[str, Any]) -> None:
    shown = set().union(*(_metric_names(w) for w in _titled(body).values()))
    assert set(BUSINESS) - {"GateOpened"} <= shown, set(BUSINESS) - shown
    dashboard = json.dumps(_dashboard(body))
    assert '"Signoff"' in dashboard and '"service"' in dashboard and '"signoff"' in dashboard


def test_executive_row_approval_rate_is_approved_over_decided(body: dict[str, Any]) -> None:
    widgets = _titled(body)
    rate = widgets["Approval rate (gated) per day, %"]["properties"]["metrics"]
    expression = next(line[0]["expression"] for line in rate if isinstance(line[0], dict))
    assert expression == "100 * FILL(approved, 0) / (FILL(approved, 0) + FILL(denied, 0) + FILL(expired, 0))"
    assert {"Approved", "Denied", "Expired"} <= _metric_names(widgets["Approval rate (gated) per day, %"])
    latency = widgets["Approval latency (request to decision), s"]["properties"]["metrics"]
    assert [line[-1]["stat"] for line in latency] == ["p50", "p95"]
    assert {"CheckpointRequested", "AutoApproved"} <= _metric_names(widgets["Auto vs. gated per day"])
    assert _metric_names(widgets["Expired per day"]) == {"Expired"}
    assert [line[-1]["period"] for line in widgets["Expired per day"]["properties"]["metrics"]] == [86400]


def test_on_call_row(body: dict[str, Any]) -> None:
    widgets = _titled(body)
    assert _metric_names(widgets["Pending and stalled approvals"]) == {"PendingApprovals", "StalledApprovals"}
    assert _metric_names(widgets["Escalated"]) == {"Escalated"}
    assert _metric_names(widgets["Unauthorized attempts"]) == {"UnauthorizedAttempt"}
    assert _metric_names(widgets["Approval workflow: failed / timed out / aborted"]) == {
        "ExecutionsFailed",
        "ExecutionsTimedOut",
        "ExecutionsAborted",
    }
    assert _metric_names(widgets["Decisions not delivered / cards not updated"]) == {
        "UnansweredCallers",
        "CardUpdateFailed",
    }
    assert widgets["Alarms"]["type"] == "alarm"
    assert len(widgets["Alarms"]["properties"]["alarms"]) == 12


def test_debug_row(body: dict[str, Any]) -> None:
    widgets = _titled(body)
    for title, metric in (
        ("Lambda errors", "Errors"),
        ("Lambda throttles", "Throttles"),
        ("Lambda duration p99, ms", "Duration"),
    ):
        lines = widgets[title]["properties"]["metrics"]
        labels = [line[-1]["label"] for line in lines]
        assert labels == ["intake", "slack", "sweeper", "archiver"], title
        assert _metric_names(widgets[title]) == {metric}
    assert _metric_names(widgets["API 4XX / 5XX"]) == {"4XXError", "5XXError"}
    assert _metric_names(widgets["API latency, ms"]) == {"Latency", "IntegrationLatency"}
    assert _metric_names(widgets["Archiver iterator age (ms) and errors"]) == {"IteratorAge", "Errors"}
    assert _metric_names(widgets["Archive DLQ depth"]) == {"ApproximateNumberOfMessagesVisible"}

"""cdk-nag AwsSolutions findings Signoff accepts, each acknowledged with the reason it is accepted.
Anything not acknowledged here fails synthesis (cdk-nag 3 runs as a CDK policy-validation plugin)."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct

PACK = "AwsSolutions::"
STACK_WIDE: dict[str, str] = {
    "AwsSolutions-APIG3": "WAF is opt-in (`-c waf=true`: rate-based rules and IP reputation); without it the stage "
    "throttles every route (the open chat routes tighter) and the chat functions have reserved concurrency.",
    "AwsSolutions-COG4": "Callers are pipelines and workflows authenticated with IAM (SigV4), not Cognito users.",
    "AwsSolutions-IAM5[Resource::*]": "X-Ray's PutTraceSegments/PutTelemetryRecords accept no resource-level "
    "permissions.",
}

API_LOGS_ROLE = (
    "API Gateway's account-level CloudWatch role uses the AWS managed AmazonAPIGatewayPushToCloudWatchLogs "
    "policy: the documented way to let API Gateway write execution logs."
)
TABLE_INDEXES = "Grants on '<table>/index/*' reach only this table's own indexes (the status index)."
SLACK_SIGNED = (
    "Slack cannot sign requests with SigV4; every request's Slack signature (HMAC of the raw body with the "
    "signing secret, timestamp within 5 minutes) is verified by the handler before anything happens."
)
VERSIONS = "Step Functions may invoke any version or alias of this one function (its ARN followed by ':*')."
EXAMPLE_LOGS = "The example release workflow is a demonstration for the local stack, not a production workload."
TEAMS_SIGNED = (
    "The Bot Connector cannot sign requests with SigV4; every activity's RS256 JWT (issuer, audience = the bot, "
    "expiry, service URL, msteams endorsement, tenant allow-list) is verified by the handler first."
)
PUBLIC_SCHEMA = "The OpenAPI document is public API documentation and carries no data; every data route uses IAM."


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding (`AwsSolutions-IAM5[Resource::...]` or a whole rule) on scope and below."""
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=PACK + rule, reason=reason))


def logical_id(construct: IConstruct) -> str:
    """The CloudFormation logical id of a construct's resource, as cdk-nag names it in findings."""
    stack = cdk.Stack.of(construct)
    child = construct.node.default_child
    assert isinstance(child, cdk.CfnElement)
    return str(stack.resolve(stack.get_logical_id(child)))


def acknowledge_stack(stack: cdk.Stack) -> None:
    for rule, reason in STACK_WIDE.items():
        acknowledge(stack, rule, reason)


def managed_policy_finding(policy: str) -> str:
    return f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{policy}]"


# The audit archive (signoff_infra.audit).
ARCHIVE_KEYS = "The archiver writes one object per audit event under the archive's audit/ prefix, keys unknown ahead."
ARCHIVE_ABORT = (
    "s3:Abort* (AbortMultipartUpload) comes with CDK's grant_put; it can only abandon an unfinished upload, "
    "never remove an archived object."
)
LIST_STREAMS = (
    "dynamodb:ListStreams (the stream event source's grant) and X-Ray's PutTraceSegments/PutTelemetryRecords "
    "accept no resource-level permission; reads of the stream itself are scoped to the table's stream ARN."
)
ARCHIVER_DLQ = (
    "This queue is itself the dead-letter destination of the archiver's stream event source mapping; "
    "nothing consumes it automatically, so it needs no dead-letter queue of its own."
)

"""An optional AWS WAF web ACL on the API stage (`-c waf=true`): rate-based rules per client IP
(tighter on the chat callbacks, which are open to the internet) and Amazon's IP reputation list.
The stage's own throttling and the chat functions' reserved concurrency hold without it; WAF turns
a flood away before API Gateway counts it against the stage's limits."""

from __future__ import annotations

from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from signoff_infra.api import STAGE

# Requests per client IP in any 5-minute window (WAF's evaluation window).
CHAT_LIMIT = 1_000  # Slack and Teams send a few per click; a person clicks far less
API_LIMIT = 5_000
CHAT_PATHS = ("/v1/slack/", "/v1/teams/")


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


class ApiFirewall(Construct):
    """The web ACL and its association with `api`'s deployment stage."""

    def __init__(self, scope: Construct, construct_id: str, *, api: apigw.RestApi, stage: str = STAGE) -> None:
        super().__init__(scope, construct_id)
        # WAF matches the raw path, which starts with the stage's name (a literal: a token would
        # not resolve inside the match string).
        chat_paths = [
            wafv2.CfnWebACL.StatementProperty(
                byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
                    positional_constraint="STARTS_WITH",
                    search_string=f"/{stage}{prefix}",
                    text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
                )
            )
            for prefix in CHAT_PATHS
        ]
        self.acl = wafv2.CfnWebACL(
            self,
            "Acl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("signoff-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="chat-callbacks-rate",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP",
                            limit=CHAT_LIMIT,
                            scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                                or_statement=wafv2.CfnWebACL.OrStatementProperty(statements=chat_paths)
                            ),
                        )
                    ),
                    visibility_config=_visibility("signoff-chat-rate"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="api-rate",
                    priority=1,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            aggregate_key_type="IP", limit=API_LIMIT
                        )
                    ),
                    visibility_config=_visibility("signoff-api-rate"),
                ),
                wafv2.CfnWebACL.RuleProperty(
                    name="aws-ip-reputation",
                    priority=2,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS", name="AWSManagedRulesAmazonIpReputationList"
                        )
                    ),
                    visibility_config=_visibility("signoff-ip-reputation"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "Association", resource_arn=api.deployment_stage.stage_arn, web_acl_arn=self.acl.attr_arn
        )

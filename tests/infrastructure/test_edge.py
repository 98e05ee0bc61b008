"""The public edge: every route throttled at the stage (the open chat routes tighter), the chat
callbacks' reserved concurrency, and the optional WAF web ACL (`-c waf=true`)."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_apigateway as apigw
from aws_cdk.assertions import Match, Template

from signoff_infra.api import CHAT_BURST, CHAT_CONCURRENCY, CHAT_RATE, DEFAULT_BURST, DEFAULT_RATE
from signoff_infra.waf import API_LIMIT, CHAT_LIMIT, ApiFirewall

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]


def _settings(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (stage,) = [r for r in body["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    return {s["ResourcePath"]: s for s in stage["Properties"]["MethodSettings"]}


def test_every_route_is_throttled_and_the_chat_routes_tighter(body: dict[str, Any]) -> None:
    settings = _settings(body)
    assert settings["/*"]["ThrottlingRateLimit"] == DEFAULT_RATE
    assert settings["/*"]["ThrottlingBurstLimit"] == DEFAULT_BURST
    # API Gateway escapes the path's slashes as ~1 in a method setting's ResourcePath.
    slack = settings["/~1v1~1slack~1events"]
    assert (slack["HttpMethod"], slack["ThrottlingRateLimit"], slack["ThrottlingBurstLimit"]) == (
        "POST",
        CHAT_RATE,
        CHAT_BURST,
    )
    assert CHAT_RATE < DEFAULT_RATE


def test_the_chat_callbacks_have_reserved_concurrency_and_intake_does_not(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    reserved = {
        props["Properties"]["Description"].split(":")[0]: props["Properties"].get("ReservedConcurrentExecutions")
        for props in functions.values()
    }
    assert reserved["POST /v1/slack/events"] == CHAT_CONCURRENCY
    assert reserved["POST/GET /v1/checkpoints*"] is None  # intake shares the account's pool


def test_the_stack_has_no_firewall_unless_asked(template: Template) -> None:
    template.resource_count_is("AWS::WAFv2::WebACL", 0)


def test_the_firewall_rate_limits_the_chat_routes_and_is_attached_to_the_stage() -> None:
    # Given the firewall construct on an API (the whole stack with -c waf=true adds exactly this)
    stack = cdk.Stack(cdk.App(), "Edge")
    api = apigw.RestApi(stack, "Api", deploy_options=apigw.StageOptions(stage_name="live"))
    api.root.add_method("GET")
    ApiFirewall(stack, "Firewall", api=api)
    template = Template.from_stack(stack)
    # Then a regional ACL blocks IPs over the chat limit on the chat paths and the API limit anywhere
    (acl,) = template.find_resources("AWS::WAFv2::WebACL").values()
    rules = {r["Name"]: r for r in acl["Properties"]["Rules"]}
    assert acl["Properties"]["Scope"] == "REGIONAL"
    chat = rules["chat-callbacks-rate"]["Statement"]["RateBasedStatement"]
    assert chat["Limit"] == CHAT_LIMIT and chat["AggregateKeyType"] == "IP"
    paths = [s["ByteMatchStatement"]["SearchString"] for s in chat["ScopeDownStatement"]["OrStatement"]["Statements"]]
    assert paths == ["/live/v1/slack/", "/live/v1/teams/"]
    assert rules["chat-callbacks-rate"]["Action"] == {"Block": {}}
    assert rules["api-rate"]["Statement"]["RateBasedStatement"]["Limit"] == API_LIMIT
    managed = rules["aws-ip-reputation"]["Statement"]["ManagedRuleGroupStatement"]
    assert managed["Name"] == "AWSManagedRulesAmazonIpReputationList"
    # And it is associated with the API's stage
    template.has_resource_properties(
        "AWS::WAFv2::WebACLAssociation",
        {"ResourceArn": Match.any_value(), "WebACLArn": {"Fn::GetAtt": [Match.string_like_regexp("Firewall"), "Arn"]}},
    )

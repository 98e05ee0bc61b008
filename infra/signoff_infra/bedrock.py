"""Bedrock permissions for the helpdesk, only when helpdesk.yaml opts in (`model.provider: bedrock`):
bedrock:InvokeModel on the configured model id alone (Converse is authorized as InvokeModel) and
bedrock:Retrieve on the configured Knowledge Base alone. The embedded default grants nothing."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from signoff.domain.helpdesk.config import ModelSettings
from signoff_infra import nag

# Cross-region inference profiles ("us.anthropic…") are invoked through the profile and then run the
# foundation model in one of the profile's regions: both ARNs must allow it.
PROFILE_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "ca.", "jp.", "au.")
PROFILE_REGIONS = (
    "A cross-region inference profile runs its foundation model in any of the profile's regions: the grant "
    "names that one model, in every region, and nothing else."
)


def model_arns(stack: cdk.Stack, model_id: str, region: str | None) -> list[str]:
    """The ARNs InvokeModel needs for one model id: a foundation model, an inference profile (plus
    its foundation model, in any region), or an ARN given as is."""
    if model_id.startswith("arn:"):
        return [model_id]
    where = region or stack.region
    if model_id.startswith(PROFILE_PREFIXES):
        base = model_id.split(".", 1)[1]
        return [
            f"arn:{stack.partition}:bedrock:{where}:{stack.account}:inference-profile/{model_id}",
            f"arn:{stack.partition}:bedrock:*::foundation-model/{base}",
        ]
    return [f"arn:{stack.partition}:bedrock:{where}::foundation-model/{model_id}"]


def grant_helpdesk_models(role: iam.IRole, model: ModelSettings) -> list[iam.PolicyStatement]:
    """Add the helpdesk's Bedrock statements to `role` (none for the embedded models)."""
    if model.provider != "bedrock" or model.bedrock is None:
        return []
    stack = cdk.Stack.of(role)
    bedrock = model.bedrock
    statements = [
        iam.PolicyStatement(
            sid="HelpdeskDraftModel",
            actions=["bedrock:InvokeModel"],
            resources=model_arns(stack, bedrock.model_id, bedrock.region),
        )
    ]
    if bedrock.knowledge_base_id:
        where = bedrock.region or stack.region
        statements.append(
            iam.PolicyStatement(
                sid="HelpdeskKnowledgeBase",
                actions=["bedrock:Retrieve"],
                resources=[
                    f"arn:{stack.partition}:bedrock:{where}:{stack.account}:knowledge-base/{bedrock.knowledge_base_id}"
                ],
            )
        )
    if bedrock.guardrail_id:
        where = bedrock.region or stack.region
        statements.append(
            iam.PolicyStatement(
                sid="HelpdeskGuardrail",
                actions=["bedrock:ApplyGuardrail"],
                resources=[f"arn:{stack.partition}:bedrock:{where}:{stack.account}:guardrail/{bedrock.guardrail_id}"],
            )
        )
    for statement in statements:
        role.add_to_principal_policy(statement)
    if not bedrock.model_id.startswith("arn:") and bedrock.model_id.startswith(PROFILE_PREFIXES):
        base = bedrock.model_id.split(".", 1)[1]
        finding = f"AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:bedrock:*::foundation-model/{base}]"
        nag.acknowledge(role, finding, PROFILE_REGIONS)
    return statements

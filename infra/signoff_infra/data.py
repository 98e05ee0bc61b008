"""Data: the single checkpoint table (META, EVT#, VOTE# items; stream on; a status index) and the
idempotency table (TTL) where chat surfaces claim deliveries they have handled (a retried Teams
activity). Intake needs none: an Idempotency-Key names its checkpoint."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

STATUS_INDEX = "by-status"  # the name signoff.adapters.dynamodb queries
_PITR = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)


class DataTables(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Checkpoints",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            # The stream feeds the S3 audit archive; old images let the archiver see transitions.
            stream=dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
            point_in_time_recovery_specification=_PITR,
            deletion_protection=True,
            # The audit trail outlives the stack.
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.table.add_global_secondary_index(
            index_name=STATUS_INDEX,
            partition_key=dynamodb.Attribute(name="status_pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="status_sk", type=dynamodb.AttributeType.STRING),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        self.idempotency = dynamodb.Table(
            self,
            "Idempotency",
            partition_key=dynamodb.Attribute(name="id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute="expiration",
            point_in_time_recovery_specification=_PITR,
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )

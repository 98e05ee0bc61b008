"""SignoffStack: composes one construct per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from signoff.policy import LoadedPolicy
from signoff_infra.api import SignoffApi
from signoff_infra.data import DataTables
from signoff_infra.layer import CoreLayer
from signoff_infra.nag import acknowledge_stack


class SignoffStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, policy: LoadedPolicy, policy_path: Path, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.policy = policy
        self.data = DataTables(self, "Data")
        self.core = CoreLayer(self, "Core", policy_path=policy_path)
        self.api = SignoffApi(self, "Api", data=self.data, layer=self.core.layer)

        cdk.CfnOutput(self, "ApiUrl", value=self.api.rest_api.url, description="Base URL of the Signoff API")
        cdk.CfnOutput(self, "TableName", value=self.data.table.table_name)
        cdk.CfnOutput(self, "IdempotencyTableName", value=self.data.idempotency.table_name)
        cdk.CfnOutput(self, "PolicyVersion", value=policy.version, description="Policy stamped on every decision")
        acknowledge_stack(self)

"""Integration tests: the DynamoDB adapter and the intake handler against moto, in-process.

The tables are created here, once, exactly as the CDK stack defines them: the single table
(pk/sk, GSI "by-status" on status_pk/status_sk, on-demand, stream NEW_AND_OLD_IMAGES) and the
Powertools idempotency table (id, TTL on expiration)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from signoff import composition
from signoff.adapters.dynamodb import STATUS_INDEX, DynamoCheckpointRepository
from tests.helpers import POLICY_PATH, REPO_ROOT, Tables

ROUTING_PATH = REPO_ROOT / "routing.yaml"

TABLE_NAME = "signoff-test-checkpoints"
IDEMPOTENCY_TABLE_NAME = "signoff-test-idempotency"


def create_tables(
    client: Any, table_name: str = TABLE_NAME, idempotency_table_name: str = IDEMPOTENCY_TABLE_NAME
) -> None:
    """The table contract the CDK stack implements."""
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "status_pk", "status_sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "status_pk", "KeyType": "HASH"},
                    {"AttributeName": "status_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    client.create_table(
        TableName=idempotency_table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    client.update_time_to_live(
        TableName=idempotency_table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tables]:
    """Fresh moto tables, the intake function's environment, and wiring rebuilt inside moto."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    monkeypatch.setenv("IDEMPOTENCY_TABLE_NAME", IDEMPOTENCY_TABLE_NAME)
    monkeypatch.setenv("SIGNOFF_POLICY_PATH", str(POLICY_PATH))
    monkeypatch.setenv("SIGNOFF_ROUTING_PATH", str(ROUTING_PATH))
    with mock_aws():
        client = boto3.client("dynamodb")
        create_tables(client)
        # moto's default Step Functions backend records executions without running them: enough
        # to see that intake opened a gate (the workflow itself is exercised on the local stack).
        machine = boto3.client("stepfunctions").create_state_machine(
            name="signoff-test-approval",
            definition='{"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": true}}}',
            roleArn="arn:aws:iam::123456789012:role/signoff-test",
        )
        monkeypatch.setenv("APPROVAL_STATE_MACHINE_ARN", machine["stateMachineArn"])
        composition.reset()
        yield Tables(client=client, table_name=TABLE_NAME, idempotency_table_name=IDEMPOTENCY_TABLE_NAME)
        composition.reset()


@pytest.fixture
def repo(tables: Tables) -> DynamoCheckpointRepository:
    return DynamoCheckpointRepository(tables.table_name)

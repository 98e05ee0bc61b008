"""The audit archive construct: a private, encrypted, versioned, TLS-only archive bucket (Object
Lock only when asked for), the archiver on the table's stream with retries, bisecting, partial
batch responses and a dead-letter queue, write-only access to the archive, the Glue table with
partition projection, the Athena workgroup and one named query per SQL file.

Two small stacks (the real table and layer, the construct) are synthesized once in one app with
cdk-nag's AwsSolutions checks as a validation plugin: an unacknowledged finding fails synthesis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from signoff.audit.records import COLUMNS
from signoff_infra import nag
from signoff_infra.audit import QUERIES, AuditArchive
from signoff_infra.data import DataTables
from signoff_infra.layer import CoreLayer
from tests.helpers import POLICY_PATH, REPO_ROOT

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]

LOCK_DAYS = 30
TEST_QUERIES = {
    "events_per_day": "-- Events per day\nSELECT dt, COUNT(*) FROM audit_events GROUP BY dt",
    "refusals": "SELECT actor FROM audit_events WHERE type = 'refused'",
}


@dataclass
class Synthesized:
    template: Template
    body: dict[str, Any]
    archive: AuditArchive
    stack: cdk.Stack

    def id_of(self, construct: Any) -> str:
        if isinstance(construct, cdk.CfnElement):  # an L1 resource is its own element
            return str(self.stack.resolve(self.stack.get_logical_id(construct)))
        return nag.logical_id(construct)

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: r for k, r in self.body["Resources"].items() if r["Type"] == type_}

    def props(self, construct: Any) -> dict[str, Any]:
        return dict(self.body["Resources"][self.id_of(construct)]["Properties"])


def _stack(
    app: cdk.App, name: str, queries: Path, object_lock_days: int | None = None
) -> tuple[cdk.Stack, AuditArchive]:
    stack = cdk.Stack(app, name)
    data = DataTables(stack, "Data")
    core = CoreLayer(stack, "Core", policy_path=POLICY_PATH, routing_path=REPO_ROOT / "routing.yaml")
    archive = AuditArchive(
        stack,
        "Audit",
        table=data.table,
        layer=core.layer,
        environment={"TABLE_NAME": data.table.table_name},
        object_lock_days=object_lock_days,
        queries=queries,
    )
    return stack, archive


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Synthesized]]:
    queries = tmp_path_factory.mktemp("queries")
    for stem, sql in TEST_QUERIES.items():
        (queries / f"{stem}.sql").write_text(sql + "\n", encoding="utf-8")
    (queries / "notes.md").write_text("not a query", encoding="utf-8")
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = cdk.App(outdir=str(outdir))
    stacks = {
        "plain": _stack(app, "AuditPlain", QUERIES),
        "locked": _stack(app, "AuditLocked", queries, object_lock_days=LOCK_DAYS),
    }
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()  # raises on any unacknowledged cdk-nag finding
    result = {}
    for key, (stack, archive) in stacks.items():
        body = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
        result[key] = Synthesized(Template.from_json(body), body, archive, stack)
    yield result


@pytest.fixture(scope="module")
def plain(synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized["plain"]


@pytest.fixture(scope="module")
def locked(synthesized: dict[str, Synthesized]) -> Synthesized:
    return synthesized["locked"]


def _statements(s: Synthesized, role: Any) -> list[dict[str, Any]]:
    role_id = s.id_of(role)
    return [
        statement
        for policy in s.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- S3 ----------------------------------------------------------------------------------------


def test_the_archive_bucket_is_private_encrypted_versioned_logged_and_retained(plain: Synthesized) -> None:
    archive = plain.archive
    plain.template.has_resource(
        "AWS::S3::Bucket",
        {
            "Properties": Match.object_like(
                {
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "VersioningConfiguration": {"Status": "Enabled"},
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "LoggingConfiguration": {
                        "DestinationBucketName": {"Ref": plain.id_of(archive.access_logs)},
                        "LogFilePrefix": "archive/",
                    },
                }
            ),
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )
    assert "VersioningConfiguration" in plain.props(archive.bucket)


def test_the_archive_moves_to_cheaper_storage_and_expires_old_versions(plain: Synthesized) -> None:
    (rule,) = plain.props(plain.archive.bucket)["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Transitions"] == [
        {"StorageClass": "STANDARD_IA", "TransitionInDays": 30},
        {"StorageClass": "GLACIER_IR", "TransitionInDays": 180},
    ]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 365}
    assert "ExpirationInDays" not in rule  # current versions are never expired


def test_every_bucket_refuses_plain_http_and_public_access(plain: Synthesized) -> None:
    buckets = plain.resources("AWS::S3::Bucket")
    assert len(buckets) == 3  # archive, Athena results, access logs
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in plain.resources("AWS::S3::BucketPolicy").values()}
    for bucket_id, bucket in buckets.items():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
        assert bucket["Properties"]["BucketEncryption"], bucket_id
        denies = [
            s
            for s in policies[bucket_id]["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert denies and denies[0]["Action"] == "s3:*" and denies[0]["Principal"] == {"AWS": "*"}, bucket_id


def test_object_lock_is_configured_only_when_requested(plain: Synthesized, locked: Synthesized) -> None:
    # Given the stack without and the stack with object_lock_days
    for bucket in plain.resources("AWS::S3::Bucket").values():
        assert "ObjectLockEnabled" not in bucket["Properties"]
        assert "ObjectLockConfiguration" not in bucket["Properties"]
    # Then only the requested archive bucket locks its objects, in compliance mode, for those days
    props = locked.props(locked.archive.bucket)
    assert props["ObjectLockEnabled"] is True
    assert props["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": LOCK_DAYS}},
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "ObjectLockEnabled" not in locked.props(locked.archive.results_bucket)


def test_athena_results_expire_and_are_logged(plain: Synthesized) -> None:
    props = plain.props(plain.archive.results_bucket)
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 30
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "athena-results/"


# -- the archiver --------------------------------------------------------------------------------


def test_the_archiver_reads_the_stream_with_retries_bisecting_and_a_dead_letter_queue(plain: Synthesized) -> None:
    (mapping,) = plain.resources("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    data_table = next(k for k in plain.resources("AWS::DynamoDB::Table") if k.startswith("DataCheckpoints"))
    assert props["EventSourceArn"] == {"Fn::GetAtt": [data_table, "StreamArn"]}
    assert props["FunctionName"] == {"Ref": plain.id_of(plain.archive.archiver.function)}
    assert props["StartingPosition"] == "TRIM_HORIZON"
    assert props["BatchSize"] == 100
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == 5
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # Given up to the DLQ before the stream's 24 h retention could drop a record silently
    assert 0 < props["MaximumRecordAgeInSeconds"] < 24 * 3600
    assert props["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": [plain.id_of(plain.archive.dlq), "Arn"]}}
    }
    (pattern,) = (json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"])
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["audit_event"]}}}}


def test_the_dead_letter_queue_is_encrypted_tls_only_and_keeps_messages_14_days(plain: Synthesized) -> None:
    props = plain.props(plain.archive.dlq)
    assert props["SqsManagedSseEnabled"] is True
    assert props["MessageRetentionPeriod"] == 14 * 24 * 3600
    plain.template.has_resource_properties(
        "AWS::SQS::QueuePolicy",
        {
            "Queues": [{"Ref": plain.id_of(plain.archive.dlq)}],
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            },
        },
    )


def test_the_archiver_knows_its_bucket_and_runs_on_the_layer(plain: Synthesized) -> None:
    props = plain.props(plain.archive.archiver.function)
    variables = props["Environment"]["Variables"]
    assert variables["ARCHIVE_BUCKET"] == {"Ref": plain.id_of(plain.archive.bucket)}
    assert "TABLE_NAME" in variables
    assert props["Handler"] == "handler.handler" and props["Layers"]


def test_the_archiver_may_only_put_objects_under_audit(plain: Synthesized) -> None:
    statements = _statements(plain, plain.archive.archiver.role)
    bucket_arn = {"Fn::GetAtt": [plain.id_of(plain.archive.bucket), "Arn"]}
    s3_statements = [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
    actions = {a for s in s3_statements for a in _as_list(s["Action"])}
    assert "s3:PutObject" in actions
    assert not {a for a in actions if a.startswith(("s3:Delete", "s3:Get", "s3:List", "s3:PutBucket"))}
    for statement in s3_statements:
        assert statement["Effect"] == "Allow"
        assert _as_list(statement["Resource"]) == [{"Fn::Join": ["", [bucket_arn, "/audit/*"]]}]
    # And nothing else in the stack may put to, read or delete the archive
    for policy in plain.resources("AWS::IAM::Policy").values():
        if policy["Properties"]["Roles"] != [{"Ref": plain.id_of(plain.archive.archiver.role)}]:
            assert "s3:" not in json.dumps(policy["Properties"]["PolicyDocument"])


# -- Glue and Athena ---------------------------------------------------------------------------


def test_the_glue_table_reads_the_archive_with_partition_projection(plain: Synthesized) -> None:
    archive = plain.archive
    assert plain.props(archive.database)["DatabaseInput"]["Name"] == archive.database_name == "auditplain_audit"
    props = plain.props(archive.table)
    assert props["DatabaseName"] == {"Ref": plain.id_of(archive.database)}
    table = props["TableInput"]
    assert table["Name"] == archive.table_name == "audit_events"
    assert table["TableType"] == "EXTERNAL_TABLE"
    bucket = {"Ref": plain.id_of(archive.bucket)}
    assert table["Parameters"] == {
        "classification": "json",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2026-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": {"Fn::Join": ["", ["s3://", bucket, "/audit/dt=${dt}/"]]},
    }
    assert table["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    storage = table["StorageDescriptor"]
    assert storage["Location"] == {"Fn::Join": ["", ["s3://", bucket, "/audit/"]]}
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == COLUMNS
    assert storage["InputFormat"] == "org.apache.hadoop.mapred.TextInputFormat"
    assert storage["SerdeInfo"] == {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}


def test_the_workgroup_enforces_its_encrypted_result_location(plain: Synthesized) -> None:
    props = plain.props(plain.archive.workgroup)
    assert props["Name"] == "AuditPlain-audit"
    config = props["WorkGroupConfiguration"]
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["PublishCloudWatchMetricsEnabled"] is True
    results = {"Ref": plain.id_of(plain.archive.results_bucket)}
    assert config["ResultConfiguration"] == {
        "OutputLocation": {"Fn::Join": ["", ["s3://", results, "/results/"]]},
        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"},
    }


def test_each_sql_file_in_audit_queries_is_a_named_query(plain: Synthesized) -> None:
    expected = {p.stem: p.read_text(encoding="utf-8").strip() for p in QUERIES.glob("*.sql")}
    queries = {q["Properties"]["Name"]: q["Properties"] for q in plain.resources("AWS::Athena::NamedQuery").values()}
    assert {name: q["QueryString"] for name, q in queries.items()} == expected
    for query in queries.values():
        assert query["Database"] == {"Ref": plain.id_of(plain.archive.database)}
        assert query["WorkGroup"] == {"Ref": plain.id_of(plain.archive.workgroup)}


def test_named_queries_come_from_the_given_folder_only_sql_files(locked: Synthesized) -> None:
    queries = {q["Properties"]["Name"]: q["Properties"] for q in locked.resources("AWS::Athena::NamedQuery").values()}
    assert {name: q["QueryString"] for name, q in queries.items()} == TEST_QUERIES
    assert queries["events_per_day"]["Description"] == "Events per day"
    assert queries["refusals"]["Description"] == "audit/queries/refusals.sql"
    assert all(q["Database"] == {"Ref": locked.id_of(locked.archive.database)} for q in queries.values())
    assert locked.archive.database_name == "auditlocked_audit"


# -- refused configurations --------------------------------------------------------------------


def _bare_stack() -> tuple[cdk.Stack, DataTables, lambda_.ILayerVersion]:
    stack = cdk.Stack(cdk.App(), "Bare")
    layer = lambda_.LayerVersion.from_layer_version_arn(
        stack, "Layer", "arn:aws:lambda:us-east-1:123456789012:layer:signoff:1"
    )
    return stack, DataTables(stack, "Data"), layer


def test_an_empty_query_file_stops_synthesis(tmp_path: Path) -> None:
    (tmp_path / "broken.sql").write_text("\n", encoding="utf-8")
    stack, data, layer = _bare_stack()
    with pytest.raises(ValueError, match=r"broken\.sql: empty query file"):
        AuditArchive(stack, "Audit", table=data.table, layer=layer, environment={}, queries=tmp_path)


def test_object_lock_needs_at_least_one_day() -> None:
    stack, data, layer = _bare_stack()
    with pytest.raises(ValueError, match="object_lock_days must be at least 1"):
        AuditArchive(stack, "Audit", table=data.table, layer=layer, environment={}, object_lock_days=0)

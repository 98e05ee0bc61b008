"""The audit archive: the checkpoint table's stream → archiver λ → S3 (gzip JSON Lines under
`audit/dt=YYYY-MM-DD/`, one object per event) → a Glue table with partition projection → an Athena
workgroup and one named query per `audit/queries/*.sql`.

No event is lost: failed records are retried with bisecting, and what still fails goes to an SQS
dead-letter queue while the record is still in the stream (24 h retention)."""

from __future__ import annotations

import re
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_athena as athena
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from signoff.audit.archiver import AUDIT_EVENT
from signoff.audit.records import COLUMNS, PREFIX
from signoff_infra import nag
from signoff_infra.functions import SignoffFunction

QUERIES = Path(__file__).resolve().parents[2] / "audit" / "queries"
TABLE_NAME = "audit_events"
PROJECTION_START = "2026-01-01"  # no archived event is older than Signoff itself


def _private_bucket(
    scope: Construct,
    construct_id: str,
    *,
    lifecycle: s3.LifecycleRule,
    access_logs: s3.IBucket | None = None,
    log_prefix: str | None = None,
    versioned: bool = False,
    object_lock: s3.ObjectLockRetention | None = None,
) -> s3.Bucket:
    """A private, encrypted, TLS-only bucket that outlives the stack (it holds audit evidence)."""
    return s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=log_prefix,
        versioned=versioned or None,
        object_lock_enabled=object_lock is not None or None,
        object_lock_default_retention=object_lock,
        # S3's default, stated because it matters here: objects under 128 KB (most single-event
        # objects) are not transitioned; in Standard they cost less than IA's 128 KB minimum would.
        transition_default_minimum_object_size=s3.TransitionDefaultMinimumObjectSize.ALL_STORAGE_CLASSES_128_K,
        lifecycle_rules=[lifecycle],
        removal_policy=cdk.RemovalPolicy.RETAIN,
    )


class AuditArchive(Construct):
    """The archive and its query side. Attributes: bucket, results_bucket, access_logs, archiver
    (SignoffFunction), dlq, database_name, table_name, workgroup_name, queries (name → named query).
    `object_lock_days` turns on S3 Object Lock in compliance mode: nobody, root included, can delete
    or overwrite an archived event for that many days. `queries` is the folder of `*.sql` files."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        table: dynamodb.Table,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
        object_lock_days: int | None = None,
        queries: Path = QUERIES,
    ) -> None:
        super().__init__(scope, construct_id)
        # Access logs are delivered under a bucket policy, not the legacy LogDeliveryWrite ACL (which
        # BUCKET_OWNER_ENFORCED forbids), whether or not the app sets this flag (cdk.json does not).
        self.node.set_context("@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy", True)
        if object_lock_days is not None and object_lock_days < 1:
            raise ValueError(f"object_lock_days must be at least 1, not {object_lock_days}")
        stack = cdk.Stack.of(self)
        self._storage(object_lock_days)
        self._archiver(table, layer, environment)
        self._catalog(stack)
        self._athena(stack, queries)

    # -- S3 -------------------------------------------------------------------------------------

    def _storage(self, object_lock_days: int | None) -> None:
        days = cdk.Duration.days
        self.access_logs = _private_bucket(
            self, "AccessLogs", lifecycle=s3.LifecycleRule(id="expire-access-logs", expiration=days(365))
        )
        self.bucket = _private_bucket(
            self,
            "Bucket",
            access_logs=self.access_logs,
            log_prefix="archive/",
            versioned=True,
            object_lock=s3.ObjectLockRetention.compliance(days(object_lock_days)) if object_lock_days else None,
            lifecycle=s3.LifecycleRule(
                id="tiering",
                transitions=[
                    s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS, transition_after=days(30)),
                    s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=days(180)),
                ],
                noncurrent_version_expiration=days(365),
                abort_incomplete_multipart_upload_after=days(7),
            ),
        )
        self.results_bucket = _private_bucket(
            self,
            "AthenaResults",
            access_logs=self.access_logs,
            log_prefix="athena-results/",
            lifecycle=s3.LifecycleRule(
                id="expire-results", expiration=days(30), abort_incomplete_multipart_upload_after=days(1)
            ),
        )

    # -- the archiver ---------------------------------------------------------------------------

    def _archiver(self, table: dynamodb.Table, layer: lambda_.ILayerVersion, environment: dict[str, str]) -> None:
        self.archiver = SignoffFunction(
            self,
            "Archiver",
            name="archiver",
            description="Checkpoint table stream: every audit event into the S3 archive, once",
            layer=layer,
            environment={**environment, "ARCHIVE_BUCKET": self.bucket.bucket_name},
            # A batch of 100 events is 100 small PUTs.
            timeout=cdk.Duration.seconds(60),
        )
        # Write-only, and only under audit/: the archiver can neither read nor delete the archive.
        self.bucket.grant_put(self.archiver.function, f"{PREFIX}/*")
        nag.acknowledge(
            self.archiver.role,
            f"AwsSolutions-IAM5[Resource::<{nag.logical_id(self.bucket)}.Arn>/{PREFIX}/*]",
            nag.ARCHIVE_KEYS,
        )
        nag.acknowledge(self.archiver.role, "AwsSolutions-IAM5[Action::s3:Abort*]", nag.ARCHIVE_ABORT)
        nag.acknowledge(self.archiver.role, "AwsSolutions-IAM5[Resource::*]", nag.LIST_STREAMS)

        self.dlq = sqs.Queue(
            self,
            "Dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        nag.acknowledge(self.dlq, "AwsSolutions-SQS3", nag.ARCHIVER_DLQ)
        self.archiver.function.add_event_source(
            sources.DynamoEventSource(
                table,
                starting_position=lambda_.StartingPosition.TRIM_HORIZON,
                batch_size=100,
                bisect_batch_on_error=True,
                retry_attempts=5,
                report_batch_item_failures=True,
                # Give up (to the DLQ, with the batch's stream position) well before the stream's 24 h
                # retention trims the record: at 24 h it would vanish with no trace. Retries take
                # minutes; the margin covers an outage of half a day and leaves 12 h to replay.
                max_record_age=cdk.Duration.hours(12),
                on_failure=sources.SqsDlq(self.dlq),
                filters=[
                    lambda_.FilterCriteria.filter(
                        {
                            "eventName": lambda_.FilterRule.is_equal("INSERT"),
                            "dynamodb": {"NewImage": {"item_type": {"S": lambda_.FilterRule.is_equal(AUDIT_EVENT)}}},
                        }
                    )
                ],
            )
        )

    # -- Glue -----------------------------------------------------------------------------------

    def _catalog(self, stack: cdk.Stack) -> None:
        # Glue and Athena names are per account and region: derived from the stack's name.
        self.database_name = re.sub(r"[^a-z0-9_]", "_", stack.stack_name.lower()) + "_audit"
        self.table_name = TABLE_NAME
        self.database = glue.CfnDatabase(
            self,
            "Database",
            catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.database_name, description="Signoff audit trail (S3 archive)"
            ),
        )
        location = f"s3://{self.bucket.bucket_name}/{PREFIX}/"
        self.table = glue.CfnTable(
            self,
            "Table",
            catalog_id=stack.account,
            database_name=self.database.ref,  # Ref is the name: the table waits for its database
            table_input=glue.CfnTable.TableInputProperty(
                name=TABLE_NAME,
                description="One row per audit event (signoff.audit.records.COLUMNS)",
                table_type="EXTERNAL_TABLE",
                # Partition projection: partitions are computed from dt, so no crawler and no
                # MSCK REPAIR, and a new day's events are queryable at once.
                parameters={
                    "classification": "json",
                    "projection.enabled": "true",
                    "projection.dt.type": "date",
                    "projection.dt.format": "yyyy-MM-dd",
                    "projection.dt.range": f"{PROJECTION_START},NOW",
                    "projection.dt.interval": "1",
                    "projection.dt.interval.unit": "DAYS",
                    "storage.location.template": location + "dt=${dt}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name="dt", type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    location=location,
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=type_) for name, type_ in COLUMNS],
                    # Text input reads .gz files transparently, by their extension.
                    input_format="org.apache.hadoop.mapred.TextInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                    compressed=True,
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.openx.data.jsonserde.JsonSerDe"
                    ),
                ),
            ),
        )

    # -- Athena ---------------------------------------------------------------------------------

    def _athena(self, stack: cdk.Stack, queries: Path) -> None:
        self.workgroup_name = f"{stack.stack_name}-audit"
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.workgroup_name,
            description="Signoff audit trail: SLI and audit queries",
            state="ENABLED",
            # The named queries below live in it; without this, deleting the stack would fail.
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                # Clients cannot send results elsewhere or unencrypted.
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{self.results_bucket.bucket_name}/results/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_S3"
                    ),
                ),
            ),
        )
        # One query per file, read at synthesis: the local tools run the very same files on DuckDB.
        self.queries: dict[str, athena.CfnNamedQuery] = {}
        for path in sorted(queries.glob("*.sql")):
            sql = path.read_text(encoding="utf-8").strip()
            if not sql:
                raise ValueError(f"{path}: empty query file")
            self.queries[path.stem] = athena.CfnNamedQuery(
                self,
                f"Query-{path.stem}",
                name=path.stem,
                # Refs are the names: each query waits for its database and workgroup.
                database=self.database.ref,
                work_group=self.workgroup.ref,
                query_string=sql,
                description=_title(sql) or f"audit/queries/{path.name}",
            )


def _title(sql: str) -> str:
    """A query file's first comment line ("-- Approval latency (M1)"), shown in the Athena console."""
    first = sql.splitlines()[0]
    return first.removeprefix("--").strip() if first.startswith("--") else ""

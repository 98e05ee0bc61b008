"""Deploys the synthesized template into moto, in this process: tables, functions (run
in-process), and the API's route table. One source of truth: what CDK would deploy."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

from local import moto_interpreter, moto_scaling, moto_speed
from local.lambdas import FunctionRegistry, LocalFunction, one_resolver_at_a_time, quiet_disabled_metrics
from local.streams import STREAMS_ENDPOINT, Mapping, StreamPoller
from local.template import ACCOUNT, REGION, Template

log = logging.getLogger("signoff.local")

# The local stack's quiet, offline defaults for the handlers (overridable from the environment).
LOCAL_ENV = {
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
}
LOG_LEVEL_VAR = "SIGNOFF_LOCAL_LOG_LEVEL"  # handler log level locally (default WARNING)


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # e.g. /v1/checkpoints/{checkpoint_id}
    function: str
    authorization: str  # AWS_IAM or NONE

    def match(self, path: str) -> dict[str, str] | None:
        want, got = self.template.strip("/").split("/"), path.strip("/").split("/")
        if len(want) != len(got):
            return None
        params: dict[str, str] = {}
        for w, g in zip(want, got, strict=True):
            if w.startswith("{") and w.endswith("}"):
                if not g:
                    return None
                params[w[1:-1]] = g
            elif w != g:
                return None
        return params


@dataclass
class LocalStack:
    outdir: Path
    template: Template | None = None
    functions: FunctionRegistry = field(default_factory=FunctionRegistry)
    routes: list[Route] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    secret_values: dict[str, str] = field(default_factory=dict)  # e.g. signing_secret, bot_token
    state_machines: dict[str, str] = field(default_factory=dict)
    archive_dir: Path | None = None  # where the archive bucket is mirrored (None: not mirrored)
    # Execution environments per function: how many invocations of one function run at once. One
    # (the default) keeps a crowd of clicks in line, as a function with reserved concurrency 1 would.
    environments: int = 1
    queues: dict[str, str] = field(default_factory=dict)  # ARN -> URL
    faults: dict[str, int] = field(default_factory=dict)
    poller: StreamPoller | None = None
    _mock: Any = None
    _clients: dict[str, Any] = field(default_factory=dict)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> LocalStack:
        for key, value in LOCAL_ENV.items():
            os.environ.setdefault(key, value)
        os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get(LOG_LEVEL_VAR, "WARNING")
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        moto_scaling.install()
        moto_interpreter.install()
        moto_speed.install()
        quiet_disabled_metrics()
        one_resolver_at_a_time()
        _S3_PUTS.install()
        _S3_PUTS.take()  # a previous stack's puts in this process are not ours
        self._clear_archive_mirror()
        self.functions.install()
        self.template = Template.load(self.outdir)
        self._deploy()
        return self

    def stop(self) -> None:
        if self.poller is not None:
            self.poller.stop()
        if self._mock is not None:
            self.stop_executions()
        self.functions.uninstall()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client on the stack (one per service: creating one costs ~50 ms of CPU)."""
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = boto3.client(service, region_name=REGION)
        return client

    # -- deployment ----------------------------------------------------------------------------

    def _deploy(self) -> None:
        assert self.template is not None
        t = self.template
        for logical_id in t.resources("AWS::DynamoDB::Table"):
            self._table(logical_id)
        for logical_id in t.resources("AWS::Logs::LogGroup"):
            t.refs[logical_id] = f"/signoff/local/{logical_id}"
            self.client("logs").create_log_group(logGroupName=t.refs[logical_id])
        for logical_id, res in t.resources("AWS::Lambda::LayerVersion").items():
            t.refs[logical_id] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:{logical_id}:1"
            self._layers[t.refs[logical_id]] = t.asset_dir(res["Properties"]["Content"])
        for logical_id in t.resources("AWS::IAM::Role"):
            t.refs[logical_id] = logical_id
            t.attrs[(logical_id, "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{logical_id}"
        for logical_id in t.resources("AWS::SecretsManager::Secret"):
            self._secret(logical_id)
        for logical_id in t.resources("AWS::S3::Bucket"):
            self._bucket(logical_id)
        for logical_id in t.resources("AWS::SQS::Queue"):
            self._queue(logical_id)
        role = self.client("iam").create_role(RoleName="signoff-local", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        for logical_id in t.resources("AWS::Lambda::Function"):
            self._function(logical_id, role)
        for logical_id in t.resources("AWS::StepFunctions::StateMachine"):
            self._state_machine(logical_id)
        self._api()
        self._streams()
        for name, output in t.body.get("Outputs", {}).items():
            try:
                self.outputs[name] = str(t.resolve(output["Value"]))
            except Exception:  # noqa: BLE001 - an output naming something not deployed locally is skipped
                continue

    _layers: dict[str, Path] = field(default_factory=dict)

    def _table(self, logical_id: str) -> None:
        assert self.template is not None
        props = self.template.props(logical_id)
        name = f"Signoff-{logical_id}"
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        ddb = self.client("dynamodb")
        desc = ddb.create_table(**args)["TableDescription"]
        ttl = props.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self.template.refs[logical_id] = name
        self.template.attrs[(logical_id, "Arn")] = desc["TableArn"]
        if "LatestStreamArn" in desc:
            self.template.attrs[(logical_id, "StreamArn")] = desc["LatestStreamArn"]

    def _function(self, logical_id: str, role: str) -> None:
        assert self.template is not None
        t = self.template
        wanted = ("Handler", "Environment", "Layers", "Timeout", "MemorySize")
        props = t.resolve({k: v for k, v in t.props(logical_id).items() if k in wanted})
        code_dir = t.asset_dir(t.props(logical_id)["Code"])
        layers = [self._layers[arn] for arn in props.get("Layers", []) if arn in self._layers]
        env = {k: self._opt_path(str(v), layers) for k, v in props.get("Environment", {}).get("Variables", {}).items()}
        created = self.client("lambda").create_function(
            FunctionName=logical_id,
            Runtime="python3.12",  # moto validates the name; the handler runs in this interpreter
            Role=role,
            Handler=props["Handler"],
            Code={"ZipFile": _empty_zip()},
            Environment={"Variables": env},
            Timeout=int(props.get("Timeout", 30)),
        )
        t.refs[logical_id] = logical_id
        t.attrs[(logical_id, "Arn")] = created["FunctionArn"]
        self.functions.add(
            LocalFunction(
                name=logical_id,
                code_dir=code_dir,
                handler=props["Handler"],
                environment=env,
                memory_mb=int(props.get("MemorySize", 512)),
                environments=self.environments,
            )
        )
        # Handlers share this process's environment: every function's variables are applied
        # once. Signoff's functions agree on shared names, so a conflict is a bug worth seeing.
        for key, value in env.items():
            if key.startswith("POWERTOOLS_LOG_LEVEL"):
                continue
            if os.environ.get(key, value) != value and key in self._applied:
                log.warning("environment variable %s differs between functions", key)
            os.environ[key] = value
            self._applied.add(key)

    _applied: set[str] = field(default_factory=set)

    def _secret(self, logical_id: str) -> None:
        """Secrets get local values: the template's shape, with the local stack's known keys filled in."""
        assert self.template is not None
        props = self.template.props(logical_id)
        value: dict[str, Any] = json.loads(props["SecretString"]) if "SecretString" in props else {}
        generated = props.get("GenerateSecretString")
        if generated:
            value = json.loads(generated.get("SecretStringTemplate", "{}"))
            value[generated["GenerateStringKey"]] = "generated-" + logical_id.lower()
        value.update({k: v for k, v in self.secret_values.items() if k in value})
        arn = self.client("secretsmanager").create_secret(Name=logical_id, SecretString=json.dumps(value))["ARN"]
        self.template.refs[logical_id] = arn

    def _state_machine(self, logical_id: str) -> None:
        assert self.template is not None
        t = self.template
        props = t.props(logical_id)
        definition = t.resolve(props["DefinitionString"])
        name = t.resolve(props.get("StateMachineName", logical_id))
        arn = self.client("stepfunctions").create_state_machine(
            name=name, definition=definition, roleArn=t.resolve(props["RoleArn"]), type="STANDARD"
        )["stateMachineArn"]
        t.refs[logical_id] = arn
        t.attrs[(logical_id, "Name")] = name
        self.state_machines[name] = arn

    def _bucket(self, logical_id: str) -> None:
        assert self.template is not None
        name = f"signoff-{logical_id.lower()}"[:63]
        self.client("s3").create_bucket(Bucket=name)
        self.template.refs[logical_id] = name
        self.template.attrs[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    def _queue(self, logical_id: str) -> None:
        assert self.template is not None
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=logical_id)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.template.refs[logical_id] = url
        self.template.attrs[(logical_id, "Arn")] = arn
        self.template.attrs[(logical_id, "QueueName")] = logical_id
        self.queues[arn] = url

    def _streams(self) -> None:
        """Event source mappings on DynamoDB streams run in our poller, not moto's (see streams.py)."""
        assert self.template is not None
        t = self.template
        mappings = []
        for logical_id in t.resources("AWS::Lambda::EventSourceMapping"):
            props = t.resolve(t.props(logical_id))
            on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            mappings.append(
                Mapping(
                    function=str(props["FunctionName"]),
                    stream_arn=str(props["EventSourceArn"]),
                    batch_size=int(props.get("BatchSize", 100)),
                    filters=[json.loads(f["Pattern"]) for f in (props.get("FilterCriteria") or {}).get("Filters", [])],
                    report_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    bisect=bool(props.get("BisectBatchOnFunctionError", False)),
                    max_retries=int(props.get("MaximumRetryAttempts", -1)),
                    on_failure_queue=self.queues.get(on_failure) if on_failure else None,
                )
            )
        if mappings:
            streams = boto3.client(
                "dynamodbstreams", region_name=REGION, endpoint_url=STREAMS_ENDPOINT.format(region=REGION)
            )
            self.poller = StreamPoller(mappings, self._invoke_for_stream, streams, self.client("sqs"), REGION).start()

    def _invoke_for_stream(self, function: str, event: dict[str, Any]) -> Any:
        if self.faults.get(function, 0) > 0:
            self.faults[function] -= 1
            raise InjectedFault(f"{function}: injected failure")
        result = self.functions[function].invoke(event)
        self._mirror_archive()
        return result

    def inject_failures(self, function_like: str, failures: int) -> list[str]:
        """Make the next `failures` stream deliveries to matching functions fail (local tests)."""
        names = [name for name in self.functions.functions if function_like.lower() in name.lower()]
        for name in names:
            self.faults[name] = failures
        return names

    def _mirror_archive(self) -> None:
        """Copy the archive objects written since the last call to disk, where `signoff audit`
        (DuckDB) reads them. Only new keys are read: listing the bucket would cost more with
        every event ever archived."""
        if self.archive_dir is None:
            return
        for bucket, key, body in _S3_PUTS.take():
            if bucket != os.environ.get("ARCHIVE_BUCKET"):
                continue
            target = self.archive_dir / key
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)

    def _clear_archive_mirror(self) -> None:
        """The table starts empty, so the mirror does too: events of a previous run would be
        "unknown" to `signoff audit verify` and counted by the SLI queries."""
        if self.archive_dir is None or not self.archive_dir.exists():
            return
        for path in self.archive_dir.rglob("*.jsonl.gz"):
            path.unlink()
        for folder in sorted((p for p in self.archive_dir.rglob("*") if p.is_dir()), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()

    def stop_executions(self) -> None:
        """Executions outlive moto: stop those still running (their waits end on their own)."""
        sfn = self.client("stepfunctions")
        for arn in self.state_machines.values():
            for execution in sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                sfn.stop_execution(executionArn=execution["executionArn"], cause="local stack stopping")

    @staticmethod
    def _opt_path(value: str, layers: list[Path]) -> str:
        """Layers unpack under /opt in Lambda; locally that is the layer's staged asset folder."""
        if not value.startswith("/opt/"):
            return value
        for layer in layers:
            candidate = layer / value.removeprefix("/opt/")
            if candidate.exists():
                return str(candidate)
        return value

    def _api(self) -> None:
        assert self.template is not None
        t = self.template
        for logical_id in t.resources("AWS::ApiGateway::RestApi"):
            t.refs[logical_id] = "local"
            t.attrs[(logical_id, "RootResourceId")] = "/"
        paths: dict[str, str] = {}
        resources = t.resources("AWS::ApiGateway::Resource")

        def path_of(ref: str) -> str:
            if ref == "/":
                return ""
            if ref not in paths:
                props = resources[ref]["Properties"]
                parent = props["ParentId"]
                parent_ref = "/" if "Fn::GetAtt" in parent else parent["Ref"]
                paths[ref] = f"{path_of(parent_ref)}/{props['PathPart']}"
            return paths[ref]

        for res in t.resources("AWS::ApiGateway::Method").values():
            props = res["Properties"]
            resource = props["ResourceId"]
            template_path = path_of("/" if "Fn::GetAtt" in resource else resource["Ref"]) or "/"
            uri_parts = props["Integration"]["Uri"]["Fn::Join"][1]
            function = next(p["Fn::GetAtt"][0] for p in uri_parts if isinstance(p, dict) and "Fn::GetAtt" in p)
            self.routes.append(
                Route(props["HttpMethod"], template_path, function, props.get("AuthorizationType", "NONE"))
            )
        self.routes.sort(key=lambda r: (r.template.count("{"), r.template))

    def route(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            params = route.match(path)
            if params is not None and route.method == method:
                return route, params
        return None

    def path_exists(self, path: str) -> bool:
        return any(r.match(path) is not None for r in self.routes)


class _PutLog:
    """Objects (bucket, key, body) put into S3 since the last `take()`, recorded as moto stores them (one process-wide
    patch of moto's S3 backend: every mock shares its class)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._puts: list[tuple[str, str, bytes]] = []

    def install(self) -> None:
        from moto.s3.models import S3Backend

        if getattr(S3Backend.put_object, "_signoff_logged", False):
            return
        original = S3Backend.put_object

        def put_object(backend: Any, bucket_name: str, key_name: str, value: bytes, *args: Any, **kwargs: Any) -> Any:
            stored = original(backend, bucket_name, key_name, value, *args, **kwargs)
            with self._lock:
                self._puts.append((bucket_name, key_name, bytes(value)))
            return stored

        put_object._signoff_logged = True  # type: ignore[attr-defined]
        S3Backend.put_object = put_object  # type: ignore[method-assign,assignment]

    def take(self) -> list[tuple[str, str, bytes]]:
        with self._lock:
            taken, self._puts = self._puts, []
        return taken


_S3_PUTS = _PutLog()


class InjectedFault(Exception):
    """A failure the local stack was asked to inject (tests of retries and dead letters)."""


def _empty_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("handler.py", "# runs in-process in the local stack\n")
    return buf.getvalue()

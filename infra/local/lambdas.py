"""Lambda functions run in-process. moto would run them in Docker; every caller (boto3 invoke,
the Step Functions interpreter, stream mappings) funnels into LambdaFunction._invoke_lambda, so
replacing it with a call into the very handler module makes them all work without Docker."""

from __future__ import annotations

import importlib.util
import json
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.awslambda.models import LambdaFunction

from local.template import ACCOUNT, REGION


@dataclass
class LambdaContext:
    """The parts of the Lambda context object the handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 512
    timeout_ms: int = 30_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


@dataclass
class LocalFunction:
    name: str
    code_dir: Path
    handler: str  # "module.function"
    environment: dict[str, str]
    memory_mb: int = 512
    _module: ModuleType | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # One invocation at a time, as in one Lambda execution environment: a handler (and the
    # framework under it, e.g. Powertools' resolver keeps the current route's arguments on the app)
    # may hold per-invocation state in module globals, which concurrent threads would mix up.
    # Reentrant: an invocation that synchronously causes another of the same function goes on.
    _running: threading.RLock = field(default_factory=threading.RLock)

    def entry(self) -> Callable[[Any, Any], Any]:
        module_name, func = self.handler.rsplit(".", 1)
        with self._lock:
            if self._module is None:
                path = self.code_dir / f"{module_name.replace('.', '/')}.py"
                spec = importlib.util.spec_from_file_location(f"signoff_local_{self.name}", path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                self._module = module
        return getattr(self._module, func)  # type: ignore[no-any-return]

    def invoke(self, event: Any) -> Any:
        entry = self.entry()
        with self._running:
            return entry(event, LambdaContext(function_name=self.name, memory_limit_in_mb=self.memory_mb))


class FunctionRegistry:
    """Function name -> in-process function; installed as moto's Lambda runtime."""

    def __init__(self) -> None:
        self.functions: dict[str, LocalFunction] = {}
        self._original: Any = None

    def add(self, fn: LocalFunction) -> None:
        self.functions[fn.name] = fn

    def __getitem__(self, name: str) -> LocalFunction:
        return self.functions[name]

    def install(self) -> None:
        registry = self
        self._original = LambdaFunction._invoke_lambda

        def _invoke_lambda(self: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
            fn = registry.functions.get(self.function_name)
            if fn is None:
                return json.dumps({"errorType": "ResourceNotFound", "errorMessage": self.function_name}), True, ""
            try:
                # boto3 invokes pass JSON text; the Step Functions interpreter passes the object.
                payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
                result = fn.invoke(payload)
            except Exception as exc:  # noqa: BLE001 - becomes the invocation's error, as in Lambda
                # The exception's class name becomes the error name Step Functions matches on.
                payload = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                return json.dumps(payload), True, traceback.format_exc()
            return json.dumps(result), False, ""

        LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]

    def uninstall(self) -> None:
        if self._original is not None:
            LambdaFunction._invoke_lambda = self._original  # type: ignore[method-assign]
            self._original = None


def quiet_disabled_metrics() -> None:
    """With POWERTOOLS_METRICS_DISABLED, Powertools still keeps every metric value in memory and
    prints the whole set as an EMF line each time one metric reaches 100 values (its size-limit
    flush does not check the switch). Off means off here: a disabled metric is not recorded."""
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

    original = AmazonCloudWatchEMFProvider.add_metric
    if getattr(original, "_signoff_quiet", False):
        return

    def add_metric(self: Any, *args: Any, **kwargs: Any) -> None:
        if is_metrics_disabled():
            return
        original(self, *args, **kwargs)

    add_metric._signoff_quiet = True  # type: ignore[attr-defined]
    AmazonCloudWatchEMFProvider.add_metric = add_metric  # type: ignore[method-assign]

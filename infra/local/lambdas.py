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
    """A function and its execution environments. An environment is one loaded copy of the handler
    module and serves one invocation at a time, as in Lambda: a handler (and the framework under
    it, e.g. Powertools' resolver keeps the current route's arguments on the app) may hold
    per-invocation state in module globals, which concurrent threads would mix up. Up to
    `environments` invocations run at once, each in its own copy; more wait for a free one."""

    name: str
    code_dir: Path
    handler: str  # "module.function"
    environment: dict[str, str]
    memory_mb: int = 512
    environments: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _idle: list[Callable[[Any, Any], Any]] = field(default_factory=list)
    _loaded: int = 0
    _free: threading.Condition = field(init=False)
    # The environment this thread is running, if any: an invocation that synchronously causes
    # another of the same function goes on in it rather than wait for itself.
    _current: threading.local = field(default_factory=threading.local)

    def __post_init__(self) -> None:
        self._free = threading.Condition(self._lock)

    def _load(self, number: int) -> Callable[[Any, Any], Any]:
        module_name, func = self.handler.rsplit(".", 1)
        path = self.code_dir / f"{module_name.replace('.', '/')}.py"
        suffix = f"_{number}" if number else ""
        spec = importlib.util.spec_from_file_location(f"signoff_local_{self.name}{suffix}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return getattr(module, func)  # type: ignore[no-any-return]

    def entry(self) -> Callable[[Any, Any], Any]:
        """An idle environment's handler, loading a new environment while under the limit."""
        with self._free:
            while not self._idle and self._loaded >= self.environments:
                self._free.wait()
            if self._idle:
                return self._idle.pop()
            self._loaded += 1
            number = self._loaded - 1
        try:
            # Loaded outside the lock: an import takes long and other environments may be idle.
            return self._load(number)
        except BaseException:
            with self._free:
                self._loaded -= 1
                self._free.notify()
            raise

    def _release(self, handler: Callable[[Any, Any], Any]) -> None:
        with self._free:
            self._idle.append(handler)
            self._free.notify()

    def invoke(self, event: Any) -> Any:
        context = LambdaContext(function_name=self.name, memory_limit_in_mb=self.memory_mb)
        running = getattr(self._current, "handler", None)
        if running is not None:
            return running(event, context)
        handler = self.entry()
        self._current.handler = handler
        try:
            return handler(event, context)
        finally:
            self._current.handler = None
            self._release(handler)


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


_RESOLVING = threading.RLock()


def one_resolver_at_a_time() -> None:
    """Powertools' event handler keeps the request being resolved on a class attribute
    (`BaseRouter.current_event`), shared by every resolver in the process. In Lambda a process
    serves one request at a time; here the API functions' environments share one process, so two
    requests resolved at once would read each other's body and headers (one caller answered with
    another's checkpoint). Resolving is kept to one request at a time, process-wide."""
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

    original = ApiGatewayResolver.resolve
    if getattr(original, "_signoff_serialized", False):
        return

    def resolve(self: Any, event: Any, context: Any) -> dict[str, Any]:
        with _RESOLVING:
            return original(self, event, context)

    resolve._signoff_serialized = True  # type: ignore[attr-defined]
    ApiGatewayResolver.resolve = resolve  # type: ignore[method-assign]

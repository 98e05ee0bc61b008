"""Narrow patches of moto's per-request overhead, found by profiling gated checkpoints end to end on
the local stack (CPU time, every thread). Each one leaves what moto answers unchanged; it only stops
moto from redoing work whose result cannot differ:

- **Response serialization** (a quarter of the CPU): for every member of every response shape,
  moto's `XFormedAttributePicker` builds six alias-provider objects to find the member's value in
  the result. For a plain dict that holds the member under its own name, its answer is that value:
  the explicit alias needs a `Meta` class (a dict has none), the shape-name alias is checked
  absent here, and the member's own name comes next. Only that case takes the shortcut; anything
  else (objects, missing keys, response transformers) goes through moto's picker as before.
- **Handler method names**: `BaseResponse.call_action` lists the handler class's methods with
  `inspect.getmembers` on every request; a class's methods do not change, so they are listed once.
- **The interpreter's AWS clients**: each Lambda task of a Step Functions execution created a new
  boto3 client (a copy of botocore's event hooks, ~50 ms); they are kept per region and service
  (boto3 clients are thread-safe). Clients for other credentials are not cached."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from botocore import xform_name
from botocore.client import BaseClient
from moto.core import responses as moto_responses
from moto.core import serialize
from moto.core import utils as moto_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.utils import boto_client

_INSTALLED = "_signoff_speed"


def _shape_alias_keys(key: str, shape: Any) -> tuple[str, ...]:
    """The keys moto's ShapeNameAlias would try before a member's own name (see its has_alias)."""
    if shape is None or shape.type_name not in ("list", "structure") or key == shape.name:
        return ()
    parent = getattr(shape, "parent", None)
    if parent is not None and shape.name in getattr(parent, "members", {}):
        return ()
    return (shape.name, xform_name(shape.name))


MISSING: Any = object()  # fast_value's "no shortcut: ask moto's picker"


def fast_value(picker: Any, context: Any) -> Any:
    """The member's value when the shortcut applies (see the module's docstring), else MISSING."""
    obj = context.obj
    if type(obj) is not dict or picker.response_transformers:
        return MISSING
    value = obj.get(context.key, MISSING)
    if value is MISSING or any(alias in obj for alias in _shape_alias_keys(context.key, context.shape)):
        return MISSING
    return value


# moto's own picker, kept for the tests that compare the two on real responses.
original_pick: Any = getattr(
    serialize.XFormedAttributePicker.__call__, "original", serialize.XFormedAttributePicker.__call__
)


def _install_picker() -> None:
    def __call__(self: Any, context: Any) -> Any:
        value = fast_value(self, context)
        return original_pick(self, context) if value is MISSING else value

    setattr(__call__, _INSTALLED, True)
    __call__.original = original_pick  # type: ignore[attr-defined]
    serialize.XFormedAttributePicker.__call__ = __call__  # type: ignore[method-assign]


def _install_method_names() -> None:
    cached = cache(moto_utils.method_names_from_class)
    setattr(cached, _INSTALLED, True)
    moto_responses.method_names_from_class = cached  # type: ignore[attr-defined]  # imported by name: patched where used


def _install_clients() -> None:
    original = boto_client.boto_client_for
    clients: dict[tuple[str, str], BaseClient] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> BaseClient:
        if state_credentials is not None:
            return original(region, service, state_credentials)
        with lock:
            client = clients.get((region, service))
            if client is None:
                client = clients[(region, service)] = original(region, service)
            return client

    setattr(boto_client_for, _INSTALLED, True)
    boto_client.boto_client_for = boto_client_for
    lambda_eval_utils.boto_client_for = boto_client_for  # type: ignore[attr-defined]  # imported by name: patched there


def install() -> None:
    if getattr(serialize.XFormedAttributePicker.__call__, _INSTALLED, False):
        return
    _install_picker()
    _install_method_names()
    _install_clients()

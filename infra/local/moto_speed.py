"""Narrow patches of moto's per-request overhead, found by profiling gated checkpoints end to end on
the local stack (CPU time, every thread). Each one leaves what moto answers unchanged; it only stops
moto from redoing work whose result cannot differ:

- **Response serialization** (a quarter of the CPU): for every member of every response shape,
  moto's `XFormedAttributePicker` builds six alias-provider objects to list the keys under which
  the member's value might be found. For a plain dict those keys depend only on the member (its
  name, shape and parent shape: a dict has no `Meta` aliases and its class name is always
  "dict"), so they are listed once, by moto's own code, and looked up in moto's order. Objects and
  responses with transformers go through moto's picker as before.
- **Handler method names**: `BaseResponse.call_action` lists the handler class's methods with
  `inspect.getmembers` on every request; a class's methods do not change, so they are listed once.
- **The interpreter's AWS clients**: each Lambda task of a Step Functions execution created a new
  boto3 client (a copy of botocore's event hooks, ~50 ms); they are kept per region, service and
  the task's role (boto3 clients are thread-safe). Credentials of any other shape are not cached.
  (The first version keyed on region and service only and skipped any call with credentials, but
  every Lambda task passes its role: it never hit. With the JSONPath cache below, 268 → 233 ms of
  the stack's CPU per gated checkpoint.)
- **JSONPath expressions**: the interpreter parses each state's InputPath, OutputPath and
  ResultPath with jsonpath_ng on every evaluation, building a yacc parser each time; a path's
  parse is the same object every time (jsonpath_ng's expressions are not changed by `find` or
  `update_or_create`), so each distinct path is parsed once."""

from __future__ import annotations

import threading
from functools import cache, lru_cache
from typing import Any

from botocore.client import BaseClient
from moto.core import responses as moto_responses
from moto.core import serialize
from moto.core import utils as moto_utils
from moto.stepfunctions.parser.asl.component.common.path import result_path
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.utils import boto_client, json_path

_INSTALLED = "_signoff_speed"


MISSING: Any = object()  # fast_value's "no shortcut: ask moto's picker"
# Candidate keys per member, in moto's order, for results that are plain dicts (see fast_value).
_candidates: dict[tuple[Any, ...], tuple[str, ...]] = {}


def fast_value(picker: Any, context: Any) -> Any:
    """The member's value as moto's picker finds it in a plain dict, without rebuilding its alias
    providers for every member of every response: the keys it tries depend only on the member
    (name, shape, parent shape), never on the dict's content, so they are computed once by moto's
    own `get_possible_keys` and the first one the dict holds wins, as in moto. MISSING when this
    does not apply (an object, response transformers, no shape)."""
    obj = context.obj
    shape = context.shape
    if type(obj) is not dict or picker.response_transformers or shape is None:
        return MISSING
    parent = getattr(shape, "parent", None)
    members = tuple(parent.members) if parent is not None and parent.type_name == "structure" else ()
    member = (
        context.key,
        shape.name,
        shape.type_name,
        shape.serialization.get("name"),
        getattr(parent, "name", None),
        getattr(parent, "type_name", None),
        members,
    )
    candidates = _candidates.get(member)
    if candidates is None:
        candidates = _candidates[member] = tuple(picker.get_possible_keys(context))
    for candidate in candidates:
        if candidate in obj:
            return obj[candidate]
    return None


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
    clients: dict[tuple[str, str, str | None], BaseClient] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> BaseClient:
        # Every Lambda task passes the state machine's role (StateCredentials); keyed by it, a
        # client serves only executions under the same role, whatever moto does with the role.
        role: str | None = getattr(state_credentials, "role_arn", None)
        if state_credentials is not None and not isinstance(role, str):
            return original(region, service, state_credentials)  # credentials of another shape: as moto
        with lock:
            client = clients.get((region, service, role))
            if client is None:
                client = clients[(region, service, role)] = original(region, service, state_credentials)
            return client

    setattr(boto_client_for, _INSTALLED, True)
    boto_client.boto_client_for = boto_client_for
    lambda_eval_utils.boto_client_for = boto_client_for  # type: ignore[attr-defined]  # imported by name: patched there


def _install_json_paths() -> None:
    for module in (json_path, result_path):
        cached = lru_cache(maxsize=1024)(module.parse)  # bounded: paths come from definitions, few
        setattr(cached, _INSTALLED, True)
        module.parse = cached  # type: ignore[attr-defined]  # imported by name: patched where used


def install() -> None:
    if getattr(serialize.XFormedAttributePicker.__call__, _INSTALLED, False):
        return
    _install_picker()
    _install_method_names()
    _install_clients()
    _install_json_paths()

"""A tool call's arguments as Signoff binds and shows them: a canonical JSON form and its SHA-256
digest (the approval holds for that digest only), and a redacted, truncated summary for approvers.

The canonical form is JSON with sorted keys, no spaces and UTF-8 text, so the same arguments give
the same digest whatever their order or the process that built them. Values that have no single
JSON form (an arbitrary object, NaN, a non-string key) are refused rather than guessed at: a digest
of `repr()` would change between runs and never match its approval."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

from pydantic import BaseModel

from signoff.domain.helpdesk.redact import redact

SUMMARY_LIMIT = 600  # characters of arguments on a card; the digest stands for the whole
_VALUE_LIMIT = 120  # characters of one string value before it is cut
# Argument names whose values are never shown, whatever they look like.
_SECRET_NAMES = ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization", "credential", "cookie")


class UnsupportedArgument(TypeError):
    """An argument has no canonical JSON form (named by its path, e.g. `arguments.user.created`)."""


def jsonable(value: Any, path: str = "arguments") -> Any:
    """`value` as plain JSON data (dicts with string keys, lists, strings, finite numbers, bools,
    None); pydantic models, dataclasses, dates, decimals, UUIDs, enums and paths by their usual text."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedArgument(f"{path}: {value} has no JSON form")
        return value
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump(mode="json"), path)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value), path)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsupportedArgument(f"{path}: key {key!r} is not a string")
            out[key] = jsonable(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [jsonable(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, enum.Enum):
        return jsonable(value.value, path)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID | PurePath):
        return str(value)
    raise UnsupportedArgument(f"{path}: a {type(value).__name__} has no canonical JSON form; pass plain data")


def canonical(arguments: Mapping[str, Any]) -> str:
    """The canonical JSON text of a tool call's arguments."""
    return json.dumps(jsonable(arguments), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def digest(arguments: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical arguments: what an approval is bound to."""
    return "sha256:" + hashlib.sha256(canonical(arguments).encode()).hexdigest()


def summary(arguments: Mapping[str, Any], limit: int = SUMMARY_LIMIT) -> str:
    """The arguments as approvers read them: values under secret-looking names hidden, secrets and
    personal data in text replaced by `[KIND]`, long strings cut, the whole bounded by `limit`."""
    shown = _shown(jsonable(arguments), "")
    text = json.dumps(shown, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
    text = redact(text).text
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value: Any, name: str) -> Any:
    if name and any(part in name.lower().replace("-", "_") for part in _SECRET_NAMES):
        return "[REDACTED]"
    if isinstance(value, dict):
        return {key: _shown(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [_shown(item, name) for item in value]
    if isinstance(value, str) and len(value) > _VALUE_LIMIT:
        return value[:_VALUE_LIMIT] + f"… ({len(value)} chars)"
    return value

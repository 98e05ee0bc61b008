"""The audit archive's record format: one audit event per object, gzip JSON Lines, under
`audit/dt=YYYY-MM-DD/` (Hive-style, for Athena partition projection).

Keys and bytes are deterministic (the key names the checkpoint and the event's sequence number;
gzip carries no timestamp), so archiving an event twice writes the same object: the archive
holds each event exactly once however often the stream delivers it.

A record is the event exactly as hashed (`data` as canonical JSON text), so `signoff audit verify`
can recompute every hash from the archive alone, plus flattened columns the SLI queries read
without JSON functions (null where they do not apply)."""

from __future__ import annotations

import gzip
import json
from typing import Any

from signoff.audit.events import AuditEvent, EventType
from signoff.domain.policy import canonical_json

PREFIX = "audit"

# Column order of the Glue table; the archiver writes exactly these keys.
COLUMNS: list[tuple[str, str]] = [
    ("checkpoint_id", "string"),
    ("seq", "int"),
    ("type", "string"),
    ("at", "string"),
    ("actor", "string"),
    ("data", "string"),
    ("prev_hash", "string"),
    ("hash", "string"),
    ("environment", "string"),
    ("service", "string"),
    ("action", "string"),
    ("requester", "string"),
    ("gate", "string"),
    ("risk", "string"),
    ("score", "double"),
    ("deadline", "string"),
    ("status", "string"),
    ("decided_by", "string"),
    ("reason", "string"),
    ("latency_seconds", "double"),
    ("policy_version", "string"),
    ("requested_at", "string"),
    ("refusal", "string"),
    ("unauthorized", "boolean"),
    ("vote", "string"),
    ("outcome", "string"),
]


def archive_key(event: AuditEvent) -> str:
    day = event.at.strftime("%Y-%m-%d")
    return f"{PREFIX}/dt={day}/{event.checkpoint_id}/{event.seq:08d}.jsonl.gz"


def _flat(event: AuditEvent) -> dict[str, Any]:
    d = event.data
    flat: dict[str, Any] = {}
    if event.type is EventType.REQUESTED:
        request, assessment = d.get("request") or {}, d.get("assessment") or {}
        flat = {
            "environment": request.get("environment"),
            "service": request.get("service"),
            "action": request.get("action"),
            "requester": (request.get("requester") or {}).get("id"),
            "gate": (assessment.get("gate") or {}).get("kind"),
            "risk": (assessment.get("risk") or {}).get("risk_class"),
            "score": (assessment.get("score") or {}).get("score"),
            "policy_version": assessment.get("policy_version"),
            "deadline": d.get("deadline"),
        }
    elif event.type in (EventType.DECIDED, EventType.CANCELLED):
        flat = {
            key: d.get(key)
            for key in (
                "status",
                "decided_by",
                "reason",
                "gate",
                "risk",
                "score",
                "environment",
                "policy_version",
                "requested_at",
                "latency_seconds",
            )
        }
    elif event.type is EventType.REFUSED:
        flat = {"refusal": d.get("refusal"), "unauthorized": d.get("unauthorized")}
    elif event.type is EventType.VOTED:
        flat = {"vote": d.get("kind")}
    elif event.type is EventType.OUTCOME_REPORTED:
        flat = {"outcome": d.get("outcome")}
    return flat


def archive_record(event: AuditEvent) -> dict[str, Any]:
    base = event.model_dump(mode="json")
    base["data"] = canonical_json(event.data)
    record = {name: None for name, _ in COLUMNS}
    record.update(base)
    record.update({k: v for k, v in _flat(event).items() if v is not None})
    return record


def encode(records: list[dict[str, Any]]) -> bytes:
    """gzip JSON Lines with a fixed header (mtime 0, no file name): same records, same bytes."""
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records)
    return gzip.compress(text.encode(), mtime=0)


def decode(blob: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(blob).decode().splitlines() if line.strip()]


def event_from_record(record: dict[str, Any]) -> AuditEvent:
    """The audit event an archived record holds (its hash can then be checked)."""
    return AuditEvent(
        checkpoint_id=record["checkpoint_id"],
        seq=record["seq"],
        type=record["type"],
        at=record["at"],
        actor=record["actor"],
        data=json.loads(record["data"]),
        prev_hash=record["prev_hash"],
        hash=record["hash"],
    )

"""Past checkpoints as the audit trail tells them: the request and assessment it was created with,
how it ended and how the action went. Read from the archive (a folder or s3://, with DuckDB) or from
the API (`--url`, every checkpoint's events); the calibration and replay tools start from here.

Offline only (DuckDB): never in the Lambda layer.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signoff.audit.events import AuditEvent, EventType
from signoff.tools.calibrate import Outcome

SUCCESS = "success"

_PAST = """
SELECT r.checkpoint_id, r.at, r.data,
       (SELECT d.status FROM audit_events d
         WHERE d.checkpoint_id = r.checkpoint_id AND d.type IN ('decided', 'cancelled')
         ORDER BY d.seq DESC LIMIT 1) AS status,
       (SELECT o.outcome FROM audit_events o
         WHERE o.checkpoint_id = r.checkpoint_id AND o.type = 'outcome_reported'
         ORDER BY o.seq DESC LIMIT 1) AS outcome
FROM audit_events r
WHERE r.type = 'requested'
ORDER BY r.at, r.checkpoint_id
"""

# A helpdesk answer's outcome: the asker's last word on it (helpful or not), with the confidence
# and class the router gave it.
_HELPDESK = """
SELECT t.checkpoint_id,
       json_extract_scalar(t.data, '$.class') AS class,
       CAST(json_extract_scalar(t.data, '$.confidence') AS DOUBLE) AS confidence,
       (SELECT json_extract_scalar(f.data, '$.value') FROM audit_events f
         WHERE f.checkpoint_id = t.checkpoint_id AND f.type = 'helpdesk_feedback'
           AND json_extract_scalar(f.data, '$.by_asker') = 'true'
         ORDER BY f.seq DESC LIMIT 1) AS feedback
FROM audit_events t
WHERE t.type = 'helpdesk_triaged'
"""


@dataclass(frozen=True)
class Past:
    """One checkpoint of the trail."""

    checkpoint_id: str
    at: str
    request: dict[str, Any]
    assessment: dict[str, Any]
    status: str | None  # APPROVED / DENIED / EXPIRED / CANCELLED, None while pending
    outcome: str | None  # success / failure / rolled_back, None if never reported
    shadow: dict[str, Any] | None = None  # a shadow policy's would-be decision, if one was deployed

    @property
    def score(self) -> float:
        return float(self.assessment["score"]["score"])

    @property
    def risk(self) -> str:
        return str(self.assessment["risk"]["risk_class"])

    @property
    def gate(self) -> str:
        return str(self.assessment["gate"]["kind"])

    @property
    def environment(self) -> str:
        return str(self.request.get("environment"))

    @property
    def failed(self) -> bool:
        return self.outcome is not None and self.outcome != SUCCESS

    def as_outcome(self) -> Outcome | None:
        if self.outcome is None:
            return None
        return Outcome(
            key=self.checkpoint_id,
            group=self.risk,
            environment=self.environment,
            score=self.score,
            success=self.outcome == SUCCESS,
        )


def _data(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else {}


def from_archive(source: str | Path, since: dt.date | None = None, until: dt.date | None = None) -> list[Past]:
    """Every checkpoint requested in the period (all of them without one), from the archive."""
    from signoff.tools.queries import open_archive

    conn = open_archive(source, since=since, until=until)
    try:
        return past_in(conn)
    finally:
        conn.close()


def past_in(conn: Any) -> list[Past]:
    """The checkpoints of an open archive connection (`queries.open_archive`)."""
    rows = conn.sql(_PAST).fetchall()
    past = []
    for checkpoint_id, at, data, status, outcome in rows:
        body = _data(data)
        past.append(
            Past(
                checkpoint_id=str(checkpoint_id),
                at=str(at),
                request=body.get("request") or {},
                assessment=body.get("assessment") or {},
                status=status,
                outcome=outcome,
                shadow=body.get("shadow"),
            )
        )
    return past


def helpdesk_outcomes(source: str | Path, since: dt.date | None = None, until: dt.date | None = None) -> list[Outcome]:
    """Helpdesk answers the asker rated, as outcomes of group `helpdesk:<class>`."""
    from signoff.tools.queries import open_archive

    conn = open_archive(source, since=since, until=until)
    try:
        rows = conn.sql(_HELPDESK).fetchall()
    finally:
        conn.close()
    return [
        Outcome(key=str(cid), group=f"helpdesk:{cls}", environment=None, score=float(conf), success=fb == "helpful")
        for cid, cls, conf, fb in rows
        if fb in ("helpful", "not_helpful") and conf is not None and cls
    ]


def from_events(checkpoints: Iterable[tuple[str, list[AuditEvent]]]) -> list[Past]:
    """The same, from each checkpoint's events (the API's /events)."""
    past = []
    for checkpoint_id, events in checkpoints:
        requested = next((e for e in events if e.type is EventType.REQUESTED), None)
        if requested is None:
            continue
        ends = [e for e in events if e.type in (EventType.DECIDED, EventType.CANCELLED)]
        outcomes = [e for e in events if e.type is EventType.OUTCOME_REPORTED]
        past.append(
            Past(
                checkpoint_id=checkpoint_id,
                at=str(requested.model_dump(mode="json")["at"]),  # as archived
                request=requested.data.get("request") or {},
                assessment=requested.data.get("assessment") or {},
                status=str(ends[-1].data.get("status")) if ends else None,
                outcome=str(outcomes[-1].data.get("outcome")) if outcomes else None,
                shadow=requested.data.get("shadow"),
            )
        )
    return sorted(past, key=lambda p: (p.at, p.checkpoint_id))

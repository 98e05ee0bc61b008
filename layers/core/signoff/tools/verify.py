"""`signoff audit verify`: the archive proved complete and unaltered against the table.

Every event the table holds is archived once, with the same content, every archived object's hash
verifies, every chain links, and nothing is archived that the table does not know. The table's side
comes from an `EventsSource`: events at hand, or every checkpoint read through the API.

Not for Lambda: only the CLI imports this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from pydantic import ValidationError

from signoff.audit.events import AuditEvent, verify_chain
from signoff.audit.records import archive_key, archive_record, decode, event_from_record
from signoff.domain.helpdesk.conversation import HELPDESK_ID_RE
from signoff.domain.models import Status
from signoff.tools.client import SignoffClient
from signoff.tools.queries import ARCHIVE_GLOB, local_archive

# -- where the table's events come from ---------------------------------------------------------


class EventsSource(Protocol):
    """The table's side of `verify`: every trail it can read (checkpoints, and helpdesk
    conversations where it can list them) with all its audit events."""

    def checkpoints(self) -> Iterator[tuple[str, list[AuditEvent]]]: ...

    def covers(self, trail_id: str) -> bool:
        """Whether the source lists this trail: an archived trail it does not cover is checked
        in the archive alone (hashes, chain), not reported as unknown to the table."""
        ...


class MemoryEvents:
    """Events already at hand (tests, or an export of the table)."""

    def __init__(self, events: Iterable[AuditEvent]) -> None:
        self._by_checkpoint: dict[str, list[AuditEvent]] = defaultdict(list)
        for event in events:
            self._by_checkpoint[event.checkpoint_id].append(event)

    def checkpoints(self) -> Iterator[tuple[str, list[AuditEvent]]]:
        for checkpoint_id in sorted(self._by_checkpoint):
            yield checkpoint_id, sorted(self._by_checkpoint[checkpoint_id], key=lambda e: e.seq)

    def covers(self, trail_id: str) -> bool:  # noqa: ARG002 (an export holds every trail)
        return True


class AuditClient(SignoffClient):
    """The two read routes `verify` needs, on top of the API client (same signing, same errors)."""

    PAGE_SIZE = 100

    def list_page(self, status: Status, next_token: str | None = None) -> dict[str, Any]:
        """GET /v1/checkpoints?status=…: {"items": [...], "next_token": ...}."""
        params = {"status": status.value.lower(), "limit": str(self.PAGE_SIZE)}
        if next_token:
            params["next_token"] = next_token
        return self._call("GET", f"/v1/checkpoints?{urlencode(params)}")[1]

    def events(self, checkpoint_id: str) -> list[dict[str, Any]]:
        """GET /v1/checkpoints/{id}/events: the hash-chained audit trail."""
        body = self._call("GET", f"/v1/checkpoints/{quote(checkpoint_id, safe='')}/events")[1]
        items = body.get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


class ApiEvents:
    """Every checkpoint the API knows, in every status, with its events."""

    # Pending first: a checkpoint decided while the listing runs then shows up again among the
    # decided ones listed afterwards, and a decided one never changes status, so none is missed.
    ORDER = (Status.PENDING, Status.APPROVED, Status.DENIED, Status.EXPIRED, Status.CANCELLED)

    def __init__(self, client: AuditClient) -> None:
        self.client = client

    def checkpoint_ids(self) -> Iterator[str]:
        seen: set[str] = set()
        for status in self.ORDER:
            token: str | None = None
            while True:
                page = self.client.list_page(status, token)
                for item in page.get("items") or []:
                    checkpoint_id = str(item.get("id"))
                    if checkpoint_id not in seen:
                        seen.add(checkpoint_id)
                        yield checkpoint_id
                token = page.get("next_token")
                if not token:
                    break

    def checkpoints(self) -> Iterator[tuple[str, list[AuditEvent]]]:
        for checkpoint_id in self.checkpoint_ids():
            events = [AuditEvent.model_validate(item) for item in self.client.events(checkpoint_id)]
            yield checkpoint_id, events

    def covers(self, trail_id: str) -> bool:
        # The API lists checkpoints; helpdesk conversations (hd_...) share the table and the archive
        # but have no read route, so their archived trails are checked in the archive alone. Any
        # other id is covered: an archived trail named like nothing Signoff writes stays unknown.
        return HELPDESK_ID_RE.fullmatch(trail_id) is None


# -- verify -------------------------------------------------------------------------------------


class ProblemKind(StrEnum):
    MISSING = "missing"  # in the table, not in the archive
    ALTERED = "altered"  # archived, but its content differs from the table's
    BAD_HASH = "bad_hash"  # an archived object whose content does not match its own hash
    COLUMNS = "columns"  # flattened columns that do not say what the event says (queries would lie)
    CHAIN = "chain"  # a broken hash chain (in the table or in the archive)
    UNKNOWN = "unknown"  # archived, but the table has no such event
    DUPLICATE = "duplicate"  # one event held by more than one object
    MISPLACED = "misplaced"  # an object whose key is not the one its event is archived under
    UNREADABLE = "unreadable"  # an object that is not gzip JSON Lines of audit records


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    checkpoint_id: str
    seq: int | None
    detail: str
    key: str | None = None

    def __str__(self) -> str:
        where = self.checkpoint_id + (f" seq {self.seq}" if self.seq is not None else "")
        return f"{self.kind.value:<10} {where}: {self.detail}" + (f" [{self.key}]" if self.key else "")


@dataclass
class VerifyReport:
    checkpoints: int = 0  # in the table
    table_events: int = 0
    archived_objects: int = 0
    problems: list[Problem] = field(default_factory=list)
    archive_only: set[str] = field(default_factory=set)  # archived trails the table's source does not list

    @property
    def ok(self) -> bool:
        return not self.problems

    def of_kind(self, kind: ProblemKind) -> list[Problem]:
        return [p for p in self.problems if p.kind is kind]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for problem in self.problems:
            counts[problem.kind.value] += 1
        return dict(counts)

    def summary(self) -> str:
        scope = (
            f"{self.checkpoints} checkpoints, {self.table_events} events in the table, "
            f"{self.archived_objects} objects in the archive"
        )
        alone = (
            f"; {len(self.archive_only)} helpdesk trail{'' if len(self.archive_only) == 1 else 's'} checked in the "
            "archive alone (hashes and chains: "
            "the API does not list conversations, so an event missing at a trail's end would not show)"
            if self.archive_only
            else ""
        )
        if self.ok:
            return f"OK: {scope}; every event archived once, unaltered, every chain intact{alone}"
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items()))
        return f"FAILED: {scope}; {len(self.problems)} problems ({counts}){alone}"


@dataclass(frozen=True)
class _Archived:
    key: str
    event: AuditEvent


def _read_archive(folder: Path, report: VerifyReport) -> dict[tuple[str, int], list[_Archived]]:
    """Every archived event by (checkpoint, seq); problems of single objects go to the report."""
    archived: dict[tuple[str, int], list[_Archived]] = defaultdict(list)
    for path in sorted(folder.glob(ARCHIVE_GLOB)):
        key = path.relative_to(folder).as_posix()
        report.archived_objects += 1
        parts = key.split("/")
        named = parts[-2] if len(parts) >= 2 else "?"
        try:
            records = decode(path.read_bytes())
        except (OSError, EOFError, ValueError) as exc:  # gzip.BadGzipFile and JSON errors are ValueErrors
            report.problems.append(Problem(ProblemKind.UNREADABLE, named, None, f"cannot decode: {exc}", key))
            continue
        if not records:
            report.problems.append(Problem(ProblemKind.UNREADABLE, named, None, "the object holds no record", key))
        for record in records:
            try:
                event = event_from_record(record)
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                detail = f"not an audit event record: {str(exc).splitlines()[0]}"
                report.problems.append(Problem(ProblemKind.UNREADABLE, named, None, detail, key))
                continue
            _check_object(key, record, event, report)
            archived[(event.checkpoint_id, event.seq)].append(_Archived(key, event))
    return archived


def _check_object(key: str, record: dict[str, Any], event: AuditEvent, report: VerifyReport) -> None:
    """What one archived object can prove by itself: its place, its hash, its flattened columns."""
    cp, seq = event.checkpoint_id, event.seq
    expected_key = archive_key(event)
    if key != expected_key:
        report.problems.append(Problem(ProblemKind.MISPLACED, cp, seq, f"should be at {expected_key}", key))
    if event.hash != event.expected_hash():
        detail = "the archived content does not match its hash (altered in the archive)"
        report.problems.append(Problem(ProblemKind.BAD_HASH, cp, seq, detail, key))
    expected = archive_record(event)
    wrong = sorted(name for name in {*expected, *record} if expected.get(name) != record.get(name))
    if wrong:
        detail = f"columns that disagree with the event's data: {', '.join(wrong)}"
        report.problems.append(Problem(ProblemKind.COLUMNS, cp, seq, detail, key))


def _differences(archived: AuditEvent, table: AuditEvent) -> str:
    fields = [name for name in AuditEvent.model_fields if getattr(archived, name) != getattr(table, name)]
    if "data" in fields:
        keys = sorted(k for k in {*archived.data, *table.data} if archived.data.get(k) != table.data.get(k))
        fields[fields.index("data")] = f"data ({', '.join(keys)})"
    return ", ".join(fields)


def verify(archive: str | Path, events_source: EventsSource, s3: Any = None) -> VerifyReport:
    """Compare the archive (a folder or s3://bucket/prefix) with the table: what is missing,
    altered, unknown, duplicated or broken."""
    with local_archive(archive, s3) as folder:
        return _verify(folder, events_source)


def _verify(folder: Path, events_source: EventsSource) -> VerifyReport:
    report = VerifyReport()
    # The archive is read before the table: the archiver runs behind the table (stream, then
    # S3), so on a live system the events written meanwhile show up as missing, never as events
    # the table does not know, which stays a sign of tampering. Verify a quiet period.
    archived = _read_archive(folder, report)
    table: dict[tuple[str, int], AuditEvent] = {}
    for checkpoint_id, events in events_source.checkpoints():
        report.checkpoints += 1
        report.table_events += len(events)
        for problem in verify_chain(events):
            report.problems.append(Problem(ProblemKind.CHAIN, checkpoint_id, None, f"in the table: {problem}"))
        for event in events:
            table[(event.checkpoint_id, event.seq)] = event

    table_checkpoints = {cp for cp, _ in table}
    for (cp, seq), copies in sorted(archived.items()):
        if len(copies) > 1:
            keys = ", ".join(c.key for c in copies)
            report.problems.append(Problem(ProblemKind.DUPLICATE, cp, seq, f"{len(copies)} objects: {keys}"))
        known = table.get((cp, seq))
        if known is None and not events_source.covers(cp):
            report.archive_only.add(cp)
            continue
        if known is None:
            detail = "not in the table" if cp in table_checkpoints else "checkpoint not in the table"
            report.problems.extend(Problem(ProblemKind.UNKNOWN, cp, seq, detail, c.key) for c in copies)
            continue
        for copy in copies:
            if copy.event != known:
                detail = f"differs from the table in {_differences(copy.event, known)}"
                report.problems.append(Problem(ProblemKind.ALTERED, cp, seq, detail, copy.key))

    for cp, seq in sorted(table.keys() - archived.keys()):
        known = table[(cp, seq)]
        detail = f"{known.type.value} event of {known.at.isoformat()} is not archived (expected {archive_key(known)})"
        report.problems.append(Problem(ProblemKind.MISSING, cp, seq, detail))

    by_checkpoint: dict[str, list[AuditEvent]] = defaultdict(list)
    for (cp, _), copies in archived.items():
        by_checkpoint[cp].append(copies[0].event)
    for cp, events in sorted(by_checkpoint.items()):
        for problem in verify_chain(events):
            report.problems.append(Problem(ProblemKind.CHAIN, cp, None, f"in the archive: {problem}"))
    return report

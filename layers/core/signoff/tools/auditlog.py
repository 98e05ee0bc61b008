"""The audit archive, locally: the SLI queries on DuckDB and `signoff audit verify`.

The named queries (`audit/queries/*.sql`) are written once, in the Trino dialect Athena runs, against
a table `audit_events` (the Glue table: the archive's columns plus the partition `dt`). Here DuckDB
gets a table of that name, loaded through a view over the archive folder, and macros for the few
Trino functions the queries call, so the very same text runs on both engines and an auditor's
figures can be checked on a laptop.

`verify` proves the archive complete and unaltered against the table: every event the table holds
is archived once, with the same content, every archived object's hash verifies, every chain links,
and nothing is archived that the table does not know.

Not for Lambda: DuckDB is a development dependency, so only the CLI imports this module.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import duckdb
from pydantic import ValidationError

from signoff.audit.events import AuditEvent, verify_chain
from signoff.audit.records import COLUMNS, PREFIX, archive_key, archive_record, decode, event_from_record
from signoff.domain.models import Status
from signoff.tools.client import SignoffClient

TABLE = "audit_events"
ARCHIVE_VIEW = "audit_archive"
QUERIES_ENV = "SIGNOFF_QUERIES"
# The archive's layout: audit/dt=YYYY-MM-DD/<checkpoint id>/<seq>.jsonl.gz (see archive_key).
ARCHIVE_GLOB = f"{PREFIX}/dt=*/**/*.jsonl.gz"
_GLUE_TO_DUCKDB = {"string": "VARCHAR", "int": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN"}
_QUERY_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TARGET = re.compile(r"^Targets?:")

# Trino functions the queries use that DuckDB lacks (or names differently). Each keeps Trino's
# meaning: approx_percentile's answer is a value of the data (DuckDB: the exact nearest rank),
# from_iso8601_timestamp gives a timestamp with time zone, json_extract_scalar gives text.
_MACROS = (
    "CREATE MACRO approx_percentile(x, p) AS quantile_disc(x, p)",
    "CREATE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)",
    "CREATE MACRO json_extract_scalar(j, path) AS json_extract_string(j, path)",
)


class AuditLogError(Exception):
    """The archive or a query cannot be used; the message says why."""


# -- the named queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """One SLI query file: its name (the file's stem), what its comment header says, its SQL."""

    name: str
    title: str
    description: str
    target: str | None
    sql: str
    path: Path


def queries_dir() -> Path:
    """Where the .sql files are: $SIGNOFF_QUERIES, else the repository's audit/queries (the CDK app
    reads the same folder for the Athena named queries), else ./audit/queries."""
    if os.environ.get(QUERIES_ENV):
        return Path(os.environ[QUERIES_ENV])
    beside_repo = Path(__file__).resolve().parents[3] / "audit" / "queries"
    return beside_repo if beside_repo.is_dir() else Path("audit") / "queries"


def parse_query(path: Path) -> Query:
    """A query from its file: the first comment line is the title, `-- Target:` the target, the
    other leading comment lines the description."""
    sql = path.read_text(encoding="utf-8")
    header: list[str] = []
    for line in sql.splitlines():
        if not line.startswith("--"):
            break
        header.append(line[2:].strip())
    title = header[0] if header else path.stem.replace("_", " ")
    target = next((h.split(":", 1)[1].strip() for h in header if _TARGET.match(h)), None)
    description = " ".join(h for h in header[1:] if h and not _TARGET.match(h))
    return Query(name=path.stem, title=title, description=description, target=target, sql=sql, path=path)


def list_queries(directory: Path | None = None) -> list[Query]:
    folder = directory or queries_dir()
    if not folder.is_dir():
        raise AuditLogError(f"no query folder at {folder} (set {QUERIES_ENV})")
    return [parse_query(path) for path in sorted(folder.glob("*.sql"))]


def get_query(name: str, directory: Path | None = None) -> Query:
    queries = {q.name: q for q in list_queries(directory)}
    if name not in queries:
        raise AuditLogError(f"no query named {name!r}; known: {', '.join(queries) or 'none'}")
    return queries[name]


# -- DuckDB over the archive --------------------------------------------------------------------


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _typed_columns() -> str:
    pairs = [f"{_sql_text(name)}: {_sql_text(_GLUE_TO_DUCKDB[kind])}" for name, kind in COLUMNS]
    return "{" + ", ".join(pairs) + "}"


def _empty_select() -> str:
    """The table's shape with no rows: read_json refuses a glob that matches nothing."""
    casts = [f'CAST(NULL AS {_GLUE_TO_DUCKDB[kind]}) AS "{name}"' for name, kind in COLUMNS]
    return f"SELECT {', '.join(casts)}, CAST(NULL AS VARCHAR) AS dt WHERE false"


def _archive_select(folder: Path) -> str:
    if not any(folder.glob(ARCHIVE_GLOB)):
        return _empty_select()
    pattern = (folder.resolve() / ARCHIVE_GLOB).as_posix()
    # Typed from COLUMNS (what the Glue table declares), not sniffed: a column that happens to be
    # null in every object would otherwise come out as the wrong type. dt stays a string, as in Glue.
    return (
        f"SELECT * FROM read_json({_sql_text(pattern)}, format = 'newline_delimited', "
        f"hive_partitioning = true, hive_types = {{'dt': 'VARCHAR'}}, columns = {_typed_columns()})"
    )


def _keep_cohort(conn: duckdb.DuckDBPyConnection, since: dt.date | None, until: dt.date | None) -> None:
    """Keep the checkpoints requested between since and until (UTC days), with everything that
    happened to them, also after until: a period's figures then count whole checkpoints."""
    if since is None and until is None:
        return
    conditions = ["type = 'requested'"]
    if since is not None:
        conditions.append(f"dt >= {_sql_text(since.isoformat())}")
    if until is not None:
        conditions.append(f"dt <= {_sql_text(until.isoformat())}")
    conn.execute(
        f"DELETE FROM {TABLE} WHERE checkpoint_id NOT IN "
        f"(SELECT checkpoint_id FROM {TABLE} WHERE {' AND '.join(conditions)})"
    )


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that speaks enough Trino for the named queries, in UTC, offline."""
    conn = duckdb.connect(":memory:")
    conn.execute("SET autoinstall_known_extensions = false")  # never download anything
    conn.execute("SET TimeZone = 'UTC'")
    for macro in _MACROS:
        conn.execute(macro)
    return conn


@contextmanager
def local_archive(source: str | Path, s3: Any = None) -> Iterator[Path]:
    """The archive as a local folder: the folder itself, or s3://bucket/prefix downloaded into a
    temporary one (removed afterwards). `s3`: a boto3 S3 client (default: boto3's usual chain)."""
    text = str(source)
    if not text.startswith("s3://"):
        folder = Path(text)
        if not folder.is_dir():
            raise AuditLogError(f"no archive folder at {folder}")
        yield folder
        return
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    if not bucket:
        raise AuditLogError(f"not an s3://bucket/prefix URL: {text}")
    folder = Path(tempfile.mkdtemp(prefix="signoff-archive-"))
    try:
        download_archive(bucket, prefix, folder, s3)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def open_archive(
    source: str | Path, *, since: dt.date | None = None, until: dt.date | None = None, s3: Any = None
) -> duckdb.DuckDBPyConnection:
    """DuckDB with `audit_events` over an archive: a local folder holding `audit/` (the local stack
    mirrors its bucket to local-data/archive), or s3://bucket/prefix (downloaded first).
    `since`/`until` keep only the checkpoints requested in those days.

    The view `audit_archive` reads the objects themselves; `audit_events` is loaded from it once.
    Reading costs about a millisecond per object (one object per event) and a report runs a dozen
    queries: loaded once, they all see the same snapshot and run in milliseconds (and a downloaded
    archive's folder can go at once)."""
    with local_archive(source, s3) as folder:
        conn = connect()
        try:
            conn.execute(f"CREATE VIEW {ARCHIVE_VIEW} AS {_archive_select(folder)}")
            conn.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM {ARCHIVE_VIEW}")
            _keep_cohort(conn, since, until)
            if str(source).startswith("s3://"):
                conn.execute(f"DROP VIEW {ARCHIVE_VIEW}")  # its files are about to go
        except duckdb.Error as exc:
            conn.close()
            raise AuditLogError(f"cannot read the archive at {source}: {exc}") from None
        return conn


def download_archive(bucket: str, prefix: str, folder: Path, s3: Any = None) -> int:
    """Copy every archived object under prefix/audit/ to folder/audit/…; how many were copied."""
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    base = prefix.strip("/")
    root = f"{base}/{PREFIX}/" if base else f"{PREFIX}/"
    copied = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root):
        for obj in page.get("Contents", []):
            key: str = obj["Key"]
            relative = key[len(base) + 1 :] if base else key
            if ".." in Path(relative).parts:
                continue  # an object key must not write outside the folder
            target = folder / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(target))
            copied += 1
    return copied


# -- running queries ----------------------------------------------------------------------------


Row = tuple[Any, ...]


def _plain(value: Any) -> Any:
    """Python values that print and serialize the same on every output format."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def is_query_name(text: str) -> bool:
    return bool(_QUERY_NAME.match(text.strip()))


def run_query(
    conn: duckdb.DuckDBPyConnection, name_or_sql: str, directory: Path | None = None
) -> tuple[list[str], list[Row]]:
    """(column names, rows) of a named query (a file's stem) or of raw SQL."""
    sql = get_query(name_or_sql.strip(), directory).sql if is_query_name(name_or_sql) else name_or_sql
    try:
        relation = conn.sql(sql)
        if relation is None:  # a statement with no result (SET, CREATE …)
            return [], []
        # Timestamps with a time zone come out as text: DuckDB would need pytz to build them.
        if any("TIME ZONE" in str(t).upper() for t in relation.types):
            projections = [
                f'CAST("{c}" AS VARCHAR) AS "{c}"' if "TIME ZONE" in str(t).upper() else f'"{c}"'
                for c, t in zip(relation.columns, relation.types, strict=True)
            ]
            relation = relation.project(", ".join(projections))
        columns = list(relation.columns)
        rows = [tuple(_plain(v) for v in row) for row in relation.fetchall()]
    except duckdb.Error as exc:
        raise AuditLogError(f"query failed: {exc}") from None
    return columns, rows


def as_dicts(columns: Sequence[str], rows: Iterable[Row]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in rows]


# -- where the table's events come from ---------------------------------------------------------


class EventsSource(Protocol):
    """The table's side of `verify`: every checkpoint with all its audit events."""

    def checkpoints(self) -> Iterator[tuple[str, list[AuditEvent]]]: ...


class MemoryEvents:
    """Events already at hand (tests, or an export of the table)."""

    def __init__(self, events: Iterable[AuditEvent]) -> None:
        self._by_checkpoint: dict[str, list[AuditEvent]] = defaultdict(list)
        for event in events:
            self._by_checkpoint[event.checkpoint_id].append(event)

    def checkpoints(self) -> Iterator[tuple[str, list[AuditEvent]]]:
        for checkpoint_id in sorted(self._by_checkpoint):
            yield checkpoint_id, sorted(self._by_checkpoint[checkpoint_id], key=lambda e: e.seq)


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
        if self.ok:
            return f"OK: {scope}; every event archived once, unaltered, every chain intact"
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts().items()))
        return f"FAILED: {scope}; {len(self.problems)} problems ({counts})"


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


# -- output -------------------------------------------------------------------------------------


FORMATS = ("table", "json", "csv")


def cell(value: Any) -> str:
    """One value as text: numbers without float noise, lists and objects as JSON, NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.2f}".rstrip("0").rstrip(".") if value == value else "NaN"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def render(columns: Sequence[str], rows: Sequence[Row], fmt: str = "table") -> str:
    """Rows as an aligned text table, a JSON array of objects, or CSV with a header."""
    if fmt == "json":
        return json.dumps(as_dicts(columns, rows), indent=2, ensure_ascii=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(v) for v in row] for row in rows)
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise AuditLogError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    texts = [[cell(v) for v in row] for row in rows]
    widths = [max([len(c), *(len(t[i]) for t in texts)]) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row[i], int | float) or row[i] is None for row in rows) for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)]
        return "  ".join(padded).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(t) for t in texts]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)

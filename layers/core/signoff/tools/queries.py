"""The SLI queries on DuckDB: the query catalog, the archive as a DuckDB table, and rows as text.

The named queries (`audit/queries/*.sql`) are written once, in the Trino dialect Athena runs, against
a table `audit_events` (the Glue table: the archive's columns plus the partition `dt`). Here DuckDB
gets a table of that name, loaded through a view over the archive folder, and macros for the few
Trino functions the queries call, so the very same text runs on both engines and an auditor's
figures can be checked on a laptop. An archive in S3 is downloaded to a temporary folder first.

Not for Lambda: DuckDB is a development dependency, so only the CLI, `verify` and the report import
this module.
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
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from signoff.audit.records import COLUMNS, PREFIX

TABLE = "audit_events"
ARCHIVE_VIEW = "audit_archive"
QUERIES_ENV = "SIGNOFF_QUERIES"
# Where the query files sit in the repository (the CDK app reads the same folder for Athena).
QUERIES_IN_REPO = Path("audit") / "queries"
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


def queries_dir(near: Path | None = None) -> Path:
    """Where the .sql files are: $SIGNOFF_QUERIES, else the repository's audit/queries, found by
    walking up from `near` (default: this file) to the first folder holding both `audit/queries`
    and `pyproject.toml`."""
    if os.environ.get(QUERIES_ENV):
        return Path(os.environ[QUERIES_ENV])
    # Up from this file, not from the working directory: the CLI is installed in editable mode
    # from the repository, so it finds the queries wherever it runs. Both markers, because a
    # pyproject.toml alone may be another project's and an audit/queries alone a data folder.
    start = (near or Path(__file__)).resolve()
    for folder in start.parents:
        if (folder / "pyproject.toml").is_file() and (folder / QUERIES_IN_REPO).is_dir():
            return folder / QUERIES_IN_REPO
    raise AuditLogError(
        f"cannot find the SLI queries: no folder above {start.parent} holds both {QUERIES_IN_REPO.as_posix()} "
        f"and pyproject.toml (is signoff installed outside its repository?); set {QUERIES_ENV} to the "
        "folder of the .sql files"
    )


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
        raise AuditLogError(f"no query folder at {folder} ({QUERIES_ENV} names the folder of the .sql files)")
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
    happened to them, also after until: a period's figures then count whole checkpoints. Helpdesk
    conversations (hd_…) have no `requested` event: their question (`helpdesk_triaged`) dates them."""
    if since is None and until is None:
        return
    conditions = ["type IN ('requested', 'helpdesk_triaged')"]
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

"""`signoff audit list|query|verify` and `signoff report`, end to end on a built archive (and, for
verify, an API on 127.0.0.1 that serves the table's events). Exit codes: 0 ok, 1 verification
failed, 3 error."""

from __future__ import annotations

import csv
import io
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from signoff.audit.events import EventType
from signoff.audit.records import archive_key
from signoff.domain.models import Status
from signoff.tools import queries
from signoff.tools.cli import main
from tests.auditdata import AuditData, build_audit_data
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.unit

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> AuditData:
    return build_audit_data(tmp_path_factory.mktemp("archive"))


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNOFF_URL", raising=False)
    monkeypatch.delenv("SIGNOFF_ARCHIVE", raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


# -- list and query ------------------------------------------------------------------------------


def test_list_names_every_query_with_its_title_and_target(run: Run) -> None:
    code, out, _ = run("audit", "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [q.name for q in queries.list_queries()]
    assert any(
        "approval_latency" in line and "Approval latency (M1)" in line and "target: p95" in line for line in lines
    )


def test_list_works_from_any_folder(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a working directory outside the repository (the installed command, run anywhere)
    monkeypatch.delenv("SIGNOFF_QUERIES", raising=False)
    monkeypatch.chdir(tmp_path)

    code, out, err = run("audit", "list")

    # Then it still lists the repository's queries
    assert code == 0, err
    names = sorted(p.stem for p in (REPO_ROOT / "audit" / "queries").glob("*.sql"))
    assert [line.split()[0] for line in out.splitlines()] == names


def test_list_with_a_wrong_query_folder_exits_3_naming_it(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_QUERIES", str(tmp_path / "missing"))
    code, out, err = run("audit", "list")
    assert (code, out) == (3, "")
    assert f"error: no query folder at {tmp_path / 'missing'} (SIGNOFF_QUERIES names the folder" in err


def test_query_prints_a_table(run: Run, data: AuditData) -> None:
    code, out, err = run("audit", "query", "approval_rate", "--archive", str(data.root))
    assert (code, err) == (0, "")
    header, rule, *rows, count = out.splitlines()
    assert header.split() == [
        "environment",
        "gate",
        "decisions",
        "approved",
        "denied",
        "expired",
        "cancelled",
        "approval_rate_pct",
    ]
    assert set(rule) == {"-", " "} and count == f"({len(rows)} rows)"
    assert any(row.split()[:2] == ["production", "hard"] for row in rows)


def test_query_as_json_and_csv_is_what_the_engine_returns(run: Run, data: AuditData) -> None:
    conn = queries.open_archive(data.root)
    columns, rows = queries.run_query(conn, "escalation_rate")
    code, out, _ = run("audit", "query", "escalation_rate", "--archive", str(data.root), "--format", "json")
    assert code == 0 and json.loads(out) == queries.as_dicts(columns, rows)
    code, out, _ = run("audit", "query", "escalation_rate", "--archive", str(data.root), "--format", "csv")
    parsed = list(csv.reader(io.StringIO(out)))
    assert code == 0 and parsed[0] == columns and len(parsed) == len(rows) + 1


def test_raw_sql_with_sql_or_as_the_argument(run: Run, data: AuditData) -> None:
    sql = "SELECT count(*) AS events, count(DISTINCT checkpoint_id) AS checkpoints FROM audit_events"
    expected = [{"events": len(data.events), "checkpoints": len(data.by_checkpoint())}]
    for argv in (("--sql", sql), (sql,)):
        code, out, _ = run("audit", "query", *argv, "--archive", str(data.root), "--format", "json")
        assert (code, json.loads(out)) == (0, expected)


def test_the_archive_defaults_to_signoff_archive(run: Run, data: AuditData, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNOFF_ARCHIVE", str(data.root))
    code, out, _ = run("audit", "query", "--sql", "SELECT count(*) AS n FROM audit_events", "--format", "csv")
    assert (code, out.split()) == (0, ["n", str(len(data.events))])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("audit", "query", "nope"), "no query named 'nope'; known: approval_failures, approval_latency"),
        (("audit", "query"), "give a query NAME or --sql"),
        (("audit", "query", "approval_rate", "--sql", "SELECT 1"), "give a query NAME or --sql"),
        (("audit", "query", "--sql", "SELECT nothing FROM audit_events"), "query failed"),
    ],
)
def test_query_errors_exit_3_with_the_reason(run: Run, data: AuditData, argv: tuple[str, ...], message: str) -> None:
    code, out, err = run(*argv, "--archive", str(data.root))
    assert (code, out) == (3, "") and message in err


def test_a_missing_archive_and_a_usage_error_exit_3(run: Run, tmp_path: Path) -> None:
    code, _, err = run("audit", "query", "approval_rate", "--archive", str(tmp_path / "absent"))
    assert code == 3 and f"no archive folder at {tmp_path / 'absent'}" in err
    code, _, err = run("audit", "query", "approval_rate", "--format", "xml")
    assert code == 3 and "invalid choice: 'xml'" in err


# -- verify against an API on 127.0.0.1 ------------------------------------------------------------


def _handler(data: AuditData) -> type[BaseHTTPRequestHandler]:
    by_checkpoint = data.by_checkpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path.endswith("/events"):
                events = by_checkpoint[parts.path.split("/")[-2]]
                body: dict[str, Any] = {"items": [e.model_dump(mode="json") for e in events]}
            else:
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                status = Status(query["status"].upper())
                ids = sorted(cp.id for cp in data.checkpoints if cp.status is status)
                start = int(query.get("next_token", "0"))
                size = int(query["limit"]) // 20  # small pages, so paging is exercised
                more = start + size < len(ids)
                page = [{"id": i} for i in ids[start : start + size]]
                body = {"items": page, "next_token": str(start + size) if more else None}
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@pytest.fixture
def api(loopback: None, data: AuditData) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(data))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_verify_an_intact_archive_exits_0(run: Run, data: AuditData, api: str) -> None:
    code, out, err = run("audit", "verify", "--archive", str(data.root), "--url", api)
    assert (code, err) == (0, "")
    assert out == (
        f"OK: {len(data.checkpoints)} checkpoints, {len(data.events)} events in the table, "
        f"{len(data.events)} objects in the archive; every event archived once, unaltered, every chain intact\n"
    )


def test_verify_names_a_deleted_object_and_exits_1(run: Run, data: AuditData, api: str, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    shutil.copytree(data.root, archive)
    gone = next(e for e in data.events if e.type is EventType.OUTCOME_REPORTED)
    (archive / archive_key(gone)).unlink()
    code, out, _ = run("audit", "verify", "--archive", str(archive), "--url", api)
    assert code == 1
    assert f"missing    {gone.checkpoint_id} seq {gone.seq}: outcome_reported event of" in out
    assert out.splitlines()[-1].startswith("FAILED: ") and "1 missing" in out.splitlines()[-1]


def test_verify_without_a_url_or_api_exits_3(run: Run, data: AuditData, loopback: None) -> None:
    code, _, err = run("audit", "verify", "--archive", str(data.root))
    assert code == 3 and "give the API's URL with --url or SIGNOFF_URL" in err
    code, _, err = run("audit", "verify", "--archive", str(data.root), "--url", "http://127.0.0.1:9")
    assert code == 3 and "cannot reach http://127.0.0.1:9" in err


# -- report ------------------------------------------------------------------------------------------


def test_report_writes_the_page(run: Run, data: AuditData, tmp_path: Path) -> None:
    out_file = tmp_path / "r.html"
    argv = ("report", "--from", data.first_day, "--to", data.last_day, "--archive", str(data.root), "-o", str(out_file))
    code, out, err = run(*argv)
    decisions = sum(1 for e in data.events if e.type in (EventType.DECIDED, EventType.CANCELLED))
    assert (code, err) == (0, "")
    assert out == (
        f"wrote {out_file}: {len(data.checkpoints)} checkpoints requested {data.first_day} to {data.last_day}, "
        f"{decisions} decisions\n"
    )
    page = out_file.read_text(encoding="utf-8")
    # Latency, decisions, reliability, and the calibration map (the archive has outcomes).
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg ") == 4


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (("--from", "2026-11-30", "--to", "2026-11-01"), "--from 2026-11-30 is after --to 2026-11-01"),
        (("--from", "yesterday", "--to", "2026-11-01"), "'yesterday' is not a day (YYYY-MM-DD)"),
        (("--to", "2026-11-01"), "the following arguments are required: --from"),
    ],
)
def test_report_refuses_bad_periods_with_exit_3(
    run: Run, data: AuditData, tmp_path: Path, dates: tuple[str, ...], message: str
) -> None:
    code, _, err = run("report", *dates, "--archive", str(data.root), "-o", str(tmp_path / "r.html"))
    assert code == 3 and message in err
    assert not (tmp_path / "r.html").exists()

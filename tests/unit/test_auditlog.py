"""The SLI queries on DuckDB over a realistic archive, each figure checked against the same figure
computed in Python from the table's events; and `verify`, which must name exactly what is
missing, altered, unknown or duplicated."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from signoff.audit.events import AuditEvent, EventType, chain_event
from signoff.audit.records import COLUMNS, archive_key, archive_record, decode, encode
from signoff.domain.models import Status
from signoff.tools.queries import (
    QUERIES_ENV,
    AuditLogError,
    as_dicts,
    list_queries,
    open_archive,
    queries_dir,
    render,
    run_query,
)
from signoff.tools.verify import ApiEvents, AuditClient, MemoryEvents, ProblemKind, VerifyReport, verify
from tests.auditdata import AuditData, build_audit_data, write_archive
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.unit

QUERIES = {
    *(
        f"helpdesk_{name}"  # tests/unit/test_helpdesk_sli.py checks these
        for name in (
            "deflection_rate",
            "first_response",
            "time_to_approval",
            "escalation_rate",
            "first_contact_resolution",
            "resolution_time",
            "helpfulness",
        )
    ),
    "approval_failures",
    "approval_latency",
    "approval_rate",
    "audit_completeness",
    "escalation_rate",
    "stalled_approvals",
    "top_approvers",
    "traffic_per_day",
    "unauthorized_attempts",
}
DECISIONS = (EventType.DECIDED, EventType.CANCELLED)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> AuditData:
    return build_audit_data(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def conn(data: AuditData) -> Iterator[Any]:
    connection = open_archive(data.root)
    yield connection
    connection.close()


def query(conn: Any, name: str) -> list[dict[str, Any]]:
    columns, rows = run_query(conn, name)
    return as_dicts(columns, rows)


@pytest.fixture
def copy(data: AuditData, tmp_path: Path) -> Path:
    """A copy of the archive a test may tamper with."""
    target = tmp_path / "archive"
    shutil.copytree(data.root, target)
    return target


# -- the figures, computed independently from the events -----------------------------------------


class Facts:
    """What the table's events say, read from the events themselves (not from archive records)."""

    def __init__(self, events: list[AuditEvent]) -> None:
        self.events = events
        self.by_cp: dict[str, list[AuditEvent]] = defaultdict(list)
        for event in events:
            self.by_cp[event.checkpoint_id].append(event)

    def first(self, cp: str, type_: EventType) -> AuditEvent | None:
        return next((e for e in self.by_cp[cp] if e.type is type_), None)

    def requested(self, cp: str) -> AuditEvent:
        event = self.first(cp, EventType.REQUESTED)
        assert event is not None
        return event

    def env_gate(self, cp: str) -> tuple[str, str]:
        data = self.requested(cp).data
        return data["request"]["environment"], data["assessment"]["gate"]["kind"]

    def decision(self, cp: str) -> AuditEvent | None:
        return next((e for e in self.by_cp[cp] if e.type in DECISIONS), None)

    def of_type(self, *types: EventType) -> list[AuditEvent]:
        return [e for e in self.events if e.type in types]


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(len(ordered) * p) - 1, 0)]


def pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


@pytest.fixture(scope="module")
def facts(data: AuditData) -> Facts:
    return Facts(data.events)


# -- the query files -----------------------------------------------------------------------------

# Functions both Trino (Athena) and DuckDB know, or that signoff.tools.queries defines as DuckDB macros.
PORTABLE_FUNCTIONS = {
    "count", "sum", "max", "min", "avg", "round", "cast", "coalesce", "nullif", "array_agg",
    "approx_percentile", "from_iso8601_timestamp", "json_extract_scalar", "json_extract", "date_diff",
}  # fmt: skip
SQL_WORDS = {"as", "in", "and", "or", "not", "filter", "over", "exists", "on", "from", "join"}


def test_every_sli_has_a_query_file_with_a_title_a_description_and_a_target() -> None:
    queries = list_queries()
    assert {q.name for q in queries} == QUERIES
    for q in queries:
        assert q.title and q.description and q.target, q.name
        assert q.path.read_text(encoding="utf-8") == q.sql


def test_the_query_files_call_only_functions_both_engines_know() -> None:
    for q in list_queries():
        body = "\n".join(line.split("--", 1)[0] for line in q.sql.splitlines())
        called = {name.lower() for name in re.findall(r"\b([A-Za-z_]\w*)\s*\(", body)} - SQL_WORDS
        ctes = {name.lower() for name in re.findall(r"\b(\w+)\s+AS\s*\(", body, flags=re.IGNORECASE)}
        assert called - ctes <= PORTABLE_FUNCTIONS, q.name
        assert "::" not in body and ";" not in body, q.name  # no DuckDB casts, one statement each
        assert re.search(r"\bFROM audit_events\b", body), q.name


def test_the_queries_are_the_repositorys_wherever_the_command_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(QUERIES_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert queries_dir() == REPO_ROOT / "audit" / "queries"


def test_the_repository_is_the_first_folder_up_with_both_audit_queries_and_pyproject(tmp_path: Path) -> None:
    # Given a repository with decoys on the way up: audit/queries without a pyproject.toml, and a
    # pyproject.toml without audit/queries
    repo = tmp_path / "repo"
    (repo / "audit" / "queries").mkdir(parents=True)
    (repo / "pyproject.toml").touch()
    (repo / "layers" / "audit" / "queries").mkdir(parents=True)
    (repo / "layers" / "core").mkdir(parents=True)
    (repo / "layers" / "core" / "pyproject.toml").touch()
    module = repo / "layers" / "core" / "signoff" / "tools" / "queries.py"

    # When the queries are looked for from a module deep inside it, Then the repository's are found
    assert queries_dir(near=module) == repo / "audit" / "queries"


def test_without_a_repository_the_error_names_the_variable_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(QUERIES_ENV, raising=False)
    with pytest.raises(AuditLogError, match=f"cannot find the SLI queries: .*; set {QUERIES_ENV} to the folder"):
        queries_dir(near=tmp_path / "site-packages" / "signoff" / "tools" / "queries.py")


def test_the_variable_overrides_the_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "only_this.sql").write_text("-- Only this\n-- Target: none\nSELECT 1 FROM audit_events\n")
    monkeypatch.setenv(QUERIES_ENV, str(tmp_path))
    assert [q.name for q in list_queries()] == ["only_this"]
    monkeypatch.setenv(QUERIES_ENV, str(tmp_path / "missing"))
    with pytest.raises(AuditLogError, match=f"no query folder at .*missing \\({QUERIES_ENV} names the folder"):
        list_queries()


# -- each figure, SQL against Python --------------------------------------------------------------


def test_approval_latency_p50_p95_by_environment_and_gate(conn: Any, facts: Facts) -> None:
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for event in facts.of_type(EventType.DECIDED):
        latencies[(event.data["environment"], event.data["gate"])].append(event.data["latency_seconds"])
    expected = [
        {
            "environment": env,
            "gate": gate,
            "decisions": len(values),
            "p50_seconds": nearest_rank(values, 0.5),
            "p95_seconds": nearest_rank(values, 0.95),
            "max_seconds": max(values),
            "over_15_minutes": sum(1 for v in values if v > 900),
        }
        for (env, gate), values in sorted(latencies.items())
    ]
    assert query(conn, "approval_latency") == expected
    assert {(r["environment"], r["gate"]) for r in expected} >= {("production", "hard"), ("staging", "auto")}


def test_approval_rate_by_environment_and_gate(conn: Any, facts: Facts) -> None:
    outcomes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for event in facts.of_type(*DECISIONS):
        outcomes[(event.data["environment"], event.data["gate"])].append(event.data["status"])
    expected = [
        {
            "environment": env,
            "gate": gate,
            "decisions": len(statuses),
            "approved": statuses.count("APPROVED"),
            "denied": statuses.count("DENIED"),
            "expired": statuses.count("EXPIRED"),
            "cancelled": statuses.count("CANCELLED"),
            "approval_rate_pct": pct(statuses.count("APPROVED"), len(statuses)),
        }
        for (env, gate), statuses in sorted(outcomes.items())
    ]
    assert query(conn, "approval_rate") == expected
    assert sum(r["denied"] for r in expected) and sum(r["expired"] for r in expected)


def test_stalled_approvals_are_pending_past_their_deadline(conn: Any, facts: Facts) -> None:
    now = datetime.now(UTC)
    gated = [cp for cp in facts.by_cp if facts.requested(cp).data["deadline"]]
    pending = [cp for cp in gated if facts.decision(cp) is None]
    deadline = {cp: datetime.fromisoformat(facts.requested(cp).data["deadline"]) for cp in pending}
    stalled = sorted((cp for cp in pending if deadline[cp] < now), key=deadline.__getitem__)
    [row] = query(conn, "stalled_approvals")
    overdue = row.pop("oldest_overdue_minutes")
    assert row == {
        "gated_requests": len(gated),
        "pending": len(pending),
        "stalled": len(stalled),
        "stalled_pct": pct(len(stalled), len(gated)),
        "stalled_checkpoints": stalled,
    }
    # Two stuck workflows are stalled; the two asked minutes ago are pending but not stalled.
    assert (len(pending), len(stalled)) == (4, 2)
    assert abs(overdue - (now - deadline[stalled[0]]).total_seconds() / 60) <= 1


def test_escalation_rate_counts_timeouts_and_escalations_by_hand(conn: Any, facts: Facts) -> None:
    rows: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for cp in facts.by_cp:
        env, gate = facts.env_gate(cp)
        if gate == "auto":
            continue
        escalations = [e for e in facts.by_cp[cp] if e.type is EventType.ESCALATED]
        row = rows[(env, gate)]
        row["gated_requests"] += 1
        row["escalated"] += bool(escalations)
        row["escalated_on_timeout"] += any(not e.data["manual"] for e in escalations)
        row["escalated_by_hand"] += any(e.data["manual"] for e in escalations)
    expected = [
        {"environment": env, "gate": gate, **row, "escalation_rate_pct": pct(row["escalated"], row["gated_requests"])}
        for (env, gate), row in sorted(rows.items())
    ]
    assert query(conn, "escalation_rate") == expected
    assert sum(r["escalated_on_timeout"] for r in expected) and sum(r["escalated_by_hand"] for r in expected)


def test_approval_failures_and_rollbacks_are_counted_over_reported_outcomes(conn: Any, facts: Facts) -> None:
    rows: dict[tuple[str, str], list[str | None]] = defaultdict(list)
    for cp in facts.by_cp:
        decision = facts.decision(cp)
        if decision is None or decision.type is not EventType.DECIDED or decision.data["status"] != "APPROVED":
            continue
        outcome = facts.first(cp, EventType.OUTCOME_REPORTED)
        rows[(decision.data["environment"], decision.data["gate"])].append(outcome.data["outcome"] if outcome else None)
    expected = []
    for (env, gate), outcomes in sorted(rows.items()):
        reported = [o for o in outcomes if o is not None]
        expected.append(
            {
                "environment": env,
                "gate": gate,
                "approved": len(outcomes),
                "outcomes_reported": len(reported),
                "successes": reported.count("success"),
                "failures": reported.count("failure"),
                "rollbacks": reported.count("rolled_back"),
                "failure_pct": pct(reported.count("failure"), len(reported)),
                "rollback_pct": pct(reported.count("rolled_back"), len(reported)),
                "outcome_coverage_pct": pct(len(reported), len(outcomes)),
            }
        )
    assert query(conn, "approval_failures") == expected
    assert sum(r["failures"] for r in expected) and sum(r["rollbacks"] for r in expected)


def test_unauthorized_attempts_name_each_person_and_refusal(conn: Any, facts: Facts) -> None:
    attempts: dict[tuple[str, str], list[AuditEvent]] = defaultdict(list)
    for event in facts.of_type(EventType.REFUSED):
        if event.data["unauthorized"]:
            attempts[(event.actor, event.data["refusal"])].append(event)
    expected = [
        {
            "actor": actor,
            "refusal": refusal,
            "attempts": len(events),
            "checkpoints": len({e.checkpoint_id for e in events}),
            "first_at": min(e.at for e in events).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "last_at": max(e.at for e in events).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for (actor, refusal), events in sorted(attempts.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ]
    assert query(conn, "unauthorized_attempts") == expected
    # Strangers, non-approvers and the requester approving their own request; never a late click.
    assert {r["refusal"] for r in expected} == {"unauthorized", "requester"}
    assert len(facts.of_type(EventType.REFUSED)) > sum(r["attempts"] for r in expected)


def test_traffic_per_day_by_gate(conn: Any, facts: Facts) -> None:
    days: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in facts.of_type(EventType.REQUESTED):
        days[event.at.strftime("%Y-%m-%d")].append(event)
    expected = [
        {
            "day": day,
            "requests": len(events),
            **{
                gate: sum(1 for e in events if e.data["assessment"]["gate"]["kind"] == gate)
                for gate in ("auto", "soft", "hard")
            },
            "requesters": len({e.data["request"]["requester"]["id"] for e in events}),
        }
        for day, events in sorted(days.items())
    ]
    assert query(conn, "traffic_per_day") == expected
    assert len(expected) >= 5


def test_audit_completeness_is_100_percent_for_the_domain_s_decisions(conn: Any, facts: Facts) -> None:
    decisions = facts.of_type(*DECISIONS)
    assert query(conn, "audit_completeness") == [
        {
            "decisions": len(decisions),
            "complete": len(decisions),
            "missing_fields": 0,
            "missing_request": 0,
            "completeness_pct": 100.0,
        }
    ]


def test_audit_completeness_names_decisions_missing_a_field_or_their_request(data: AuditData, copy: Path) -> None:
    facts = Facts(data.events)
    decisions = facts.of_type(*DECISIONS)
    # One decision without its approvers, another whose checkpoint's requested event is not archived.
    first, second = decisions[0], decisions[1]
    stripped = first.model_copy(update={"data": {k: v for k, v in first.data.items() if k != "approvers"}})
    (copy / archive_key(first)).write_bytes(encode([archive_record(stripped)]))
    (copy / archive_key(facts.requested(second.checkpoint_id))).unlink()
    conn = open_archive(copy)
    assert query(conn, "audit_completeness") == [
        {
            "decisions": len(decisions),
            "complete": len(decisions) - 2,
            "missing_fields": 1,
            "missing_request": 1,
            "completeness_pct": pct(len(decisions) - 2, len(decisions)),
        }
    ]


def test_top_approvers_by_votes_with_their_median_response(conn: Any, facts: Facts) -> None:
    people: dict[str, list[AuditEvent]] = defaultdict(list)
    for event in facts.of_type(EventType.VOTED):
        people[event.actor].append(event)

    def response(vote: AuditEvent) -> float:
        return (vote.at - facts.requested(vote.checkpoint_id).at).total_seconds()

    expected = [
        {
            "approver": person,
            "name": votes[0].data["name"],
            "votes": len(votes),
            "approvals": sum(1 for v in votes if v.data["kind"] == "approve"),
            "denials": sum(1 for v in votes if v.data["kind"] == "deny"),
            "checkpoints": len({v.checkpoint_id for v in votes}),
            "p50_response_seconds": nearest_rank([response(v) for v in votes], 0.5),
        }
        for person, votes in sorted(people.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    ][:10]
    assert query(conn, "top_approvers") == expected


# -- the engine ----------------------------------------------------------------------------------


def test_every_query_runs_on_an_empty_archive(tmp_path: Path) -> None:
    conn = open_archive(tmp_path)
    results = {q.name: query(conn, q.name) for q in list_queries()}
    assert results["stalled_approvals"] == [
        {
            "gated_requests": 0,
            "pending": 0,
            "stalled": 0,
            "stalled_pct": None,
            "oldest_overdue_minutes": None,
            "stalled_checkpoints": None,
        }
    ]
    assert results["audit_completeness"][0]["decisions"] == 0
    assert all(rows == [] for name, rows in results.items() if name not in ("stalled_approvals", "audit_completeness"))


def test_the_table_has_the_glue_columns_typed_plus_dt(conn: Any) -> None:
    columns, rows = run_query(conn, "DESCRIBE audit_events")
    types = {row[0]: row[1] for row in rows}
    assert list(types) == [*(name for name, _ in COLUMNS), "dt"]
    assert (types["seq"], types["score"], types["unauthorized"], types["dt"]) == (
        "INTEGER",
        "DOUBLE",
        "BOOLEAN",
        "VARCHAR",
    )


def test_raw_sql_runs_and_timestamps_with_a_time_zone_come_back_as_text(conn: Any, data: AuditData) -> None:
    sql = "SELECT count(*) AS n, from_iso8601_timestamp('2026-01-01T12:00:00Z') AS t FROM audit_events"
    assert run_query(conn, sql) == (["n", "t"], [(len(data.events), "2026-01-01 12:00:00+00")])


def test_unknown_names_and_bad_sql_are_errors_not_tracebacks(conn: Any) -> None:
    with pytest.raises(AuditLogError, match="no query named 'nope'; known: approval_failures"):
        run_query(conn, "nope")
    with pytest.raises(AuditLogError, match="query failed"):
        run_query(conn, "SELECT no_such_column FROM audit_events")
    with pytest.raises(AuditLogError, match="no archive folder"):
        open_archive("/nonexistent/archive")


def test_a_period_counts_the_checkpoints_requested_in_it_with_all_their_events(data: AuditData) -> None:
    facts = Facts(data.events)
    first = date.fromisoformat(data.first_day)
    until = first + timedelta(days=2)
    chosen = {cp for cp in facts.by_cp if first <= facts.requested(cp).at.date() <= until}  # requested in the period
    conn = open_archive(data.root, since=first, until=until)
    _, rows = run_query(conn, "SELECT checkpoint_id, count(*) FROM audit_events GROUP BY 1")
    assert dict(rows) == {cp: len(facts.by_cp[cp]) for cp in chosen}
    assert 0 < len(chosen) < len(facts.by_cp)


def test_rendering_as_table_json_and_csv() -> None:
    columns, rows = ["name", "n", "pct", "ids"], [("a", 1, 12.5, ["x"]), ("bb", 10, None, None)]
    assert render(columns, rows, "table").splitlines() == [
        "name   n   pct  ids",
        "----  --  ----  -----",
        'a      1  12.5  ["x"]',
        "bb    10",
        "(2 rows)",
    ]
    assert json.loads(render(columns, rows, "json")) == [
        {"name": "a", "n": 1, "pct": 12.5, "ids": ["x"]},
        {"name": "bb", "n": 10, "pct": None, "ids": None},
    ]
    assert render(columns, rows, "csv").splitlines() == ["name,n,pct,ids", 'a,1,12.5,"[""x""]"', "bb,10,,"]


# -- verify ----------------------------------------------------------------------------------------


def kinds(report: VerifyReport) -> dict[str, list[tuple[str, int | None]]]:
    found: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for problem in report.problems:
        found[problem.kind.value].append((problem.checkpoint_id, problem.seq))
    return dict(found)


def test_an_intact_archive_verifies(data: AuditData) -> None:
    report = verify(data.root, MemoryEvents(data.events))
    assert report.ok, [str(p) for p in report.problems]
    assert (report.checkpoints, report.table_events, report.archived_objects) == (
        len(data.by_checkpoint()),
        len(data.events),
        len(data.events),
    )
    assert report.summary().startswith(f"OK: {len(data.by_checkpoint())} checkpoints, {len(data.events)} events")


def _decided(data: AuditData) -> AuditEvent:
    return next(e for e in data.events if e.type is EventType.DECIDED and e.data["gate"] == "hard")


def test_an_event_altered_in_the_archive_with_its_hash_kept_is_named(data: AuditData, copy: Path) -> None:
    # Someone re-writes a decision in the archive (data changed, flattened columns to match, hash kept)
    event = _decided(data)
    forged = event.model_copy(update={"data": {**event.data, "decided_by": "mallory", "reason": "lgtm"}})
    (copy / archive_key(event)).write_bytes(encode([archive_record(forged)]))
    report = verify(copy, MemoryEvents(data.events))
    assert not report.ok
    where = (event.checkpoint_id, event.seq)
    found = kinds(report)
    assert found["altered"] == [where] and found["bad_hash"] == [where]
    [altered] = report.of_kind(ProblemKind.ALTERED)
    assert altered.detail == "differs from the table in data (decided_by, reason)"
    assert altered.key == archive_key(event)
    assert set(found) == {"altered", "bad_hash", "chain"}  # the archive's chain no longer verifies either
    assert all(p.checkpoint_id == event.checkpoint_id for p in report.problems)


def test_a_deleted_object_is_named_by_checkpoint_and_seq(data: AuditData, copy: Path) -> None:
    event = _decided(data)
    (copy / archive_key(event)).unlink()
    report = verify(copy, MemoryEvents(data.events))
    assert kinds(report)["missing"] == [(event.checkpoint_id, event.seq)]
    [missing] = report.of_kind(ProblemKind.MISSING)
    assert str(missing).startswith(f"missing    {event.checkpoint_id} seq {event.seq}: decided event of ")
    assert report.archived_objects == len(data.events) - 1
    assert "1 missing" in report.summary() and report.summary().startswith("FAILED")


def _stray(trail_id: str) -> AuditEvent:
    """The first event of a trail the table never held."""
    return chain_event(
        checkpoint_id=trail_id,
        prev=None,
        type=EventType.REQUESTED,
        at=datetime(2026, 11, 12, 9, 30, tzinfo=UTC),
        actor="someone",
        data={"request": {}, "assessment": {}, "deadline": None},
    )


def test_an_event_the_table_does_not_know_is_named(data: AuditData, copy: Path) -> None:
    stray = _stray("cp_0000000000000000000000zzzz")
    write_archive(copy, [stray])
    # And one more event after the end of a real checkpoint's chain.
    last = data.events[-1]
    extra = chain_event(
        checkpoint_id=last.checkpoint_id,
        prev=(last.seq, last.hash),
        type=EventType.OUTCOME_REPORTED,
        at=last.at,
        actor="someone",
        data={"outcome": "success"},
    )
    write_archive(copy, [extra])
    report = verify(copy, MemoryEvents(data.events))
    assert kinds(report) == {"unknown": sorted([(stray.checkpoint_id, 1), (last.checkpoint_id, last.seq + 1)])}
    details = {p.checkpoint_id: p.detail for p in report.problems}
    assert details == {stray.checkpoint_id: "checkpoint not in the table", last.checkpoint_id: "not in the table"}


def test_a_second_object_for_one_event_is_a_duplicate(data: AuditData, copy: Path) -> None:
    event = data.events[0]
    original = copy / archive_key(event)
    elsewhere = copy / "audit" / "dt=2020-01-01" / event.checkpoint_id / original.name
    elsewhere.parent.mkdir(parents=True)
    shutil.copyfile(original, elsewhere)
    report = verify(copy, MemoryEvents(data.events))
    found = kinds(report)
    assert found == {"misplaced": [(event.checkpoint_id, event.seq)], "duplicate": [(event.checkpoint_id, event.seq)]}
    [duplicate] = report.of_kind(ProblemKind.DUPLICATE)
    assert archive_key(event) in duplicate.detail and "dt=2020-01-01" in duplicate.detail


def test_flattened_columns_that_lie_about_the_event_are_named(data: AuditData, copy: Path) -> None:
    # The event (and its hash) intact, but the column the SLI queries read says otherwise.
    event = _decided(data)
    [record] = decode((copy / archive_key(event)).read_bytes())
    (copy / archive_key(event)).write_bytes(
        encode([{**record, "status": "APPROVED" if record["status"] != "APPROVED" else "DENIED"}])
    )
    report = verify(copy, MemoryEvents(data.events))
    [problem] = report.problems
    assert (problem.kind, problem.checkpoint_id, problem.seq) == (ProblemKind.COLUMNS, event.checkpoint_id, event.seq)
    assert problem.detail.endswith(": status")


def test_an_unreadable_object_is_named(data: AuditData, copy: Path) -> None:
    event = data.events[3]
    (copy / archive_key(event)).write_bytes(b"not gzip at all")
    report = verify(copy, MemoryEvents(data.events))
    assert {p.kind for p in report.problems} == {ProblemKind.UNREADABLE, ProblemKind.MISSING, ProblemKind.CHAIN}
    [unreadable] = report.of_kind(ProblemKind.UNREADABLE)
    assert unreadable.key == archive_key(event) and unreadable.checkpoint_id == event.checkpoint_id


def test_a_broken_chain_in_the_table_is_named(data: AuditData) -> None:
    event = _decided(data)
    tampered = [e.model_copy(update={"actor": "mallory"}) if e == event else e for e in data.events]
    report = verify(data.root, MemoryEvents(tampered))
    chain = [p for p in report.of_kind(ProblemKind.CHAIN) if "in the table" in p.detail]
    assert [(p.checkpoint_id, p.detail) for p in chain] == [
        (
            event.checkpoint_id,
            f"in the table: {event.checkpoint_id} event {event.seq}: content does not match its hash (altered)",
        )
    ]
    assert [(p.checkpoint_id, p.seq) for p in report.of_kind(ProblemKind.ALTERED)] == [(event.checkpoint_id, event.seq)]


# -- verify against the API ----------------------------------------------------------------------


class FakeApiOpener:
    """The API's two read routes over the builder's checkpoints, two per page, via the client."""

    def __init__(self, data: AuditData) -> None:
        self.data = data
        self.paths: list[str] = []

    def open(self, request: Any, data: None = None, timeout: float = 0) -> Any:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(request.full_url)
        self.paths.append(parts.path + ("?" + parts.query if parts.query else ""))
        if parts.path.endswith("/events"):
            checkpoint_id = parts.path.split("/")[-2]
            events = self.data.by_checkpoint()[checkpoint_id]
            return _Response({"items": [e.model_dump(mode="json") for e in events]})
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        status = Status(query["status"].upper())
        ids = sorted(cp.id for cp in self.data.checkpoints if cp.status is status)
        start = int(query.get("next_token", "0"))
        page = ids[start : start + 2]
        more = start + 2 < len(ids)
        return _Response({"items": [{"id": i} for i in page], "next_token": str(start + 2) if more else None})


class _Response:
    status = 200

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = json.dumps(body).encode()

    def read(self) -> bytes:
        return self.body

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *_: Any) -> None:
        return None


def test_the_api_source_pages_through_every_status_and_reads_each_trail(data: AuditData) -> None:
    opener = FakeApiOpener(data)
    client = AuditClient("http://127.0.0.1:8080", sign=False, opener=opener)
    report = verify(data.root, ApiEvents(client))
    assert report.ok and report.checkpoints == len(data.checkpoints)
    lists = [p for p in opener.paths if not p.endswith("/events")]
    assert lists[0] == "/v1/checkpoints?status=pending&limit=100"
    assert "/v1/checkpoints?status=approved&limit=100&next_token=2" in lists
    assert sum(p.endswith("/events") for p in opener.paths) == len(data.checkpoints)


# -- an archive in S3 ------------------------------------------------------------------------------


class FakeS3:
    """The two S3 calls the download makes, over the built archive's objects under a prefix."""

    def __init__(self, root: Path, prefix: str) -> None:
        self.objects = {f"{prefix}/{p.relative_to(root).as_posix()}": p.read_bytes() for p in root.rglob("*.jsonl.gz")}
        self.objects[f"{prefix}/other/readme.txt"] = b"not the archive"
        self.objects[f"{prefix}/audit/../../escape.jsonl.gz"] = b"must not be written outside"
        self.listed: list[str] = []

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, *, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:  # noqa: N803 (boto3's names)
        self.listed.append(f"{Bucket}/{Prefix}")
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        for start in range(0, len(keys), 100):
            yield {"Contents": [{"Key": k} for k in keys[start : start + 100]]}

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        Path(filename).write_bytes(self.objects[key])


def test_an_archive_in_s3_is_downloaded_queried_verified_and_cleaned_up(
    data: AuditData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    downloads: list[Path] = []

    def mkdtemp(prefix: str = "") -> str:
        downloads.append(tmp_path / f"{prefix}{len(downloads)}")
        downloads[-1].mkdir()
        return str(downloads[-1])

    monkeypatch.setattr("signoff.tools.queries.tempfile.mkdtemp", mkdtemp)
    s3 = FakeS3(data.root, "exports/signoff")
    conn = open_archive("s3://audit-bucket/exports/signoff/", s3=s3)
    assert run_query(conn, "SELECT count(*) FROM audit_events")[1] == [(len(data.events),)]
    assert query(conn, "traffic_per_day") == query(open_archive(data.root), "traffic_per_day")
    assert verify("s3://audit-bucket/exports/signoff", MemoryEvents(data.events), s3=s3).ok
    assert s3.listed == ["audit-bucket/exports/signoff/audit/"] * 2
    assert downloads and not any(d.exists() for d in downloads)  # nothing left behind
    assert not (tmp_path / "escape.jsonl.gz").exists()


class _ApiLike(MemoryEvents):
    """The table as the API shows it: checkpoints only (no route lists helpdesk conversations)."""

    def covers(self, trail_id: str) -> bool:
        return ApiEvents.covers(cast(ApiEvents, self), trail_id)


def test_helpdesk_trails_the_api_cannot_list_are_checked_in_the_archive_alone(data: AuditData, copy: Path) -> None:
    conversation = "hd_" + "0" * 10 + "a" * 16
    first = chain_event(
        checkpoint_id=conversation,
        prev=None,
        type=EventType.HELPDESK_TRIAGED,
        at=datetime(2026, 11, 12, 9, 30, tzinfo=UTC),
        actor="slack:U0ALICE",
        data={"class": "how_to", "route": "answer"},
    )
    second = chain_event(
        checkpoint_id=conversation,
        prev=(first.seq, first.hash),
        type=EventType.HELPDESK_POSTED,
        at=datetime(2026, 11, 12, 9, 30, 1, tzinfo=UTC),
        actor="signoff",
        data={"where": "thread"},
    )
    write_archive(copy, [first, second])
    report = verify(copy, _ApiLike(data.events))
    assert report.ok, [str(p) for p in report.problems]
    assert report.archive_only == {conversation}
    assert "1 helpdesk trail checked in the archive alone" in report.summary()

    # Altered in the archive, it is still caught there: its hash, and its chain
    forged = second.model_copy(update={"data": {"where": "dm"}})
    (copy / archive_key(second)).write_bytes(encode([archive_record(forged)]))
    assert set(kinds(verify(copy, _ApiLike(data.events)))) == {"bad_hash", "chain"}

    # An archived trail named like nothing Signoff writes stays unknown to the API's table
    stray = _stray("xx_" + "0" * 26)
    write_archive(copy, [stray])
    assert ("xx_" + "0" * 26, 1) in kinds(verify(copy, _ApiLike(data.events)))["unknown"]

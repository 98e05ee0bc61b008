"""The helpdesk's named SLI queries (audit/queries/helpdesk_*.sql) on DuckDB, against a small archive
of conversations written here event by event, as the archiver writes them, with every figure known."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from signoff.audit.events import EventType, chain_event
from signoff.audit.records import COLUMNS, PREFIX, archive_key, archive_record, encode
from signoff.domain.policy import canonical_json
from signoff.tools.queries import as_dicts, list_queries, open_archive, run_query
from tests.auditdata import write_archive

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
ASKER, AGENT, OTHER = "slack:U0ASKER", "slack:U0AGENT", "slack:U0OTHER"
HELPDESK_QUERIES = {
    "helpdesk_deflection_rate",
    "helpdesk_first_response",
    "helpdesk_time_to_approval",
    "helpdesk_escalation_rate",
    "helpdesk_first_contact_resolution",
    "helpdesk_resolution_time",
    "helpdesk_helpfulness",
}
# Written by the approval flow (branch `approve`: one event per step's checkpoint decided); not an
# EventType here yet, so its records are written as the archiver would write them.
APPROVAL_DECIDED = "helpdesk_approval_decided"


class Archive:
    """Conversations as hash-chained events, archived one object per event."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events: list[Any] = []
        self.raw: list[dict[str, Any]] = []
        self.heads: dict[str, tuple[int, str]] = {}

    def add(self, conv: str, seconds: float, type_: EventType | str, actor: str = "signoff", **data: Any) -> None:
        at = T0 + timedelta(seconds=seconds)
        if isinstance(type_, EventType):
            event = chain_event(
                checkpoint_id=conv, prev=self.heads.get(conv), type=type_, at=at, actor=actor, data=data
            )
            self.heads[conv] = (event.seq, event.hash)
            self.events.append(event)
            return
        seq = self.heads.get(conv, (0, ""))[0] + 1
        self.heads[conv] = (seq, f"h{seq}")
        record = {name: None for name, _ in COLUMNS}
        record.update(
            checkpoint_id=conv, seq=seq, type=type_, at=at.isoformat(), actor=actor, data=canonical_json(data)
        )
        self.raw.append(record)

    def ask(self, conv: str, cls: str, route: str, reply_after: float) -> None:
        self.add(conv, 0, EventType.HELPDESK_TRIAGED, ASKER, **{"class": cls, "route": route, "question": "…"})
        self.add(conv, reply_after, EventType.HELPDESK_POSTED, where="thread")

    def write(self) -> None:
        write_archive(self.root, self.events)
        for record in self.raw:
            day = record["at"][:10]
            path = self.root / PREFIX / f"dt={day}" / record["checkpoint_id"] / f"{record['seq']:08d}.jsonl.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode([record]))


def _conversations(root: Path) -> Archive:
    a = Archive(root)
    # how_to, answered; the asker changes their vote to Helpful and resolves it: first-contact resolution
    a.ask("hd_1", "how_to", "answer", 2)
    a.add("hd_1", 50, EventType.HELPDESK_FEEDBACK, ASKER, value="not_helpful", by_asker=True, **{"class": "how_to"})
    a.add("hd_1", 60, EventType.HELPDESK_FEEDBACK, ASKER, value="helpful", by_asker=True, **{"class": "how_to"})
    a.add("hd_1", 120, EventType.HELPDESK_RESOLVED, ASKER, by_asker=True)
    # how_to, answered, Not helpful, then Talk to a human: claimed after 300 s, resolved by the agent
    a.ask("hd_2", "how_to", "answer", 4)
    a.add("hd_2", 30, EventType.HELPDESK_FEEDBACK, ASKER, value="not_helpful", by_asker=True, **{"class": "how_to"})
    a.add("hd_2", 40, EventType.HELPDESK_FEEDBACK, OTHER, value="helpful", by_asker=False, **{"class": "how_to"})
    a.add("hd_2", 50, EventType.HELPDESK_HANDED_OFF, ASKER, queue="it-helpdesk")
    a.add("hd_2", 350, EventType.HELPDESK_CLAIMED, AGENT)
    a.add("hd_2", 1850, EventType.HELPDESK_RESOLVED, AGENT, by_asker=False)
    # how_to, answered, nothing more: deflected, not a confirmed resolution
    a.ask("hd_3", "how_to", "answer", 1)
    # out_of_scope: handed off at once, claimed after 600 s
    a.ask("hd_4", "out_of_scope", "handoff", 3)
    a.add("hd_4", 3, EventType.HELPDESK_HANDED_OFF, ASKER, queue="it-triage")
    a.add("hd_4", 603, EventType.HELPDESK_CLAIMED, AGENT)
    # access requests: approved at both steps (last at 3600 s), denied at step 1, and undecided
    a.ask("hd_5", "access_request", "approval", 2)
    a.add("hd_5", 600, APPROVAL_DECIDED, step="manager", status="APPROVED")
    a.add("hd_5", 3600, APPROVAL_DECIDED, step="owner", status="APPROVED")
    a.ask("hd_6", "access_request", "approval", 2)
    a.add("hd_6", 900, APPROVAL_DECIDED, step="manager", status="DENIED")
    a.ask("hd_7", "access_request", "approval", 2)
    # an incident: handed off at once, nobody claimed it yet
    a.ask("hd_8", "incident", "incident", 1)
    a.add("hd_8", 1, EventType.HELPDESK_HANDED_OFF, ASKER, queue="incident")
    a.write()
    return a


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("helpdesk-archive")
    _conversations(root)
    connection = open_archive(root)
    yield connection
    connection.close()


def rows(conn: Any, name: str) -> dict[str, dict[str, Any]]:
    columns, found = run_query(conn, name)
    return {r.pop("request_class"): r for r in as_dicts(columns, found)}


def test_the_helpdesk_queries_are_named_queries_with_a_title_and_a_target() -> None:
    queries = {q.name: q for q in list_queries()}
    assert HELPDESK_QUERIES <= set(queries)
    for name in HELPDESK_QUERIES:
        assert queries[name].title and queries[name].description and queries[name].target, name


def test_the_archive_holds_what_the_test_wrote(tmp_path: Path) -> None:
    a = _conversations(tmp_path)
    written = sorted(tmp_path.glob(f"{PREFIX}/dt=*/**/*.jsonl.gz"))
    assert len(written) == len(a.events) + len(a.raw)
    assert (tmp_path / archive_key(a.events[0])).is_file()
    assert json.loads(archive_record(a.events[0])["data"])["class"] == "how_to"  # data is JSON text


def test_deflection_rate_per_class(conn: Any) -> None:
    assert rows(conn, "helpdesk_deflection_rate") == {
        "access_request": {"questions": 3, "answered": 0, "deflected": 0, "deflection_rate_pct": 0.0},
        "how_to": {"questions": 3, "answered": 3, "deflected": 2, "deflection_rate_pct": 66.67},
        "incident": {"questions": 1, "answered": 0, "deflected": 0, "deflection_rate_pct": 0.0},
        "out_of_scope": {"questions": 1, "answered": 0, "deflected": 0, "deflection_rate_pct": 0.0},
    }


def test_time_to_first_response_of_the_bot_and_of_a_person(conn: Any) -> None:
    found = rows(conn, "helpdesk_first_response")
    # how_to replies after 2, 4 and 1 s: nearest rank p50 = 2, p90 = 4; one hand-off claimed after 300 s
    assert found["how_to"] == {
        "questions": 3,
        "bot_replies": 3,
        "bot_p50_seconds": 2.0,
        "bot_p90_seconds": 4.0,
        "handed_off": 1,
        "claimed": 1,
        "human_p50_seconds": 300.0,
        "human_p90_seconds": 300.0,
    }
    assert found["out_of_scope"]["human_p90_seconds"] == 600.0
    assert found["incident"]["handed_off"] == 1 and found["incident"]["claimed"] == 0
    assert found["incident"]["human_p50_seconds"] is None
    assert found["access_request"]["bot_p90_seconds"] == 2.0 and found["access_request"]["handed_off"] == 0


def test_time_to_approval_counts_a_conversation_approved_only_when_every_step_is(conn: Any) -> None:
    assert rows(conn, "helpdesk_time_to_approval") == {
        "access_request": {
            "approval_requests": 3,
            "decided": 2,
            "approved": 1,
            "p50_seconds": 3600.0,
            "p90_seconds": 3600.0,
        }
    }


def test_escalation_rate_at_once_and_later(conn: Any) -> None:
    found = rows(conn, "helpdesk_escalation_rate")
    assert found["how_to"] == {
        "questions": 3,
        "escalated": 1,
        "escalated_at_once": 0,
        "escalated_later": 1,
        "escalation_rate_pct": 33.33,
    }
    assert found["out_of_scope"]["escalation_rate_pct"] == 100.0 and found["out_of_scope"]["escalated_at_once"] == 1
    assert found["incident"]["escalated"] == 1
    assert found["access_request"]["escalated"] == 0


def test_first_contact_resolution_needs_a_confirmation_and_no_person(conn: Any) -> None:
    found = rows(conn, "helpdesk_first_contact_resolution")
    assert found["how_to"] == {
        "questions": 3,
        "answered": 3,
        "resolved_first_contact": 1,
        "fcr_pct": 33.33,
        "fcr_of_answered_pct": 33.33,
    }
    assert found["access_request"]["resolved_first_contact"] == 0
    assert found["access_request"]["fcr_of_answered_pct"] is None


def test_resolution_time_with_and_without_a_person(conn: Any) -> None:
    assert rows(conn, "helpdesk_resolution_time") == {
        "how_to": {
            "resolved": 2,
            "p50_seconds": 120.0,
            "p90_seconds": 1850.0,
            "resolved_with_a_person": 1,
            "with_person_p90_seconds": 1850.0,
        }
    }


def test_helpfulness_counts_each_persons_latest_vote(conn: Any) -> None:
    assert rows(conn, "helpdesk_helpfulness") == {
        "how_to": {
            "votes": 3,
            "helpful": 2,
            "not_helpful": 1,
            "helpful_pct": 66.67,
            "asker_votes": 2,
            "asker_helpful_pct": 50.0,
        }
    }


def test_every_helpdesk_query_runs_on_an_empty_archive(tmp_path: Path) -> None:
    empty = open_archive(tmp_path)
    try:
        assert all(rows(empty, name) == {} for name in HELPDESK_QUERIES)
    finally:
        empty.close()


def test_a_period_keeps_the_conversations_asked_in_it_with_everything_after(tmp_path: Path) -> None:
    a = _conversations(tmp_path)
    a.add("hd_9", 86400 * 3, EventType.HELPDESK_TRIAGED, ASKER, **{"class": "how_to", "route": "answer"})
    a.write()
    day = T0.date()

    within = open_archive(tmp_path, since=day, until=day)
    later = open_archive(tmp_path, since=day + timedelta(days=1))
    try:
        # hd_2 was resolved 1850 s after it was asked, still counted; hd_9 was asked three days later
        assert rows(within, "helpdesk_deflection_rate")["how_to"]["questions"] == 3
        assert rows(within, "helpdesk_resolution_time")["how_to"]["resolved"] == 2
        assert rows(later, "helpdesk_deflection_rate") == {
            "how_to": {"questions": 1, "answered": 1, "deflected": 1, "deflection_rate_pct": 100.0}
        }
    finally:
        within.close()
        later.close()

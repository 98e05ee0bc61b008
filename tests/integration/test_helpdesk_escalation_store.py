"""The helpdesk's deadline index and incident claims on DynamoDB (moto): hand-offs awaiting a first
response are listed by deadline from the status index and leave it when claimed or escalated; an
incident signature is claimed by one conversation at a time, with a condition."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local import moto_scaling
from signoff.adapters.dynamodb import DynamoCheckpointRepository
from signoff.adapters.helpdesk_store import DynamoConversationRepository
from signoff.domain.helpdesk.router import load_helpdesk
from signoff.domain.models import Status
from signoff.ports import HelpdeskAction
from signoff.testing.memory import FixedClock, InMemoryHelpdeskChat, InMemoryTicketing
from signoff.usecases.helpdesk import HelpdeskService, Question
from signoff.usecases.helpdesk_escalation import escalate_overdue

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def _service(tables: Any, clock: FixedClock) -> HelpdeskService:
    repo = DynamoConversationRepository(tables.table_name, tables.client)
    return HelpdeskService(
        HELPDESK, repo, InMemoryHelpdeskChat(), clock, InMemoryTicketing(), oncall=lambda r, _at: f"U_{r}"
    )


def test_awaiting_hand_offs_are_listed_by_deadline_and_leave_the_index(tables: Any) -> None:
    clock = FixedClock(T0)
    service = _service(tables, clock)
    repo = service.repo

    def ask(text: str, ts: str) -> Any:
        return service.ask(Question(text=text, user="UASKER", channel="C01ITHELP", thread_ts=ts, source="message"))

    lunch = ask("what's for lunch in the cafeteria today?", "1.1")  # it-triage: 4 h
    clock.advance(60)
    other = ask("when do we get paid?", "1.2")
    claimed = ask("where can I park my car?", "1.3")
    service.act(claimed.id, HelpdeskAction.CLAIM, "UAGENT")

    assert [c.id for c in repo.due_first_response(T0 + timedelta(hours=5), limit=10)] == [lunch.id, other.id]
    assert [c.id for c in repo.due_first_response(lunch.first_response_due, limit=10)] == [lunch.id]  # type: ignore[arg-type]
    assert repo.due_first_response(T0 + timedelta(hours=3), limit=10) == []
    # The checkpoints' own partition of the index is untouched by conversations.
    assert (
        DynamoCheckpointRepository(tables.table_name, tables.client)
        .list_by_status(Status.PENDING, limit=10, next_token=None)
        .items
        == []
    )

    result = escalate_overdue(service, T0 + timedelta(hours=5))

    assert sorted(result.pinged) == sorted([lunch.id, other.id])
    assert repo.due_first_response(T0 + timedelta(days=1), limit=10) == []
    assert escalate_overdue(service, T0 + timedelta(days=1)).pinged == []


def test_an_incident_signature_is_held_by_one_conversation_until_its_window_ends(tables: Any) -> None:
    # moto's DynamoDB is not thread-safe; the local stack's lock makes each operation atomic, as
    # DynamoDB's are, so what is tested is our condition, not moto's races.
    moto_scaling.install()
    repo = DynamoConversationRepository(tables.table_name, tables.client)
    until = T0 + timedelta(minutes=30)
    ids = [f"hd_{i:026d}" for i in range(6)]
    barrier = threading.Barrier(6)
    answers: dict[str, str | None] = {}

    def claim(cid: str) -> None:
        barrier.wait()
        answers[cid] = repo.claim_incident("sig", cid, T0, until)

    threads = [threading.Thread(target=claim, args=(cid,)) for cid in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    winners = [cid for cid, holder in answers.items() if holder is None]
    assert len(winners) == 1
    assert {holder for holder in answers.values() if holder} == {winners[0]}
    loser = next(cid for cid in ids if cid != winners[0])
    assert repo.claim_incident("sig", loser, until - timedelta(seconds=1), until) == winners[0]
    repo.extend_incident("sig", winners[0], until + timedelta(minutes=10))
    assert repo.claim_incident("sig", loser, until + timedelta(minutes=5), until) == winners[0]  # extended
    assert repo.claim_incident("sig", loser, until + timedelta(minutes=11), until) is None  # window over
    assert repo.claim_incident("sig", "hd_" + "9" * 26, T0, until, replacing=loser) is None  # a resolved one

"""The intake function as deployed: handler -> service -> DynamoDB repository and Powertools
idempotency on DynamoDB, all against moto tables built from the stack's table contract."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from signoff.audit.events import AuditEvent, verify_chain
from signoff.domain.errors import NotFound
from tests.helpers import (
    DELETE,
    Tables,
    api_event,
    invoke,
    request_body,
    response_header,
    response_json,
)

pytestmark = pytest.mark.integration


def _create(gate: str, key: str | None = None, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return invoke("intake", api_event("POST", "/v1/checkpoints", body=request_body(gate, changes), headers=headers))


def _trail(tables: Tables, checkpoint_id: str) -> list[str]:
    """Sort keys stored under one checkpoint."""
    return sorted(i["sk"]["S"] for i in tables.items() if i["pk"]["S"] == f"CP#{checkpoint_id}")


def _metas(tables: Tables) -> list[str]:
    return [i["pk"]["S"] for i in tables.items() if i["sk"]["S"] == "META"]


def _events_via_api(checkpoint_id: str) -> list[AuditEvent]:
    response = invoke("intake", api_event("GET", f"/v1/checkpoints/{checkpoint_id}/events"))
    assert response["statusCode"] == 200
    return [AuditEvent.model_validate(e) for e in response_json(response)["items"]]


@pytest.mark.parametrize(
    ("gate", "status_code", "status", "trail"),
    [
        ("auto", 200, "APPROVED", ["EVT#00000001", "EVT#00000002", "META"]),
        # requested + gate_opened (the approval workflow started)
        ("soft", 202, "PENDING", ["EVT#00000001", "EVT#00000002", "META"]),
        ("hard", 202, "PENDING", ["EVT#00000001", "EVT#00000002", "META"]),
    ],
)
def test_each_gate_is_stored_with_its_audit_trail(
    tables: Tables, gate: str, status_code: int, status: str, trail: list[str]
) -> None:
    # Given the sample for a gate / When it is posted to the intake function
    response = _create(gate)
    # Then the answer and the table agree, and the chain verifies
    assert response["statusCode"] == status_code
    created = response_json(response)
    assert created["status"] == status
    assert created["assessment"]["gate"]["kind"] == gate
    assert response_header(response, "Location") == f"/v1/checkpoints/{created['id']}"
    assert _trail(tables, created["id"]) == trail
    read = invoke("intake", api_event("GET", f"/v1/checkpoints/{created['id']}"))
    assert read["statusCode"] == 200
    assert response_json(read) == created
    assert verify_chain(_events_via_api(created["id"])) == []


def test_pending_checkpoints_are_listed_from_the_status_index(tables: Tables) -> None:
    pending = {response_json(_create(gate))["id"] for gate in ("soft", "hard")}
    _create("auto")
    response = invoke("intake", api_event("GET", "/v1/checkpoints", query={"status": "pending"}))
    assert response["statusCode"] == 200
    assert {cp["id"] for cp in response_json(response)["items"]} == pending


@pytest.mark.parametrize(("gate", "status_code", "events"), [("auto", 200, 2), ("soft", 202, 2)])
def test_idempotent_replay_returns_the_same_checkpoint_and_one_audit_trail(
    tables: Tables, gate: str, status_code: int, events: int
) -> None:
    # Given a checkpoint created with an Idempotency-Key
    first = _create(gate, key="release-7731")
    # When the same request is replayed with the same key
    replay = _create(gate, key="release-7731")
    # Then the same checkpoint comes back
    assert first["statusCode"] == replay["statusCode"] == status_code
    assert response_json(replay) == response_json(first)
    # And the table holds one META item and one audit trail for it
    checkpoint_id = response_json(first)["id"]
    assert _metas(tables) == [f"CP#{checkpoint_id}"]
    assert sum(1 for i in tables.items() if i["sk"]["S"].startswith("EVT#")) == events
    assert tables.items(tables.idempotency_table_name) == []  # the key names the checkpoint: no record
    # and, for a gate, one approval workflow execution named after the checkpoint
    if gate != "auto":
        sfn = boto3.client("stepfunctions")
        machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
        assert [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]] == [checkpoint_id]


def test_same_key_with_another_body_is_a_409(tables: Tables) -> None:
    first = response_json(_create("auto", key="release-7731"))
    response = _create("auto", key="release-7731", changes={"summary": "something else"})
    assert response["statusCode"] == 409
    assert "Idempotency-Key" in response_json(response)["detail"]
    assert _metas(tables) == [f"CP#{first['id']}"]
    assert _trail(tables, first["id"]) == ["EVT#00000001", "EVT#00000002", "META"]


@pytest.mark.parametrize(
    ("body", "status_code"),
    [
        (request_body("auto", {"environment": DELETE}), 422),
        (request_body("auto", {"signals.model_confidence": "high"}), 422),
        (request_body("auto", {"signals.model_confidence": 1.7}), 422),
        (request_body("auto", {"environment": "moon"}), 422),
        (request_body("auto", {"evidence.diff_summary": "x" * 4001}), 422),
        ("{not json", 400),
        (request_body("auto", {"summary": "x" * (256 * 1024)}), 413),
        ("[" * 5000 + "]" * 5000, 400),
        ('{"n": ' + "9" * 5001 + "}", 400),
        (json.dumps(request_body("auto"))[:-1] + ', "action": "drop-database"}', 422),
        (request_body("auto", {"summary": "a\u0000b"}), 422),
        (request_body("auto", {"signals.model_confidence": "0.9"}), 422),
        (request_body("auto", {"callback_url": "https://[::ffff:169.254.169.254]/"}), 422),
    ],
    ids=[
        "missing-field",
        "wrong-type",
        "confidence-1.7",
        "unknown-environment",
        "oversized-evidence",
        "malformed",
        "too-large",
        "nested-5000-deep",
        "5001-digits",
        "duplicate-key",
        "control-character",
        "numeric-string",
        "mapped-link-local-callback",
    ],
)
def test_invalid_input_is_a_4xx_and_leaves_both_tables_clean(
    tables: Tables, body: dict[str, Any] | str, status_code: int
) -> None:
    # Given a bad request carrying an Idempotency-Key
    event = api_event("POST", "/v1/checkpoints", body=body, headers={"Idempotency-Key": "bad-1"})
    # When it reaches the intake function
    response = invoke("intake", event)
    # Then it is refused and nothing is stored in either table
    assert response["statusCode"] == status_code, response["body"]
    assert response_json(response)["status"] == status_code
    assert tables.items() == []
    assert tables.items(tables.idempotency_table_name) == []


def test_outcome_is_recorded_once_then_409(tables: Tables) -> None:
    # Given an approved checkpoint
    created = response_json(_create("auto"))
    path = f"/v1/checkpoints/{created['id']}/outcome"
    # When its outcome is reported twice
    first = invoke("intake", api_event("POST", path, body={"outcome": "success"}))
    second = invoke("intake", api_event("POST", path, body={"outcome": "rolled_back"}))
    # Then the first is stored with a third chained event and the second is refused
    assert first["statusCode"] == 200
    assert response_json(first)["outcome"]["outcome"] == "success"
    assert second["statusCode"] == 409
    assert _trail(tables, created["id"]) == ["EVT#00000001", "EVT#00000002", "EVT#00000003", "META"]
    assert verify_chain(_events_via_api(created["id"])) == []
    assert (
        response_json(invoke("intake", api_event("GET", f"/v1/checkpoints/{created['id']}")))["outcome"]["outcome"]
        == "success"
    )


def test_unknown_checkpoint_is_a_404(tables: Tables) -> None:
    response = invoke("intake", api_event("GET", "/v1/checkpoints/cp_00000000000000000000000000"))
    assert response["statusCode"] == 404
    assert NotFound("cp_00000000000000000000000000").args[0] in response_json(response)["detail"]

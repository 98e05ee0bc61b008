"""The intake and scoring Lambda handlers, driven in-process with API Gateway REST proxy events and
in-memory fakes behind `signoff.composition`: status codes, problem details, idempotency, OpenAPI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from signoff import composition
from signoff.api.http import MAX_BODY_BYTES, PROBLEM
from tests.helpers import (
    CALLER_ARN,
    DELETE,
    MemoryWiring,
    api_event,
    invoke,
    memory_service,
    request_body,
    response_header,
    response_json,
    shipped_policy,
    stored_checkpoints,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def api() -> Iterator[MemoryWiring]:
    """Both API functions wired to in-memory fakes and the shipped policy."""
    wired = memory_service()
    composition.override(api=wired.service, policy=shipped_policy())
    yield wired
    composition.reset()


def _intake(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    return invoke("intake", api_event(method, path, **kwargs))


def _create(gate: str, key: str | None = None, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = {"Idempotency-Key": key} if key else None
    return _intake("POST", "/v1/checkpoints", body=request_body(gate, changes), headers=headers)


def _assert_problem(response: dict[str, Any], status: int) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    assert response_header(response, "Content-Type") == PROBLEM
    problem = response_json(response)
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    return problem


def _assert_nothing_stored(api: MemoryWiring) -> None:
    assert stored_checkpoints(api.repo) == []


# -- creating and reading ----------------------------------------------------------------------


def test_auto_request_is_approved_with_200(api: MemoryWiring) -> None:
    # Given the auto sample / When it is posted
    response = _create("auto")
    # Then it is decided at once: 200, APPROVED, and stored under the caller's IAM identity
    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["status"] == "APPROVED"
    assert body["assessment"]["gate"]["kind"] == "auto"
    assert body["caller"] == CALLER_ARN
    assert response_header(response, "Location") == f"/v1/checkpoints/{body['id']}"
    assert api.repo.get(body["id"]).status.value == "APPROVED"


@pytest.mark.parametrize("gate", ["soft", "hard"])
def test_waiting_request_is_accepted_with_202_and_a_location(api: MemoryWiring, gate: str) -> None:
    response = _create(gate)
    assert response["statusCode"] == 202
    body = response_json(response)
    assert body["status"] == "PENDING"
    assert body["assessment"]["gate"]["kind"] == gate
    assert body["deadline"] is not None
    assert response_header(response, "Location") == f"/v1/checkpoints/{body['id']}"


def test_get_returns_the_stored_checkpoint(api: MemoryWiring) -> None:
    created = response_json(_create("soft"))
    response = _intake("GET", f"/v1/checkpoints/{created['id']}")
    assert response["statusCode"] == 200
    assert response_json(response) == created


def test_get_events_returns_the_audit_trail(api: MemoryWiring) -> None:
    created = response_json(_create("auto"))
    response = _intake("GET", f"/v1/checkpoints/{created['id']}/events")
    assert response["statusCode"] == 200
    assert [e["type"] for e in response_json(response)["items"]] == ["requested", "decided"]


@pytest.mark.parametrize("checkpoint_id", ["cp_00000000000000000000000000", "not-an-id"])
def test_get_unknown_checkpoint_is_a_404_problem(api: MemoryWiring, checkpoint_id: str) -> None:
    problem = _assert_problem(_intake("GET", f"/v1/checkpoints/{checkpoint_id}"), 404)
    assert checkpoint_id in problem["detail"]


def test_pending_checkpoints_are_listed_page_by_page(api: MemoryWiring) -> None:
    # Given three pending checkpoints and an approved one
    pending = {response_json(_create("soft"))["id"] for _ in range(3)}
    _create("auto")
    # When the pending ones are listed two at a time
    first = _intake("GET", "/v1/checkpoints", query={"status": "pending", "limit": "2"})
    assert first["statusCode"] == 200
    page1 = response_json(first)
    assert len(page1["items"]) == 2 and page1["next_token"]
    second = _intake(
        "GET", "/v1/checkpoints", query={"status": "pending", "limit": "2", "next_token": page1["next_token"]}
    )
    page2 = response_json(second)
    # Then every pending checkpoint is listed once and the last page has no token
    assert page2["next_token"] is None
    assert {cp["id"] for cp in page1["items"] + page2["items"]} == pending
    assert {cp["status"] for cp in page1["items"] + page2["items"]} == {"PENDING"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"status": "sleeping"}, "query status"),
        ({"limit": "0"}, "query limit"),
        ({"next_token": "%%%garbage%%%"}, "next_token"),
    ],
)
def test_bad_list_query_is_a_422_naming_the_parameter(api: MemoryWiring, query: dict[str, str], field: str) -> None:
    problem = _assert_problem(_intake("GET", "/v1/checkpoints", query=query), 422)
    assert field in [e["field"] for e in problem["errors"]]


# -- dry run -----------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", ["auto", "soft", "hard"])
def test_score_explains_the_gate_and_stores_nothing(api: MemoryWiring, gate: str) -> None:
    response = invoke("scoring", api_event("POST", "/v1/score", body=request_body(gate)))
    assert response["statusCode"] == 200
    assessment = response_json(response)
    assert assessment["gate"]["kind"] == gate
    assert assessment["policy_version"] == shipped_policy().version
    assert len(assessment["explanation"]) == 4
    _assert_nothing_stored(api)


def test_score_refuses_an_unknown_environment(api: MemoryWiring) -> None:
    response = invoke("scoring", api_event("POST", "/v1/score", body=request_body("auto", {"environment": "moon"})))
    problem = _assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["environment"]


def test_scoring_function_serves_no_checkpoint_routes(api: MemoryWiring) -> None:
    _assert_problem(invoke("scoring", api_event("POST", "/v1/checkpoints", body=request_body("auto"))), 404)
    _assert_nothing_stored(api)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"environment": DELETE}, "environment"),
        ({"signals.model_confidence": DELETE}, "signals.model_confidence"),
        ({"signals.model_confidence": "very"}, "signals.model_confidence"),
        ({"risk.rollback_available": "maybe"}, "risk.rollback_available"),
        ({"signals.model_confidence": 1.7}, "signals.model_confidence"),
        ({"environment": "moon"}, "environment"),
        ({"evidence.diff_summary": "x" * 4001}, "evidence.diff_summary"),
        ({"evidence.links.0.url": "ftp://files.example.com"}, "evidence.links.0.url"),
        ({"callback_url": "http://hooks.example.com"}, "callback_url"),
        ({"priority": "urgent"}, "priority"),
    ],
    ids=[
        "missing-field",
        "missing-nested-field",
        "wrong-type-number",
        "wrong-type-bool",
        "confidence-1.7",
        "unknown-environment",
        "oversized-evidence",
        "non-http-link",
        "http-callback",
        "unknown-field",
    ],
)
@pytest.mark.parametrize("key", [None, "retry-me"], ids=["no-key", "with-key"])
def test_invalid_request_is_a_422_naming_the_field_and_stores_nothing(
    api: MemoryWiring, changes: dict[str, Any], field: str, key: str | None
) -> None:
    # Given a sample with one field broken / When it is posted
    response = _create("auto", key=key, changes=changes)
    # Then the problem names the field, and nothing was written anywhere
    problem = _assert_problem(response, 422)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert field in problem["detail"]
    _assert_nothing_stored(api)


@pytest.mark.parametrize("body", ["{not json", '{"action": "deploy",', "[1, 2"], ids=["bare", "truncated", "array"])
def test_malformed_json_is_a_400(api: MemoryWiring, body: str) -> None:
    _assert_problem(_intake("POST", "/v1/checkpoints", body=body), 400)
    _assert_nothing_stored(api)


@pytest.mark.parametrize("function", ["intake", "scoring"])
def test_body_over_256_kib_is_a_413_before_parsing(api: MemoryWiring, function: str) -> None:
    # Given an otherwise well-formed request whose body is one byte too large
    body = request_body("auto", {"summary": ""})
    padding = MAX_BODY_BYTES + 1 - len(api_event("POST", "/", body=body)["body"])
    body["summary"] = "x" * padding
    path = "/v1/checkpoints" if function == "intake" else "/v1/score"
    # When it is posted / Then it is refused as too large, not as invalid
    event = api_event("POST", path, body=body)
    assert len(event["body"]) == MAX_BODY_BYTES + 1
    problem = _assert_problem(invoke(function, event), 413)
    assert str(MAX_BODY_BYTES) in problem["detail"]
    _assert_nothing_stored(api)


def test_outcome_with_an_unknown_kind_is_a_422(api: MemoryWiring) -> None:
    created = response_json(_create("auto"))
    response = _intake("POST", f"/v1/checkpoints/{created['id']}/outcome", body={"outcome": "great"})
    problem = _assert_problem(response, 422)
    assert [e["field"] for e in problem["errors"]] == ["outcome"]
    assert api.repo.get(created["id"]).outcome is None


# -- idempotency and conflicts -----------------------------------------------------------------


@pytest.mark.parametrize(("gate", "status", "events"), [("auto", 200, 2), ("hard", 202, 1)])
def test_same_idempotency_key_and_body_returns_the_same_checkpoint(
    api: MemoryWiring, gate: str, status: int, events: int
) -> None:
    first = _create(gate, key="release-7731")
    retry = _create(gate, key="release-7731")
    assert first["statusCode"] == retry["statusCode"] == status
    assert response_json(retry) == response_json(first)
    assert [cp.id for cp in stored_checkpoints(api.repo)] == [response_json(first)["id"]]
    assert len(api.repo.events(response_json(first)["id"])) == events


def test_same_idempotency_key_with_another_body_is_a_409(api: MemoryWiring) -> None:
    first = response_json(_create("auto", key="release-7731"))
    problem = _assert_problem(_create("auto", key="release-7731", changes={"summary": "different"}), 409)
    assert "Idempotency-Key" in problem["detail"]
    assert [cp.id for cp in stored_checkpoints(api.repo)] == [first["id"]]


def test_outcome_is_accepted_once_then_409(api: MemoryWiring) -> None:
    # Given an approved checkpoint
    created = response_json(_create("auto"))
    path = f"/v1/checkpoints/{created['id']}/outcome"
    # When its outcome is reported twice
    first = _intake("POST", path, body={"outcome": "success", "details": "all green"})
    second = _intake("POST", path, body={"outcome": "failure"})
    # Then the first is recorded and the second refused
    assert first["statusCode"] == 200
    assert response_json(first)["outcome"]["outcome"] == "success"
    assert response_json(first)["outcome"]["reported_by"] == CALLER_ARN
    _assert_problem(second, 409)
    assert api.repo.get(created["id"]).outcome.outcome.value == "success"  # type: ignore[union-attr]
    assert len(api.repo.events(created["id"])) == 3


def test_outcome_of_a_pending_checkpoint_is_a_409(api: MemoryWiring) -> None:
    created = response_json(_create("soft"))
    _assert_problem(_intake("POST", f"/v1/checkpoints/{created['id']}/outcome", body={"outcome": "success"}), 409)


# -- routes ------------------------------------------------------------------------------------


def test_openapi_document_lists_the_public_routes(api: MemoryWiring) -> None:
    response = _intake("GET", "/v1/openapi.json")
    assert response["statusCode"] == 200
    document = response_json(response)
    assert document["info"]["title"] == "Signoff"
    assert {"/v1/checkpoints", "/v1/score", "/v1/checkpoints/{checkpoint_id}"} <= set(document["paths"])
    assert "post" in document["paths"]["/v1/checkpoints"] and "get" in document["paths"]["/v1/checkpoints"]
    assert "post" in document["paths"]["/v1/score"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/nowhere"), ("DELETE", "/v1/nowhere"), ("GET", "/")])
def test_unknown_route_is_a_404_problem(api: MemoryWiring, method: str, path: str) -> None:
    problem = _assert_problem(_intake(method, path), 404)
    assert path in problem["detail"]


def test_a_known_path_with_another_method_is_a_405_problem(api: MemoryWiring) -> None:
    # DELETE /v1/checkpoints was a 404; the path exists, so RFC 9110 says 405 with Allow.
    response = _intake("DELETE", "/v1/checkpoints")
    problem = _assert_problem(response, 405)
    assert "/v1/checkpoints" in problem["detail"]
    assert response_header(response, "Allow") == "GET, POST"
    _assert_nothing_stored(api)

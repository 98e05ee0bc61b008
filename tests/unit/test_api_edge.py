"""The API's edge (signoff.api.http.handle): whatever a client sends gets a 4xx problem naming the
reason or the field, never a 5xx, and nothing is stored. Both functions, in-process, on fakes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from signoff import composition
from signoff.api.http import MAX_DEPTH, MAX_NUMBER_CHARS, PROBLEM
from tests.helpers import (
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

FUNCTIONS = [("intake", "/v1/checkpoints"), ("scoring", "/v1/score")]


@pytest.fixture
def api() -> Iterator[MemoryWiring]:
    wired = memory_service()
    composition.override(api=wired.service, policy=shipped_policy())
    yield wired
    composition.reset()


def _post(function: str, path: str, body: str, **overrides: Any) -> dict[str, Any]:
    """POST `body` as is; `overrides` replace fields of the proxy event (a base64 body)."""
    return invoke(function, {**api_event("POST", path, body=body), **overrides})


def _refused(response: dict[str, Any], status: int, api: MemoryWiring) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    assert response_header(response, "Content-Type") == PROBLEM
    problem = response_json(response)
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert stored_checkpoints(api.repo) == []
    return problem


def _sample(gate: str = "auto", changes: dict[str, Any] | None = None) -> str:
    return json.dumps(request_body(gate, changes))


# -- what breaks a parser --------------------------------------------------------------------------


@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
@pytest.mark.parametrize(
    "body",
    ["[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000],
    ids=["arrays", "objects"],
)
def test_nesting_5000_deep_is_a_400(api: MemoryWiring, function: str, path: str, body: str) -> None:
    problem = _refused(_post(function, path, body), 400, api)
    assert f"deeper than {MAX_DEPTH}" in problem["detail"]


def test_nesting_inside_a_field_is_a_400(api: MemoryWiring) -> None:
    body = _sample().replace('"summary":', '"deep": ' + "[" * 5000 + "]" * 5000 + ', "summary":')
    assert "deeper than" in _refused(_post("intake", "/v1/checkpoints", body), 400, api)["detail"]


def test_nesting_at_the_limit_reaches_validation(api: MemoryWiring) -> None:
    # 32 levels parse (and fail validation as an unknown field), brackets inside strings do not count
    body = _sample(changes={"summary": "[[[[[" * 20}).replace(
        '"summary":', '"deep": ' + "[" * 31 + "]" * 31 + ', "summary":'
    )
    problem = _refused(_post("intake", "/v1/checkpoints", body), 422, api)
    assert [e["field"] for e in problem["errors"]] == ["deep"]


@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
@pytest.mark.parametrize("number", ["1" * 5001, "0." + "1" * 5001, "1" * (MAX_NUMBER_CHARS + 1)])
def test_a_number_too_long_is_a_400(api: MemoryWiring, function: str, path: str, number: str) -> None:
    body = _sample().replace('"model_confidence": 0.97', f'"model_confidence": {number}')
    assert number[:10] not in _sample()
    problem = _refused(_post(function, path, body), 400, api)
    assert f"longer than {MAX_NUMBER_CHARS}" in problem["detail"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_a_400(api: MemoryWiring, literal: str) -> None:
    body = _sample().replace('"model_confidence": 0.97', f'"model_confidence": {literal}')
    assert literal in body
    _refused(_post("intake", "/v1/checkpoints", body), 400, api)


# -- encoding and media type -----------------------------------------------------------------------


@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
def test_a_body_that_is_not_utf8_is_a_400_naming_the_byte(api: MemoryWiring, function: str, path: str) -> None:
    raw = b"\xff\xfe" + _sample().encode("utf-16-le")
    problem = _refused(_post(function, path, base64.b64encode(raw).decode(), isBase64Encoded=True), 400, api)
    assert "UTF-8" in problem["detail"] and "byte 0 (0xff)" in problem["detail"]


def test_invalid_utf8_in_the_middle_names_its_offset(api: MemoryWiring) -> None:
    raw = b'{"action": "de\xc3ploy"}'
    response = _post("intake", "/v1/checkpoints", base64.b64encode(raw).decode(), isBase64Encoded=True)
    assert "byte 14 (0xc3)" in _refused(response, 400, api)["detail"]


def test_a_body_marked_base64_that_is_not_is_a_400(api: MemoryWiring) -> None:
    _refused(_post("intake", "/v1/checkpoints", "not base64!", isBase64Encoded=True), 400, api)


def test_a_valid_base64_body_is_accepted_as_json(api: MemoryWiring) -> None:
    body = base64.b64encode(_sample().encode()).decode()
    assert _post("intake", "/v1/checkpoints", body, isBase64Encoded=True)["statusCode"] == 200


@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
@pytest.mark.parametrize(
    "content_type",
    ["application/vnd.evil+json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"],
)
def test_other_media_types_are_a_415_problem(api: MemoryWiring, function: str, path: str, content_type: str) -> None:
    event = api_event("POST", path, body=request_body("auto"), headers={"Content-Type": content_type})
    problem = _refused(invoke(function, event), 415, api)
    assert content_type.split(";")[0] in problem["detail"]


@pytest.mark.parametrize("charset", ["utf-16", "latin-1", "ISO-8859-1"])
def test_a_charset_other_than_utf8_is_a_415(api: MemoryWiring, charset: str) -> None:
    event = api_event(
        "POST",
        "/v1/checkpoints",
        body=request_body("auto"),
        headers={"Content-Type": f"application/json; charset={charset}"},
    )
    assert charset in _refused(invoke("intake", event), 415, api)["detail"]


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", 'Application/JSON; charset="UTF-8"'])
def test_utf8_json_is_accepted_however_it_is_spelled(api: MemoryWiring, content_type: str) -> None:
    event = api_event("POST", "/v1/checkpoints", body=request_body("auto"), headers={"Content-Type": content_type})
    assert invoke("intake", event)["statusCode"] == 200


# -- what a parser accepts and must not ------------------------------------------------------------


def test_a_duplicate_key_is_a_422_naming_it_not_the_last_one_winning(api: MemoryWiring) -> None:
    # Given a request whose "action" appears twice, the second one destructive
    body = _sample()[:-1] + ', "action": "drop-database"}'
    # When it is posted / Then it is refused naming the key, and nothing was approved or stored
    problem = _refused(_post("intake", "/v1/checkpoints", body), 422, api)
    assert [e["field"] for e in problem["errors"]] == ["action"]
    assert "duplicate key" in problem["detail"]


@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
def test_a_duplicate_nested_key_is_named_by_its_path(api: MemoryWiring, function: str, path: str) -> None:
    body = _sample().replace('"production_data": false', '"production_data": false, "production_data": true')
    assert body != _sample()
    problem = _refused(_post(function, path, body), 422, api)
    assert [e["field"] for e in problem["errors"]] == ["risk.production_data"]


def test_a_duplicate_environment_cannot_change_the_risk_class(api: MemoryWiring) -> None:
    body = _sample()[:-1] + ', "environment": "production"}'
    assert [e["field"] for e in _refused(_post("scoring", "/v1/score", body), 422, api)["errors"]] == ["environment"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"summary": "ok\u0000then"}, "summary"),
        ({"target": "docs\u001b[31m"}, "target"),
        ({"evidence.diff_summary": "a\u007fb"}, "evidence.diff_summary"),
        ({"requester.display_name": "x\u0085"}, "requester.display_name"),
        ({"signals.validation.0.name": "unit\u0008"}, "signals.validation.0.name"),
        ({"summary": "lone \ud800 surrogate"}, "summary"),
    ],
    ids=["nul-summary", "escape-target", "del", "c1", "in-a-list", "lone-surrogate"],
)
@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
def test_control_characters_are_a_422_naming_the_field(
    api: MemoryWiring, function: str, path: str, changes: dict[str, Any], field: str
) -> None:
    problem = _refused(_post(function, path, _sample(changes=changes)), 422, api)
    assert [e["field"] for e in problem["errors"]] == [field]


def test_tabs_and_newlines_are_text(api: MemoryWiring) -> None:
    response = _post("intake", "/v1/checkpoints", _sample(changes={"evidence.diff_summary": "a\tb\nc\r\nd"}))
    assert response["statusCode"] == 200
    assert response_json(response)["request"]["evidence"]["diff_summary"] == "a\tb\nc\r\nd"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"signals.model_confidence": "0.9"}, "signals.model_confidence"),
        ({"risk.blast_radius_pct": "5"}, "risk.blast_radius_pct"),
        ({"risk.production_data": 0}, "risk.production_data"),
        ({"risk.rollback_available": "true"}, "risk.rollback_available"),
        ({"signals.validation.0.passed": 1}, "signals.validation.0.passed"),
        ({"evidence.tests": [{"name": "unit", "passed": "3", "failed": 0}]}, "evidence.tests.0.passed"),
        ({"signals.historical_success": True}, "signals.historical_success"),
    ],
)
@pytest.mark.parametrize(("function", "path"), FUNCTIONS)
def test_no_coercion_a_string_or_bool_is_not_a_number(
    api: MemoryWiring, function: str, path: str, changes: dict[str, Any], field: str
) -> None:
    problem = _refused(_post(function, path, _sample(changes=changes)), 422, api)
    assert field in [e["field"] for e in problem["errors"]]


def test_an_integral_number_written_as_a_float_is_still_a_count(api: MemoryWiring) -> None:
    body = _sample(changes={"evidence.tests": [{"name": "unit", "passed": 3.0, "failed": 0e0}]})
    assert _post("intake", "/v1/checkpoints", body)["statusCode"] == 200


# -- methods ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["TRACE", "DELETE", "PUT", "PATCH", "OPTIONS", "CONNECT", "BREW"])
def test_a_method_a_route_does_not_serve_is_a_405_with_allow(api: MemoryWiring, method: str) -> None:
    problem = _refused(invoke("intake", api_event(method, "/v1/checkpoints")), 405, api)
    assert method in problem["detail"]
    assert response_header(invoke("intake", api_event(method, "/v1/checkpoints")), "Allow") == "GET, POST"


def test_a_405_lists_what_the_path_serves(api: MemoryWiring) -> None:
    response = invoke("scoring", api_event("GET", "/v1/score"))
    _refused(response, 405, api)
    assert response_header(response, "Allow") == "POST"


# -- the OpenAPI document --------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    response = invoke("intake", api_event("GET", "/v1/openapi.json"))
    assert response["statusCode"] == 200
    document: dict[str, Any] = response_json(response)
    return document


def test_the_document_declares_real_response_schemas_and_problem_details(api: MemoryWiring) -> None:
    paths = _document()["paths"]
    create = paths["/v1/checkpoints"]["post"]["responses"]
    for status, model in (("200", "Checkpoint"), ("202", "Checkpoint")):
        assert create[status]["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
    assert "Location" in create["202"]["headers"]
    assert set(create) >= {"400", "409", "413", "415", "422", "503"}
    assert paths["/v1/checkpoints"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"
    ].endswith("/CheckpointPage")
    assert paths["/v1/checkpoints/{checkpoint_id}/events"]["get"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]["$ref"].endswith("/EventList")
    assert paths["/v1/score"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Assessment"
    )
    for operations in paths.values():
        for operation in operations.values():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def test_the_document_names_the_policys_environments(api: MemoryWiring) -> None:
    schemas = _document()["components"]["schemas"]
    environment = schemas["CheckpointRequest"]["properties"]["environment"]
    assert environment["enum"] == list(shipped_policy().policy.environments)
    assert "HTTPValidationError" not in schemas  # a 422 is a problem, not Powertools' shape

"""The request model: what a caller may send, and where a bad request is wrong."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from signoff.domain.models import CheckpointRequest
from tests.helpers import DELETE, make_request, request_body

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("gate", ["auto", "soft", "hard"])
def test_samples_are_valid_requests(gate: str) -> None:
    request = make_request(gate)
    assert request.environment in {"staging", "production"}


@pytest.mark.parametrize(
    ("changes", "location", "error_type"),
    [
        ({"signals.model_confidence": 1.7}, ("signals", "model_confidence"), "less_than_equal"),
        ({"signals.model_confidence": -0.1}, ("signals", "model_confidence"), "greater_than_equal"),
        ({"signals.historical_success": float("nan")}, ("signals", "historical_success"), "finite_number"),
        ({"environment": DELETE}, ("environment",), "missing"),
        ({"signals.model_confidence": DELETE}, ("signals", "model_confidence"), "missing"),
        ({"requester": DELETE}, ("requester",), "missing"),
        # Strict numbers and booleans: a string is the wrong type, whatever it holds.
        ({"signals.model_confidence": "very"}, ("signals", "model_confidence"), "float_type"),
        ({"risk.rollback_available": "maybe"}, ("risk", "rollback_available"), "bool_type"),
        ({"signals.model_confidence": "0.9"}, ("signals", "model_confidence"), "float_type"),
        ({"risk.production_data": 1}, ("risk", "production_data"), "bool_type"),
        ({"signals.validation.0.passed": "true"}, ("signals", "validation", 0, "passed"), "bool_type"),
        ({"summary": "a\u0000b"}, ("summary",), "string_pattern_mismatch"),
        ({"callback_url": "https://[::ffff:169.254.169.254]/"}, ("callback_url",), "value_error"),
        ({"callback_url": "https://metadata.google.internal/"}, ("callback_url",), "value_error"),
        ({"signals.validation": "all green"}, ("signals", "validation"), "list_type"),
        ({"risk.blast_radius_pct": 101}, ("risk", "blast_radius_pct"), "less_than_equal"),
        ({"risk.data_sensitivity": "secret"}, ("risk", "data_sensitivity"), "enum"),
        ({"evidence.diff_summary": "x" * 4001}, ("evidence", "diff_summary"), "string_too_long"),
        (
            {"evidence.links": [{"title": f"l{i}", "url": "https://x.example"} for i in range(21)]},
            ("evidence", "links"),
            "too_long",
        ),
        (
            {"evidence.links": [{"title": "ftp", "url": "ftp://files.example.com/a"}]},
            ("evidence", "links", 0, "url"),
            "value_error",
        ),
        ({"callback_url": "http://hooks.example.com/signoff"}, ("callback_url",), "value_error"),
        ({"priority": "urgent"}, ("priority",), "extra_forbidden"),
        ({"signals.vibes": 1}, ("signals", "vibes"), "extra_forbidden"),
        ({"summary": "   "}, ("summary",), "string_too_short"),
    ],
    ids=[
        "confidence-1.7",
        "confidence-negative",
        "nan",
        "missing-environment",
        "missing-nested-field",
        "missing-requester",
        "string-for-number",
        "string-for-bool",
        "numeric-string-for-number",
        "number-for-bool",
        "string-for-nested-bool",
        "control-character",
        "mapped-link-local-callback",
        "metadata-callback",
        "string-for-list",
        "blast-radius-above-100",
        "unknown-data-sensitivity",
        "diff-summary-4001-chars",
        "21-links",
        "non-http-link",
        "http-callback",
        "unknown-field",
        "unknown-nested-field",
        "blank-summary",
    ],
)
def test_invalid_request_is_rejected_at_the_field(
    changes: dict[str, Any], location: tuple[Any, ...], error_type: str
) -> None:
    # Given a valid sample with one field broken
    body = request_body("auto", changes)
    # When it is validated
    with pytest.raises(ValidationError) as caught:
        CheckpointRequest.model_validate(body)
    # Then the error points at that field, for that reason
    errors = {(tuple(e["loc"]), e["type"]) for e in caught.value.errors()}
    assert (location, error_type) in errors, errors


@pytest.mark.parametrize(
    "changes",
    [
        {"evidence.diff_summary": "x" * 4000},
        {"evidence.links": [{"title": f"l{i}", "url": f"https://x.example/{i}"} for i in range(20)]},
        {"evidence.links": [{"title": "plain", "url": "http://intranet.example/run/1"}]},
        {"callback_url": "https://hooks.example.com/signoff"},
        {"signals.model_confidence": 1, "signals.observability_alignment": 0},
        {"evidence.diff_summary": "line 1\r\n\tline 2\n"},
        {"risk.data_sensitivity": "restricted"},
    ],
    ids=["diff-summary-4000-chars", "20-links", "http-link", "https-callback", "unit-bounds", "tabs-newlines", "enum"],
)
def test_values_at_the_limits_are_accepted(changes: dict[str, Any]) -> None:
    CheckpointRequest.model_validate(request_body("auto", changes))


def test_requests_are_immutable() -> None:
    request = make_request("auto")
    with pytest.raises(ValidationError):
        request.environment = "production"  # type: ignore[misc]

"""API fuzzing: schemathesis generates requests from the API's own OpenAPI document (served by the
intake function at /v1/openapi.json) and sends them, in-process, to both API functions through an
API Gateway stand-in (tests/fuzz/gateway.py). Every response is checked: never a 5xx, the status
code, media type, headers and body are the ones the document declares, schema-valid data is
accepted and schema-invalid data refused. The valid samples of events/api seed the generation,
and real checkpoint ids seed the path parameters, so the runs reach the engine and the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from werkzeug.test import Client

from signoff import composition
from signoff.usecases.intake import idempotent_checkpoint_id
from tests.fuzz import gateway
from tests.helpers import CALLER_ARN, MemoryWiring, load_event, memory_service, request_body, shipped_policy

pytestmark = pytest.mark.fuzz

SAMPLES = ("checkpoint-auto", "checkpoint-soft", "checkpoint-hard")
# Per operation (7 of them); the module runs in about 40 s on 2 cores (the budget is 3 minutes).
MAX_EXAMPLES = 100

CONFIG = SchemathesisConfig.from_dict(
    {
        # Valid and invalid requests (the default, stated): the invalid ones are where a 5xx hides.
        "generation": {"mode": "all"},
        "checks": {
            # 422 stays out of the statuses valid data may get: a schema-valid body must pass.
            # 404 (an id that names nothing) and 409 (an outcome reported twice) are about state.
            "positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409"]},
        },
        "operations": [
            {
                # next_token is opaque (documented so): only a token a page returned is valid, which
                # no schema can say. Any other is a 422 naming it, as the document declares.
                "include-path": "/v1/checkpoints",
                "include-method": "GET",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "409", "422"]}},
            }
        ],
    }
)


# Checkpoints made with an Idempotency-Key have ids known in advance: the document is seeded
# with them when the module loads, and the fixture stores them before the first case runs.
IDS = {name: idempotent_checkpoint_id(CALLER_ARN, f"fuzz-{name}") for name in SAMPLES}


@pytest.fixture(scope="module", autouse=True)
def wired() -> Iterator[MemoryWiring]:
    """Both functions on in-memory fakes, with one checkpoint per gate already stored."""
    wiring = memory_service()
    composition.override(api=wiring.service, policy=shipped_policy())
    client = Client(gateway.app)
    for name in SAMPLES:
        response = client.post("/v1/checkpoints", json=load_event(name), headers={"Idempotency-Key": f"fuzz-{name}"})
        assert response.status_code in (200, 202), response.text
        assert response.json["id"] == IDS[name]
    yield wiring
    composition.reset()


def _seeded(document: dict[str, Any]) -> dict[str, Any]:
    """The document with examples: the samples for request bodies, real ids for path parameters."""
    examples = {name: {"value": load_event(name)} for name in SAMPLES}
    for path, operations in document["paths"].items():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "checkpoint_id":
                    parameter["examples"] = {name: {"value": value} for name, value in IDS.items()}
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None and path in ("/v1/checkpoints", "/v1/score"):
                body["examples"] = examples
            elif body is not None and path.endswith("/outcome"):
                body["examples"] = {"success": {"value": {"outcome": "success", "details": "all green"}}}
    return document


def _served_document() -> dict[str, Any]:
    """GET /v1/openapi.json from the intake function (it names the policy's environments)."""
    composition.override(api=memory_service().service, policy=shipped_policy())
    try:
        response = Client(gateway.app).get("/v1/openapi.json")
    finally:
        composition.reset()
    assert response.status_code == 200, response.text
    document: dict[str, Any] = json.loads(response.text)
    return document


schema = schemathesis.openapi.from_dict(_seeded(_served_document()), config=CONFIG)
schema.app = gateway.app  # every generated request goes through the stand-in, in-process


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible, never flaky
    suppress_health_check=list(HealthCheck),
)
def test_every_response_conforms_and_nothing_is_a_server_error(case: Any) -> None:
    case.call_and_validate()


def test_the_fuzzed_document_is_the_served_one() -> None:
    # The examples are added by the test; everything else is the document as served.
    served = _served_document()
    assert set(served["paths"]) >= {"/v1/checkpoints", "/v1/score", "/v1/checkpoints/{checkpoint_id}/outcome"}
    assert (
        request_body("auto")["environment"]
        in served["components"]["schemas"]["CheckpointRequest"]["properties"]["environment"]["enum"]
    )

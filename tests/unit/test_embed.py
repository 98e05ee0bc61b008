"""A checkpoint embedded in the caller's own Step Functions workflow (intake invoked with
`.waitForTaskToken`): an auto decision answers the caller at once, a gate keeps the caller's token
for Finalize, a request Signoff cannot accept fails the caller with Signoff.InvalidRequest and
stores nothing, and a retried task finds the checkpoint it already created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from signoff.audit.events import EventType
from signoff.domain.errors import WorkflowUnavailable
from signoff.domain.models import Status
from signoff.usecases.embed import EMBED_KEY, handle_embedded, is_embedded
from signoff.usecases.intake import CheckpointService
from signoff.usecases.results import result
from tests.gates import Gates, gates
from tests.helpers import DELETE, api_event, request_body, shipped_policy, stored_checkpoints

pytestmark = pytest.mark.unit

ACCOUNT = "arn:aws:states:us-east-1:123456789012"
EXECUTION = f"{ACCOUNT}:execution:release-pipeline:run-42"
STATE_MACHINE = f"{ACCOUNT}:stateMachine:release-pipeline"
CALLER_TOKEN = "caller-task-token-run-42"


@pytest.fixture
def g() -> Iterator[Gates]:
    """The intake function's service as production wires it."""
    wired = gates()
    wired.service = CheckpointService(
        wired.repo, shipped_policy(), wired.clock, routing=wired.routing, workflow=wired.workflow
    )
    yield wired
    wired.assert_chains()


def _event(body: dict[str, Any], token: str = CALLER_TOKEN, state: str = "Ask Signoff") -> dict[str, Any]:
    return {EMBED_KEY: body, "task_token": token, "execution": EXECUTION, "state": state}


def _embed(g: Gates, event: dict[str, Any]) -> dict[str, Any]:
    return handle_embedded(event, g.service, g.workflow)


def test_an_embedded_auto_request_answers_the_caller_at_once(g: Gates) -> None:
    # Given the auto sample sent from a workflow's Task state
    # When intake handles it
    out = _embed(g, _event(request_body("auto")))
    # Then it is approved and the caller's token is answered with the decision right away
    [cp] = stored_checkpoints(g.repo)
    assert out == {"accepted": True, "checkpoint_id": cp.id, "status": "APPROVED"}
    assert cp.status is Status.APPROVED
    assert g.workflow.answers == {CALLER_TOKEN: result(cp)}
    assert g.workflow.answers[CALLER_TOKEN]["status"] == "APPROVED"
    assert g.workflow.failures == {} and g.workflow.started == {}


def test_an_embedded_hard_request_keeps_the_token_and_opens_the_gate(g: Gates) -> None:
    # Given the hard sample sent from a workflow's Task state
    # When intake handles it
    out = _embed(g, _event(request_body("hard")))
    # Then the gate is open, the caller's token kept for Finalize, and nobody answered yet
    [cp] = stored_checkpoints(g.repo)
    assert out == {"accepted": True, "checkpoint_id": cp.id, "status": "PENDING"}
    assert g.repo.get_caller_token(cp.id) == CALLER_TOKEN
    assert list(g.workflow.started) == [cp.id]
    assert g.types(cp.id) == [EventType.REQUESTED, EventType.GATE_OPENED]
    assert g.workflow.answers == {} and g.workflow.failures == {}
    # and the token is nowhere in what the API or the audit trail show
    assert CALLER_TOKEN not in cp.model_dump_json()
    assert all(CALLER_TOKEN not in e.model_dump_json() for e in g.events(cp.id))


def test_the_embedded_checkpoint_is_decided_for_the_caller_by_finalize(g: Gates) -> None:
    _embed(g, _event(request_body("hard")))
    [cp] = stored_checkpoints(g.repo)
    g.steps.finalize(cp.id, {"notify_failed": True})
    error, cause = g.workflow.failures[CALLER_TOKEN]
    assert error == "Signoff.Expired" and cause.startswith(cp.id)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"signals.model_confidence": 1.7}, "signals.model_confidence"),
        ({"environment": DELETE}, "environment"),
        ({"callback_url": "http://insecure.example.com/hook"}, "callback_url"),
    ],
    ids=["out-of-range", "missing", "plain-http-callback"],
)
def test_an_invalid_embedded_request_fails_the_caller_and_stores_nothing(
    g: Gates, changes: dict[str, Any], field: str
) -> None:
    out = _embed(g, _event(request_body("hard", changes)))
    assert out == {"accepted": False}
    [(token, (error, cause))] = g.workflow.failures.items()
    assert (token, error) == (CALLER_TOKEN, "Signoff.InvalidRequest")
    assert cause.startswith(f"{field}: ")
    assert stored_checkpoints(g.repo) == []
    assert g.workflow.started == {} and g.workflow.answers == {}


def test_an_unknown_environment_fails_the_caller_and_stores_nothing(g: Gates) -> None:
    out = _embed(g, _event(request_body("hard", {"environment": "moon"})))
    assert out == {"accepted": False}
    assert g.workflow.failures == {
        CALLER_TOKEN: (
            "Signoff.InvalidRequest",
            "environment: unknown environment 'moon'; expected one of dev, staging, production",
        )
    }
    assert stored_checkpoints(g.repo) == [] and g.workflow.started == {}


@pytest.mark.parametrize("sample", ["auto", "hard"])
def test_a_retried_task_finds_the_same_checkpoint(g: Gates, sample: str) -> None:
    # Given a checkpoint created from one execution's Task state
    first = _embed(g, _event(request_body(sample)))
    # When Step Functions invokes intake again for the same execution and state
    again = _embed(g, _event(request_body(sample)))
    # Then it is the same checkpoint: nothing new stored or started; a decided one is answered
    # again on the (possibly new) token of the retry, so the caller never waits for nothing
    assert again["checkpoint_id"] == first["checkpoint_id"]
    assert len(stored_checkpoints(g.repo)) == 1
    assert len(g.workflow.started) == (1 if sample == "hard" else 0)
    assert len(g.workflow.answer_calls) == (2 if sample == "auto" else 0)
    assert {call[1]["checkpoint_id"] for call in g.workflow.answer_calls} <= {first["checkpoint_id"]}


def test_the_same_request_from_another_state_is_another_checkpoint(g: Gates) -> None:
    first = _embed(g, _event(request_body("hard"), state="Ask Signoff"))
    second = _embed(g, _event(request_body("hard"), token="other-token", state="Ask Signoff again"))
    assert first["checkpoint_id"] != second["checkpoint_id"]
    assert g.repo.get_caller_token(second["checkpoint_id"]) == "other-token"


def test_an_embedded_event_needs_a_task_token(g: Gates) -> None:
    with pytest.raises(ValueError, match="task_token"):
        _embed(g, _event(request_body("auto"), token=""))
    assert stored_checkpoints(g.repo) == []


def test_only_a_workflow_invocation_is_embedded() -> None:
    assert is_embedded(_event(request_body("auto")))
    assert not is_embedded(api_event("POST", "/checkpoints", body=request_body("auto")))
    assert not is_embedded({**api_event("POST", "/checkpoints"), EMBED_KEY: {}})
    assert not is_embedded({"task_token": "t"})


def test_the_caller_of_an_embedded_checkpoint_is_the_state_machine(g: Gates) -> None:
    out = _embed(g, _event(request_body("hard")))
    assert g.repo.get(out["checkpoint_id"]).caller == STATE_MACHINE


def test_a_task_retried_after_the_workflow_failed_to_start_is_not_left_waiting(g: Gates) -> None:
    # Given an embedded hard request whose approval workflow could not start
    g.workflow.fail_start = True
    with pytest.raises(WorkflowUnavailable):
        _embed(g, _event(request_body("hard")))
    [cp] = stored_checkpoints(g.repo)
    assert cp.status is Status.CANCELLED
    # When the caller's task is retried once the state machine is back
    g.workflow.fail_start = False
    _embed(g, _event(request_body("hard")))
    # Then the caller hears about the checkpoint one way or another
    assert CALLER_TOKEN in g.workflow.failures or CALLER_TOKEN in g.workflow.answers

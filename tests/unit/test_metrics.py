"""Business metrics (Powertools EMF, namespace Signoff, dimension service=signoff): emitted once per
event, under the names the dashboard and alarms use. Read from `metrics.metric_set` (metrics are
disabled in tests, so nothing is flushed) or, with publishing on, from the EMF printed on stdout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from signoff import composition
from signoff.domain.acts import Act, Actor, Refusal
from signoff.observability import metrics
from signoff.usecases.workflow_steps import ESCALATION, INITIAL
from tests.gates import ALICE, BOB, CAROL, MALLORY, SECRET_TOKEN, Gates, actor, gates, one_of_one, stranger
from tests.helpers import MemoryWiring, api_event, invoke, load_handler, memory_service, request_body, shipped_policy

pytestmark = pytest.mark.unit

UNAUTHORIZED = "UnauthorizedAttempt"


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    # Metrics is process-wide and, while disabled, never flushes: start and end each test empty.
    metrics.clear_metrics()
    yield
    metrics.clear_metrics()


def emitted(name: str) -> list[float]:
    return list(metrics.metric_set.get(name, {}).get("Value", []))


def counts() -> dict[str, float]:
    return {name: sum(m["Value"]) for name, m in metrics.metric_set.items()}


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


# -- intake ------------------------------------------------------------------------------------


@pytest.fixture
def api() -> Iterator[MemoryWiring]:
    wired = memory_service()
    composition.override(api=wired.service, policy=shipped_policy())
    yield wired
    composition.reset()


def _post(gate: str) -> dict[str, Any]:
    return invoke("intake", api_event("POST", "/v1/checkpoints", body=request_body(gate)))


def test_an_auto_request_counts_as_requested_and_auto_approved(api: MemoryWiring) -> None:
    # When the auto sample is posted through the intake function
    response = _post("auto")
    # Then one request and one auto-approval are counted, and nothing else
    assert response["statusCode"] == 200
    assert counts() == {"CheckpointRequested": 1.0, "AutoApproved": 1.0}
    assert metrics.metric_set["AutoApproved"]["Unit"] == "Count"


@pytest.mark.parametrize("gate", ["soft", "hard"])
def test_a_gated_request_counts_as_requested_only(api: MemoryWiring, gate: str) -> None:
    response = _post(gate)
    assert response["statusCode"] == 202
    assert counts() == {"CheckpointRequested": 1.0}


def test_an_invalid_request_counts_nothing(api: MemoryWiring) -> None:
    response = invoke("intake", api_event("POST", "/v1/checkpoints", body={"title": "no"}))
    assert response["statusCode"] == 422
    assert counts() == {}


def test_the_intake_function_publishes_the_intake_metrics_as_emf(
    api: MemoryWiring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given metrics published as on Lambda
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When the auto sample is posted
    _post("auto")
    # Then one EMF document carries both, in the Signoff namespace, with the service dimension only
    (doc,) = _emf(capsys.readouterr().out)
    directive = doc["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "Signoff" and directive["Dimensions"] == [["service"]]
    assert doc["service"] == "signoff"
    assert {m["Name"] for m in directive["Metrics"]} == {"CheckpointRequested", "AutoApproved"}
    assert (doc["CheckpointRequested"], doc["AutoApproved"]) == ([1.0], [1.0])


# -- refusals ----------------------------------------------------------------------------------


@pytest.fixture
def g() -> Gates:
    return gates(one_of_one())


@pytest.mark.parametrize(
    ("who", "act", "refusal"),
    [
        (actor(ALICE), Act.APPROVE, Refusal.REQUESTER),  # separation of duties
        (actor(MALLORY), Act.APPROVE, Refusal.UNAUTHORIZED),  # in the directory, approves nothing
        (actor(MALLORY), Act.DENY, Refusal.UNAUTHORIZED),
        (actor(MALLORY), Act.ESCALATE, Refusal.UNAUTHORIZED),
        (stranger(), Act.APPROVE, Refusal.UNAUTHORIZED),  # not in the directory at all
    ],
    ids=["requester", "outsider-approve", "outsider-deny", "outsider-escalate", "unknown-person"],
)
def test_an_unauthorized_attempt_is_counted_once(g: Gates, who: Actor, act: Act, refusal: Refusal) -> None:
    cp = g.create("hard")
    result = g.decisions.act(cp.id, who, act, comment="a reason")
    assert result.refusal is refusal
    assert emitted(UNAUTHORIZED) == [1.0]
    assert metrics.metric_set[UNAUTHORIZED]["Unit"] == "Count"


def test_a_duplicate_vote_is_refused_but_not_counted_as_unauthorized() -> None:
    g = gates()  # two approvals needed, so bob's first approval leaves it pending
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    result = g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="again")
    assert result.refusal is Refusal.DUPLICATE
    assert UNAUTHORIZED not in metrics.metric_set


def test_a_late_click_is_refused_but_not_counted_as_unauthorized(g: Gates) -> None:
    cp = g.create("hard")
    assert cp.deadline is not None
    g.clock.at = cp.deadline
    result = g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    assert result.refusal is Refusal.LATE
    assert UNAUTHORIZED not in metrics.metric_set


def test_a_click_after_the_decision_is_refused_but_not_counted_as_unauthorized(g: Gates) -> None:
    cp = g.create("hard")
    assert g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok").decided
    result = g.decisions.act(cp.id, actor(CAROL), Act.APPROVE, comment="me too")
    assert result.refusal is Refusal.ALREADY_DECIDED
    assert UNAUTHORIZED not in metrics.metric_set


def test_a_refused_peek_at_the_details_is_audited_but_pages_nobody(g: Gates) -> None:
    # Cards sit in shared channels: a non-approver there may click "View details".
    cp = g.create("hard")
    result = g.decisions.act(cp.id, actor(MALLORY), Act.VIEW_DETAILS)
    assert result.refusal is Refusal.UNAUTHORIZED
    assert g.events(cp.id)[-1].data["unauthorized"] is True
    assert UNAUTHORIZED not in metrics.metric_set


# -- the Slack function flushes what its decisions emit ----------------------------------------


@pytest.mark.parametrize("fails", [False, True], ids=["answered", "failed"])
def test_the_slack_function_publishes_metrics_emitted_while_handling_a_click(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fails: bool, request: pytest.FixtureRequest
) -> None:
    # Given the Slack function, whose bolt app records a refused click (stood in for here)
    module = load_handler("slack")

    def handle(event: dict[str, Any], context: Any, handler: Any) -> dict[str, Any]:
        metrics.add_metric(name=UNAUTHORIZED, unit="Count", value=1)
        if fails:
            raise RuntimeError("the click's handling failed after the refusal was counted")
        return {"statusCode": 200, "body": ""}

    monkeypatch.setattr(module, "handle", handle)
    composition.override(slack_handler=object())
    request.addfinalizer(composition.reset)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # When it is invoked
    if fails:
        with pytest.raises(RuntimeError):
            invoke("slack", api_event("POST", "/v1/slack/events", body="payload=x"))
    else:
        invoke("slack", api_event("POST", "/v1/slack/events", body="payload=x"))
    # Then the metric is published either way: the alarm must not miss an attempt
    (doc,) = _emf(capsys.readouterr().out)
    assert doc[UNAUTHORIZED] == [1.0]
    assert doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Signoff"


# -- the approval workflow's steps (emitted by Notify and Finalize) ----------------------------


def test_a_gated_checkpoint_approved_in_chat_emits_gate_opened_approved_and_latency(g: Gates) -> None:
    cp = g.create("hard")
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.clock.advance(120)
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    g.steps.finalize(cp.id, {"status": "APPROVED"})
    assert counts() == {"GateOpened": 1.0, "Approved": 1.0, "ApprovalLatency": 120.0}
    assert metrics.metric_set["ApprovalLatency"]["Unit"] == "Seconds"


def test_a_denied_checkpoint_emits_denied(g: Gates) -> None:
    cp = g.create("hard")
    g.decisions.act(cp.id, actor(BOB), Act.DENY, comment="not now")
    g.steps.finalize(cp.id, {"status": "DENIED"})
    assert emitted("Denied") == [1.0] and "Approved" not in metrics.metric_set


def test_nobody_answering_emits_escalated_then_expired(g: Gates) -> None:
    cp = g.create("hard")  # fail-closed
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.steps.notify(cp.id, ESCALATION, SECRET_TOKEN)
    assert cp.deadline is not None
    g.clock.at = cp.deadline
    g.steps.finalize(cp.id, None)
    assert (emitted("Escalated"), emitted("Expired")) == ([1.0], [1.0])


def test_a_card_that_cannot_be_updated_is_counted_and_the_decision_still_is(g: Gates) -> None:
    # Given a card posted, then chat.update failing for good
    cp = g.create("hard", {"risk.data_sensitivity": "internal"})
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.chat.fail("update", "service_unavailable", times=None)
    g.decisions.act(cp.id, actor(BOB), Act.APPROVE, comment="ok")
    # When Finalize runs
    g.steps.finalize(cp.id, {"status": "APPROVED"})
    # Then the stale card is counted, and the approval too
    assert emitted("CardUpdateFailed") == [1.0]
    assert metrics.metric_set["CardUpdateFailed"]["Unit"] == "Count"
    assert emitted("Approved") == [1.0]


def test_cards_updated_in_place_count_no_failure(g: Gates) -> None:
    cp = g.create("hard", {"risk.data_sensitivity": "internal"})
    g.steps.notify(cp.id, INITIAL, SECRET_TOKEN)
    g.decisions.act(cp.id, actor(BOB), Act.DENY, comment="no")
    g.steps.finalize(cp.id, None)
    assert len(g.chat.updates) == 1 and "CardUpdateFailed" not in metrics.metric_set

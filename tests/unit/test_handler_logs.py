"""What every handler logs: never the event (task tokens, chat payloads, JWTs), even with
POWERTOOLS_LOGGER_LOG_EVENT=true and DEBUG logging, and never a key left by an earlier invocation."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from signoff import composition
from signoff.observability import logger
from tests.helpers import (
    FakeLambdaContext,
    api_event,
    load_handler,
    memory_service,
    request_body,
    shipped_policy,
)

pytestmark = pytest.mark.unit

TOKEN = "AAAAKSECRET-task-token-never-logged"
BOT_TOKEN = "xoxb-never-logged-0000"
JWT = "eyJhbGciOiJSUzI1NiJ9.never-logged.signature"
CHECKPOINT = "cp_06dqjvep00wybebthsjj0r7kzg"

EVENTS: dict[str, dict[str, Any]] = {
    "intake": {"signoff_checkpoint": request_body("soft"), "task_token": TOKEN, "execution": "arn:x", "state": "Ask"},
    "scoring": api_event("POST", "/v1/score", body=request_body("auto", {"summary": f"ship {BOT_TOKEN}"})),
    "notify": {"checkpoint_id": CHECKPOINT, "phase": "initial", "task_token": TOKEN},
    "finalize": {"checkpoint_id": CHECKPOINT, "decision": {"status": "APPROVED", "task_token": TOKEN}},
    "slack": api_event("POST", "/v1/slack/events", body=f"token={BOT_TOKEN}&payload=%7B%7D"),
    "teams": api_event("POST", "/v1/teams/messages", body="{}", headers={"Authorization": f"Bearer {JWT}"}),
    "archiver": {"Records": [{"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": {"t": {"S": TOKEN}}}}]},
    "sweeper": {"detail-type": "Scheduled Event", "detail": {"note": TOKEN}},
}


class Loud:
    """Everything the shared logger writes, with the environment that would log every event."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def read(self) -> str:
        out = self.stream.getvalue()
        self.stream.seek(0)
        self.stream.truncate()
        return out


@pytest.fixture
def loud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Loud]:
    """The flag on, the logger at DEBUG, and its handler writing where the test reads (the handler
    keeps the stream it was created with, which no capture fixture sees)."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    level = logger.log_level
    logger.setLevel("DEBUG")
    captured = Loud()
    previous = logger.registered_handler.setStream(captured.stream)  # type: ignore[attr-defined]
    wired = memory_service()
    composition.override(api=wired.service, policy=shipped_policy())
    yield captured
    composition.reset()
    logger.registered_handler.setStream(previous)  # type: ignore[attr-defined]
    logger.setLevel(level)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("function", sorted(EVENTS))
def test_no_handler_logs_its_event_even_when_told_to(loud: Loud, function: str) -> None:
    # Given a handler loaded while POWERTOOLS_LOGGER_LOG_EVENT=true
    handler = load_handler(function).handler
    # When it handles an event carrying a task token, a bot token or a JWT (failing or not)
    try:
        handler(EVENTS[function], FakeLambdaContext(function_name=f"signoff-{function}"))
    except Exception:  # noqa: BLE001, S110 - what it logged is the point, not whether it succeeded
        pass
    out = loud.read()
    # Then nothing it wrote holds them
    assert _lines(out) or out == ""  # whatever it logged is structured
    for secret in (TOKEN, BOT_TOKEN, JWT, "never-logged"):
        assert secret not in out


def test_a_logging_check_that_logs_the_event_is_caught(loud: Loud) -> None:
    # The check above is only worth something if an event that is logged shows up in what it reads.
    @logger.inject_lambda_context(log_event=True)
    def leaky(event: dict[str, Any], context: Any) -> None:
        return None

    leaky(EVENTS["notify"], FakeLambdaContext())
    assert TOKEN in loud.read()


def test_no_log_line_carries_an_earlier_invocations_keys(loud: Loud, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an intake invocation that appended its checkpoint's id to the shared logger
    intake = load_handler("intake")
    response = intake.handler(api_event("POST", "/v1/checkpoints", body=request_body("auto")), FakeLambdaContext())
    created = json.loads(response["body"])["id"]
    # When a scoring invocation logs next (in one process, as on the local stack or a warm container)
    scoring = load_handler("scoring")

    def handle(event: dict[str, Any], context: Any, app: Any = None) -> dict[str, Any]:
        logger.warning("scoring probe")
        return {"statusCode": 200, "body": "{}"}

    monkeypatch.setattr(scoring, "handle", lambda app, event, context: handle(event, context))
    loud.read()
    scoring.handler(api_event("POST", "/v1/score", body=request_body("auto")), FakeLambdaContext())
    # Then its line carries its own context and none of intake's keys
    (probe,) = [line for line in _lines(loud.read()) if line.get("message") == "scoring probe"]
    assert "checkpoint_id" not in probe and created not in json.dumps(probe)

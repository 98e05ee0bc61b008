"""The local stack's in-process functions: each execution environment serves one invocation at a
time; a function with N environments runs N invocations at once; a nested invocation of the same
function goes on in the caller's environment instead of waiting for itself."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from local.lambdas import LocalFunction

# A handler that reports which loaded copy (environment) ran it and can wait on a gate the test
# holds, so overlap is decided by the test, not by timing.
HANDLER = """
COPY = object()

def handler(event, context):
    if event.get("nested"):
        return {"outer": id(COPY), "inner": event["fn"].invoke({})["copy"]}
    gate = event.get("gate")
    if gate is not None:
        gate["entered"].release()
        gate["go"].wait()
    return {"copy": id(COPY)}
"""


def _function(tmp_path: Path, environments: int) -> LocalFunction:
    (tmp_path / "handler.py").write_text(HANDLER)
    return LocalFunction(
        name="Probe", code_dir=tmp_path, handler="handler.handler", environment={}, environments=environments
    )


def _gate() -> dict[str, Any]:
    return {"entered": threading.Semaphore(0), "go": threading.Event()}


def _start(fn: LocalFunction, event: dict[str, Any], results: list[Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: results.append(fn.invoke(event)), daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("environments", [2, 4])
def test_n_environments_run_n_invocations_at_once_each_in_its_own_copy(tmp_path: Path, environments: int) -> None:
    fn = _function(tmp_path, environments)
    gates = [_gate() for _ in range(environments)]
    results: list[Any] = []
    threads = [_start(fn, {"gate": gate}, results) for gate in gates]
    for gate in gates:  # every invocation is inside its handler at the same time
        assert gate["entered"].acquire(timeout=60)
    for gate in gates:
        gate["go"].set()
    for thread in threads:
        thread.join(timeout=60)
    assert len({r["copy"] for r in results}) == environments


def test_one_environment_keeps_invocations_in_line_and_reuses_its_copy(tmp_path: Path) -> None:
    fn = _function(tmp_path, 1)
    first, second = _gate(), _gate()
    results: list[Any] = []
    threads = [_start(fn, {"gate": first}, results)]
    assert first["entered"].acquire(timeout=60)
    threads.append(_start(fn, {"gate": second}, results))
    # The second waits for the only environment: it cannot enter while the first is inside.
    assert not second["entered"].acquire(timeout=0.2)
    first["go"].set()
    assert second["entered"].acquire(timeout=60)
    second["go"].set()
    for thread in threads:
        thread.join(timeout=60)
    assert len({r["copy"] for r in results}) == 1


def test_a_nested_invocation_of_the_same_function_runs_in_the_callers_environment(tmp_path: Path) -> None:
    fn = _function(tmp_path, 1)
    answer = fn.invoke({"nested": True, "fn": fn})
    assert answer["outer"] == answer["inner"]


def test_a_handler_that_fails_to_load_gives_its_environment_back(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("raise RuntimeError('broken at import')\n")
    fn = LocalFunction(name="Broken", code_dir=tmp_path, handler="handler.handler", environment={}, environments=1)
    for _ in range(2):  # the second attempt loads again instead of waiting for a lost environment
        with pytest.raises(RuntimeError, match="broken at import"):
            fn.invoke({})


def test_two_requests_resolved_at_once_each_see_their_own_event() -> None:
    # Given two Powertools apps (two functions' environments in one process), whose route yields
    # to the other thread between reading the path and reading it again
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

    from local.lambdas import one_resolver_at_a_time

    one_resolver_at_a_time()
    other_inside = threading.Event()
    seen: dict[str, tuple[str, str]] = {}

    def app_for(name: str) -> APIGatewayRestResolver:
        app = APIGatewayRestResolver()

        @app.get("/<who>")
        def who(who: str) -> dict[str, str]:
            before = app.current_event.path
            if name == "first":
                other_inside.wait(timeout=0.5)  # the second request, if it were resolving, is now
            else:
                other_inside.set()
            seen[name] = (before, app.current_event.path)
            return {}

        return app

    def event(path: str) -> dict[str, Any]:
        return {"httpMethod": "GET", "path": path, "resource": "/{who}", "headers": {}, "requestContext": {}}

    first, second = app_for("first"), app_for("second")
    # When both resolve at the same time
    threads = [
        threading.Thread(target=first.resolve, args=(event("/first"), None)),
        threading.Thread(target=second.resolve, args=(event("/second"), None)),
    ]
    threads[0].start()
    threads[1].start()
    for thread in threads:
        thread.join(timeout=60)
    # Then each read its own request throughout
    assert seen == {"first": ("/first", "/first"), "second": ("/second", "/second")}

"""One narrow patch of moto's Step Functions interpreter: each state machine definition is parsed
once, and every execution evaluates its own deep copy of the parsed program.

moto parses the definition's text again for every execution (`ExecutionWorker.
_get_evaluation_entrypoint`: an ANTLR lexer and parser in pure Python, then a preprocessor) — about
a quarter of the CPU of a gated checkpoint on the local stack. The parsed program cannot simply be
shared: some of its components keep per-run state while they evaluate (a Choice state, a Map's
iteration), and executions run concurrently on their own threads. A deep copy of the program is a
fresh, unshared tree, exactly what a new parse would build, at a few percent of the cost.

The definition is the very text given to `create_state_machine` (the synthesized template's ASL):
nothing about what runs changes, only how often it is parsed."""

from __future__ import annotations

import copy
import threading
from typing import Any

from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

_INSTALLED = "_signoff_parse_once"
_lock = threading.Lock()
_parsed: dict[str, Any] = {}  # definition text -> the program parsed from it (never evaluated)


def program_for(definition: str) -> Any:
    """A program for one execution: a deep copy of the definition's once-parsed program."""
    with _lock:  # held while parsing: executions starting together parse a definition once, not each
        template = _parsed.get(definition)
        if template is None:
            from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

            template = _parsed[definition] = AmazonStateLanguageParser.parse(definition)[0]
    return copy.deepcopy(template)


def install() -> None:
    if getattr(ExecutionWorker._get_evaluation_entrypoint, _INSTALLED, False):
        return

    def _get_evaluation_entrypoint(self: ExecutionWorker) -> Any:
        return program_for(self._evaluation_details.state_machine_details.definition)

    setattr(_get_evaluation_entrypoint, _INSTALLED, True)
    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint  # type: ignore[method-assign]

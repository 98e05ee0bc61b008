"""`require_signoff`: a tool runs only once Signoff approved that very call.

As a decorator (sync or async functions), the call's arguments are bound by name and become the
checkpoint's arguments; the tool's name is the function's unless given:

    @require_signoff(gate, risk={"production_data": True})
    def refund(order_id: str, amount_eur: float) -> str: ...

As a context manager, for code that is not one function call, the arguments are given and the
body runs only when approved (the `Approval` checks arguments again with `approval.check(...)`):

    with require_signoff(gate, "drop_table", arguments={"table": name}) as approval:
        drop(name)

Refusals raise `Denied`, `Expired`, `Cancelled` or `NotDecided` (all `NotApproved`), which carry the
reason and conditions; the approved call's outcome (success, or failure with the error's type) is
reported back to Signoff."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, cast

from signoff.agents.gate import AgentGate, Approval, ToolCall

P = ParamSpec("P")
R = TypeVar("R")
_NOT_ARGUMENTS = ("self", "cls")


class require_signoff:  # noqa: N801 - used like a function, as decorators and context managers are
    def __init__(
        self,
        gate: AgentGate,
        tool: str | None = None,
        *,
        arguments: Mapping[str, Any] | None = None,
        confidence: float | None = None,
        validations: Sequence[tuple[str, bool]] | Mapping[str, bool] = (),
        risk: Mapping[str, Any] | None = None,
        rationale: str | None = None,
        call_id: str | None = None,
        conversation_url: str | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.gate = gate
        self.tool = tool
        self.arguments = arguments
        self.exclude = (*_NOT_ARGUMENTS, *exclude)
        self._evidence: dict[str, Any] = {
            "confidence": confidence,
            "validations": validations,
            "risk": dict(risk or {}),
            "rationale": rationale,
            "call_id": call_id,
            "conversation_url": conversation_url,
        }
        self._approval: Approval | None = None

    def call(self, tool: str, arguments: Mapping[str, Any]) -> ToolCall:
        return ToolCall(tool=tool, arguments=arguments, **self._evidence)

    # -- decorator ---------------------------------------------------------------------------------

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        tool = self.tool or fn.__name__
        signature = inspect.signature(fn)

        def bound(*args: Any, **kwargs: Any) -> dict[str, Any]:
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            return {k: v for k, v in call.arguments.items() if k not in self.exclude}

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                arguments = bound(*args, **kwargs)
                approval = await self.gate.ask_async(self.call(tool, arguments))
                approval.check(bound(*args, **kwargs))  # not mutated while waiting
                try:
                    result = await fn(*args, **kwargs)
                except Exception as exc:
                    await self.gate.report_async(approval, exc)
                    raise
                await self.gate.report_async(approval, None)
                return result

            return cast(Callable[P, R], guarded_async)

        @functools.wraps(fn)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            arguments = bound(*args, **kwargs)
            approval = self.gate.ask(self.call(tool, arguments))
            approval.check(bound(*args, **kwargs))
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                self.gate.report(approval, exc)
                raise
            self.gate.report(approval, None)
            return result

        return guarded

    # -- context manager ---------------------------------------------------------------------------

    def _context_call(self) -> ToolCall:
        if self.tool is None or self.arguments is None:
            raise TypeError("require_signoff as a context manager needs the tool's name and its arguments")
        return self.call(self.tool, self.arguments)

    def __enter__(self) -> Approval:
        self._approval = self.gate.ask(self._context_call())
        return self._approval

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._approval is not None:
            self.gate.report(self._approval, error)

    async def __aenter__(self) -> Approval:
        self._approval = await self.gate.ask_async(self._context_call())
        return self._approval

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._approval is not None:
            await self.gate.report_async(self._approval, error)

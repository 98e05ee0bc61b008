"""The work a click leaves for after its answer: Teams waits at most ~5 s for an invoke's
answer, so the invoke path only records the act and renders the clicker's card. Re-rendering every
other card of the checkpoint (Slack's and Teams'), asking the requester in the thread, and telling
the escalation route run afterwards: on Lambda as an asynchronous invocation of the same function
with a `Followup` (built by the function itself, never from a request), in tests and the local
stack right away. Each part works from the stored checkpoint and its audit trail alone, so running
it twice only re-renders cards twice (the escalation notice is posted once)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cached_property
from typing import Any

from signoff.followups import Followup

Defer = Callable[[Followup], None]


class SelfInvoke:
    """Runs a follow-up as an asynchronous invocation of this very function."""

    def __init__(self, function_arn: str, client: Any = None) -> None:
        self.function_arn = function_arn
        self._client = client

    @cached_property
    def client(self) -> Any:
        import boto3

        return self._client or boto3.client("lambda")

    def __call__(self, followup: Followup) -> None:
        self.client.invoke(
            FunctionName=self.function_arn, InvocationType="Event", Payload=json.dumps(followup.to_event())
        )

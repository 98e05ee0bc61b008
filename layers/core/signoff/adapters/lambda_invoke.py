"""Follow-up work as an asynchronous invocation of the very function that asked for it (Teams waits
at most ~5 s for an invoke's answer; what a click leaves for later runs in a second invocation)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from signoff.usecases.followups import Followup


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

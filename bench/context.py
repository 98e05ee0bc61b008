"""The parts of a Lambda context Powertools and bolt's Lambda adapter read, for in-process runs."""

from __future__ import annotations

import uuid


class FakeLambdaContext:
    memory_limit_in_mb = 1024

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000

"""Step Functions adapter of the Workflow port (the approval state machine)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import boto3
from botocore.exceptions import ClientError

from signoff.observability import logger

# The task is no longer waiting: it timed out, was answered, or its execution ended.
_GONE = {"TaskTimedOut", "TaskDoesNotExist", "InvalidToken"}


class StepFunctionsWorkflow:
    def __init__(self, state_machine_arn: str, client: Any = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client

    @cached_property
    def client(self) -> Any:
        return self._client or boto3.client("stepfunctions")

    def start(self, checkpoint_id: str, workflow_input: dict[str, Any]) -> None:
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn, name=checkpoint_id, input=json.dumps(workflow_input)
            )
        except ClientError as exc:
            # Same name and input within 90 days: Step Functions treats it as the same execution.
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise

    def answer(self, token: str, output: dict[str, Any]) -> bool:
        return self._send(lambda: self.client.send_task_success(taskToken=token, output=json.dumps(output)))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send(lambda: self.client.send_task_failure(taskToken=token, error=error, cause=cause[:32768]))

    def stop(self, checkpoint_id: str, cause: str) -> None:
        arn = self.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{checkpoint_id}"
        try:
            self.client.stop_execution(executionArn=arn, cause=cause)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("ExecutionDoesNotExist",):
                raise

    @staticmethod
    def _send(call: Any) -> bool:
        try:
            call()
        except ClientError as exc:
            code = exc.response["Error"]["Code"]
            if code in _GONE:
                # Never log the token itself.
                logger.info("task no longer waiting", extra={"error_code": code})
                return False
            raise
        return True

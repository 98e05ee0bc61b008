"""Typed domain errors. The API maps each to one HTTP status; nothing else is caught broadly."""

from __future__ import annotations


class SignoffError(Exception):
    """Base of every domain error."""


class PolicyError(SignoffError):
    """The policy file is invalid; `problems` lists `path: reason` entries."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid policy:\n  " + "\n  ".join(problems))


class InvalidRequest(SignoffError):
    """A request that is well-formed JSON but breaks a rule only the domain knows (422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class NotFound(SignoffError):
    """No checkpoint with this id (404)."""

    def __init__(self, checkpoint_id: str) -> None:
        self.checkpoint_id = checkpoint_id
        super().__init__(f"checkpoint {checkpoint_id} not found")


class Conflict(SignoffError):
    """The request contradicts the checkpoint's current state (409)."""


class AlreadyExists(Conflict):
    """A write that must create an item found it already there."""


class StaleCheckpoint(Conflict):
    """The checkpoint changed between read and write (another vote, decision or event)."""


class DuplicateVote(Conflict):
    """This person already voted on this checkpoint."""


class InvalidPageToken(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("next_token", "is not a token this API issued")


class Forbidden(SignoffError):
    """Authenticated but not allowed (403)."""


class WorkflowUnavailable(SignoffError):
    """The approval workflow could not be started (503); the checkpoint was cancelled."""

    def __init__(self) -> None:
        super().__init__(
            "the approval workflow could not be started, so the checkpoint was cancelled; "
            "submit the request again later with a new Idempotency-Key"
        )

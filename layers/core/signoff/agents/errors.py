"""What an agent's tool call gets instead of running: typed, carrying the decision's reason and
conditions, with a message meant for the agent (a model reads it as the tool's result)."""

from __future__ import annotations

from typing import Any

from signoff.domain.errors import SignoffError


class NotApproved(SignoffError):
    """The tool call was not approved and must not run. Base of every refusal."""

    status = "NOT_APPROVED"
    verb = "did not approve"

    def __init__(
        self,
        tool: str,
        checkpoint_id: str | None,
        reason: str | None = None,
        decided_by: str | None = None,
        conditions: dict[str, Any] | None = None,
        digest: str | None = None,
    ) -> None:
        self.tool = tool
        self.checkpoint_id = checkpoint_id
        self.reason = reason
        self.decided_by = decided_by
        self.conditions = conditions or {}
        self.digest = digest
        super().__init__(self.for_agent())

    def for_agent(self) -> str:
        """One line a model can act on: what happened, who decided and why."""
        by = f" by {self.decided_by}" if self.decided_by else ""
        why = f": {self.reason}" if self.reason else ""
        return f"Signoff {self.verb} the call to {self.tool}{by}{why} (checkpoint {self.checkpoint_id}): it was not run"


class Denied(NotApproved):
    """An approver denied (or vetoed) the call, or the gate's fail-closed timeout did."""

    status = "DENIED"
    verb = "denied"


class Expired(NotApproved):
    """Nobody decided before the deadline and the gate's timeout rule did not approve."""

    status = "EXPIRED"
    verb = "let expire"


class Cancelled(NotApproved):
    """The checkpoint was withdrawn (by the requester or the gate's cancel timeout rule)."""

    status = "CANCELLED"
    verb = "cancelled"


class NotDecided(NotApproved):
    """The agent stopped waiting before Signoff decided; the checkpoint was withdrawn."""

    status = "NOT_DECIDED"

    def for_agent(self) -> str:
        return f"Signoff did not decide on the call to {self.tool} in time (checkpoint {self.checkpoint_id}): not run"


class ArgumentsChanged(NotApproved):
    """The arguments about to be used are not the ones approved (they changed, or were mutated while
    waiting): the approval does not cover them, a new one is needed."""

    status = "ARGUMENTS_CHANGED"

    def for_agent(self) -> str:
        return (
            f"the arguments of {self.tool} differ from the approved ones (checkpoint {self.checkpoint_id}, "
            f"approved {self.digest}): ask again with the new arguments"
        )

"""Builds the services a function needs from its settings, once per container. Tests and the
local stack install their own with `override`."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any, cast

from signoff.policy import LoadedPolicy, load_policy
from signoff.settings import ApiSettings, PolicySettings

if TYPE_CHECKING:
    from signoff.service import CheckpointService

_overrides: dict[str, Any] = {}


@cache
def _policy(path: str) -> LoadedPolicy:
    return load_policy(path)


def api_service() -> CheckpointService:
    """The intake function's service: DynamoDB repository, Powertools idempotency, the policy."""
    if "api" in _overrides:
        return cast("CheckpointService", _overrides["api"])
    return _api_service()


@cache
def _api_service() -> CheckpointService:
    # AWS clients and Powertools idempotency load only where they are used: the scoring function
    # imports this module too and should not pay for boto3.
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from signoff.adapters.dynamodb import DynamoCheckpointRepository
    from signoff.clock import SystemClock
    from signoff.service import CheckpointService

    settings = ApiSettings.from_env()
    return CheckpointService(
        repo=DynamoCheckpointRepository(settings.table_name),
        policy=_policy(str(settings.signoff_policy_path)),
        clock=SystemClock(),
        idempotency_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name),
    )


def policy() -> LoadedPolicy:
    """The policy alone (the scoring function stores nothing)."""
    if "policy" in _overrides:
        return cast(LoadedPolicy, _overrides["policy"])
    return _policy(str(PolicySettings.from_env().signoff_policy_path))


def override(*, api: CheckpointService | None = None, policy: LoadedPolicy | None = None) -> None:
    """Install a service or a policy (tests, benchmarks); `reset()` undoes it."""
    if api is not None:
        _overrides["api"] = api
    if policy is not None:
        _overrides["policy"] = policy


def reset() -> None:
    _overrides.clear()
    _api_service.cache_clear()
    _policy.cache_clear()

"""Builds what a function needs from its settings, once per container, lazily: no AWS client or
heavy import before first use (the scoring function never pays for boto3). Tests and the local
stack install their own pieces with `override`."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar, cast

from signoff.policy import LoadedPolicy, load_policy
from signoff.settings import ApiSettings, PolicySettings, RoutingSettings, TableSettings, WorkflowSettings

if TYPE_CHECKING:
    from signoff.decisions import DecisionService
    from signoff.ports import Callbacks, Chat, CheckpointRepository, Clock, Workflow
    from signoff.routing import LoadedRouting
    from signoff.service import CheckpointService
    from signoff.steps import Steps

T = TypeVar("T")
_overrides: dict[str, Any] = {}


def _overridable(name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
    def wrap(build: Callable[[], T]) -> Callable[[], T]:
        cached = cache(build)

        def get() -> T:
            return cast(T, _overrides[name]) if name in _overrides else cached()

        get.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        _builders.append(cached)
        return get

    return wrap


_builders: list[Any] = []


@cache
def _load_policy(path: str) -> LoadedPolicy:
    return load_policy(path)


@_overridable("policy")
def policy() -> LoadedPolicy:
    return _load_policy(str(PolicySettings.from_env().signoff_policy_path))


@_overridable("routing")
def routing() -> LoadedRouting:
    from signoff.routing import load_routing

    return load_routing(RoutingSettings.from_env().signoff_routing_path)


@_overridable("clock")
def clock() -> Clock:
    from signoff.clock import SystemClock

    return SystemClock()


@_overridable("repository")
def repository() -> CheckpointRepository:
    from signoff.adapters.dynamodb import DynamoCheckpointRepository

    return DynamoCheckpointRepository(TableSettings.from_env().table_name)


@_overridable("workflow")
def workflow() -> Workflow:
    from signoff.adapters.stepfunctions import StepFunctionsWorkflow

    return StepFunctionsWorkflow(WorkflowSettings.from_env().approval_state_machine_arn)


@_overridable("api")
def api_service() -> CheckpointService:
    """The intake function's service: repository, Powertools idempotency, policy, routing, workflow."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from signoff.service import CheckpointService

    settings = ApiSettings.from_env()
    return CheckpointService(
        repo=repository(),
        policy=policy(),
        clock=clock(),
        idempotency_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name),
        routing=routing(),
        workflow=workflow(),
    )


@_overridable("decisions")
def decisions() -> DecisionService:
    from signoff.decisions import DecisionService

    return DecisionService(repository(), clock(), workflow())


@_overridable("chats")
def chats() -> list[Chat]:
    """The chat surfaces of this deployment: Slack, and Teams when its bot is configured. A
    route naming both a Slack and a Teams channel gets a card on each."""
    from signoff.slack.notifier import slack_chat

    found: list[Chat] = [slack_chat()]
    if teams_configured():
        found.append(teams_chat())
    return found


@_overridable("callbacks")
def callbacks() -> Callbacks:
    from signoff.callbacks import webhook_sender

    return webhook_sender()


@_overridable("steps")
def steps() -> Steps:
    from signoff.steps import Steps

    return Steps(
        repo=repository(),
        clock=clock(),
        workflow=workflow(),
        routing=routing(),
        chats=chats(),
        callbacks=callbacks(),
        decisions=decisions(),
    )


def override(**pieces: Any) -> None:
    """Install pieces by name (api, policy, routing, clock, repository, workflow, decisions, chats,
    callbacks); `reset()` undoes it."""
    _overrides.update({k: v for k, v in pieces.items() if v is not None})


def reset() -> None:
    _overrides.clear()
    _load_policy.cache_clear()
    for cached in _builders:
        cached.cache_clear()


if TYPE_CHECKING:
    from signoff.archiver import Archive


@_overridable("archive")
def archive() -> Archive:
    """The archiver's S3 audit archive (ARCHIVE_BUCKET)."""
    from signoff.archiver import S3Archive
    from signoff.settings import ArchiveSettings

    return S3Archive(ArchiveSettings.from_env().archive_bucket)


TEAMS_SECRET_VAR = "TEAMS_SECRET_ARN"


def teams_configured(environ: dict[str, str] | None = None) -> bool:
    """Teams is a surface of this deployment when its bot secret is configured."""
    import os

    return bool((os.environ if environ is None else environ).get(TEAMS_SECRET_VAR))


@_overridable("teams_chat")
def teams_chat() -> Chat:
    """The Teams chat surface (TEAMS_SECRET_ARN, TABLE_NAME): cards through the Bot Connector,
    conversation references from the single table."""
    from signoff.teams.chat import build_teams_chat

    return build_teams_chat()

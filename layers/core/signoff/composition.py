"""The composition root: every dependency a function needs, built from its settings once per container,
lazily (no AWS client or heavy import before first use: the scoring function never pays for boto3),
and declared here alone. Nothing else in `signoff` caches a built dependency or reads settings to
build one; the use cases, surfaces and routes receive what they need as arguments.

Tests and the local stack install their own pieces by name with `override`; `reset` undoes every
override and forgets everything built, so the next call builds afresh."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from signoff.settings import (
    ApiSettings,
    ArchiveSettings,
    CallbackSettings,
    HelpdeskConfigSettings,
    HelpdeskSettings,
    PolicySettings,
    RoutingSettings,
    ShadowPolicySettings,
    SlackSettings,
    TableSettings,
    TeamsAppSettings,
    TeamsSettings,
    WorkflowSettings,
    helpdesk_configured,
)

if TYPE_CHECKING:
    from slack_bolt.adapter.aws_lambda import SlackRequestHandler

    from signoff.adapters.lambda_invoke import SelfInvoke
    from signoff.domain.helpdesk.router import Helpdesk
    from signoff.domain.models import Checkpoint
    from signoff.domain.policy import LoadedPolicy
    from signoff.domain.routing import LoadedRouting
    from signoff.ports import (
        Archive,
        Callbacks,
        Chat,
        CheckpointRepository,
        Clock,
        ConversationRepository,
        DecisionListener,
        Ticketing,
        Workflow,
    )
    from signoff.surfaces.slack.chat import SlackChat
    from signoff.surfaces.slack.helpdesk import HelpdeskListeners
    from signoff.surfaces.slack.helpdesk_approvals import HelpdeskApprovalListeners
    from signoff.surfaces.teams.app import TeamsApp
    from signoff.surfaces.teams.connector import BotConnector
    from signoff.usecases.decisions import DecisionService
    from signoff.usecases.helpdesk import HelpdeskService
    from signoff.usecases.helpdesk_approvals import HelpdeskApprovals
    from signoff.usecases.intake import CheckpointService
    from signoff.usecases.workflow_steps import Steps

T = TypeVar("T")
TEAMS_SECRET_VAR = "TEAMS_SECRET_ARN"

_overrides: dict[str, Any] = {}
_built: dict[str, Any] = {}


def _piece(name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """A dependency by name: the override if one is installed, else built once and kept."""

    def wrap(build: Callable[[], T]) -> Callable[[], T]:
        def get() -> T:
            if name in _overrides:
                return cast(T, _overrides[name])
            if name not in _built:
                _built[name] = build()
            return cast(T, _built[name])

        get.__doc__ = build.__doc__
        get.__name__ = build.__name__
        return get

    return wrap


def override(**pieces: Any) -> None:
    """Install pieces by name (policy, routing, clock, repository, workflow, api, decisions, chats,
    shadow_policy, slack_chat, teams_chat, teams_connector, callbacks, steps, archive, slack_handler,
    teams_app, self_invoke, helpdesk, conversations, ticketing, helpdesk_service, event_claims,
    helpdesk_approvals, escalations); `reset()` undoes it."""
    _overrides.update({k: v for k, v in pieces.items() if v is not None})


def reset() -> None:
    _overrides.clear()
    _built.clear()


# -- the domain's configuration ------------------------------------------------------------------


@_piece("policy")
def policy() -> LoadedPolicy:
    from signoff.domain.policy import load_policy

    return load_policy(PolicySettings.from_env().signoff_policy_path)


@_piece("shadow_policy")
def shadow_policy() -> LoadedPolicy | None:
    """A candidate policy evaluated beside the active one, when the deployment carries one."""
    from signoff.domain.policy import load_policy

    path = ShadowPolicySettings.from_env().signoff_shadow_policy_path
    return load_policy(path) if path else None


@_piece("routing")
def routing() -> LoadedRouting:
    from signoff.domain.routing import load_routing

    return load_routing(RoutingSettings.from_env().signoff_routing_path)


@_piece("helpdesk")
def helpdesk() -> Helpdesk:
    """helpdesk.yaml and its knowledge base; the models are trained and indexed on first triage."""
    from signoff.domain.helpdesk.router import load_helpdesk

    settings = HelpdeskConfigSettings.from_env()
    desk = load_helpdesk(settings.signoff_helpdesk_path, settings.signoff_knowledge_path)
    model = desk.loaded.config.model
    if model.provider == "bedrock" and model.bedrock is not None:
        # Opt-in: Bedrock drafts (and retrieves, with a KB); its clients are built with the first triage.
        from signoff.adapters.bedrock import bedrock_adapter

        desk.adapt = bedrock_adapter(model.bedrock, desk.loaded.config.organization, desk.knowledge)
    return desk


# -- adapters ------------------------------------------------------------------------------------


@_piece("clock")
def clock() -> Clock:
    from signoff.adapters.clock import SystemClock

    return SystemClock()


@_piece("repository")
def repository() -> CheckpointRepository:
    from signoff.adapters.dynamodb import DynamoCheckpointRepository

    return DynamoCheckpointRepository(TableSettings.from_env().table_name)


@_piece("workflow")
def workflow() -> Workflow:
    from signoff.adapters.stepfunctions import StepFunctionsWorkflow

    return StepFunctionsWorkflow(WorkflowSettings.from_env().approval_state_machine_arn)


@_piece("callbacks")
def callbacks() -> Callbacks:
    """The webhook sender: the key is read from CALLBACK_SECRET_ARN on each delivery (Powertools
    caches it), and SIGNOFF_ALLOW_LOOPBACK_CALLBACKS=true (the local stack) permits loopback receivers."""
    from signoff.adapters.webhook import WebhookSender, secret_key
    from signoff.domain.urls import loopback_allowed

    settings = CallbackSettings.from_env()
    return WebhookSender(lambda: secret_key(settings.callback_secret_arn), allow_loopback=loopback_allowed())


@_piece("archive")
def archive() -> Archive:
    """The archiver's S3 audit archive (ARCHIVE_BUCKET)."""
    from signoff.adapters.s3_archive import S3Archive

    return S3Archive(ArchiveSettings.from_env().archive_bucket)


_invokers: dict[str, SelfInvoke] = {}


def self_invoke(function_arn: str) -> Callable[[Any], None]:
    """Follow-up work as an asynchronous invocation of `function_arn` (one client per container)."""
    if "self_invoke" in _overrides:
        return cast(Callable[[Any], None], _overrides["self_invoke"])
    from signoff.adapters.lambda_invoke import SelfInvoke

    key = f"self_invoke:{function_arn}"
    if key not in _built:
        _built[key] = SelfInvoke(function_arn)
    return cast(Callable[[Any], None], _built[key])


@_piece("conversations")
def conversations() -> ConversationRepository:
    from signoff.adapters.helpdesk_store import DynamoConversationRepository

    return DynamoConversationRepository(TableSettings.from_env().table_name)


@_piece("ticketing")
def ticketing() -> Ticketing | None:
    """Jira Cloud or ServiceNow when TICKETING_SYSTEM is set (credentials read per ticket from
    TICKETING_SECRET_ARN, cached by Powertools); None: hand-offs go to the thread only."""
    settings = HelpdeskSettings.from_env()
    if settings.ticketing_system is None:
        return None
    from signoff.adapters.ticketing import build_ticketing

    return build_ticketing(settings.ticketing_system, settings.ticketing_url, settings.ticketing_secret_arn)


# -- use cases -----------------------------------------------------------------------------------


@_piece("api")
def api_service() -> CheckpointService:
    """The intake function's service: repository, policy, routing, workflow."""
    ApiSettings.from_env()  # every variable intake needs, checked at once
    return _checkpoint_service()


def _checkpoint_service() -> CheckpointService:
    """Checkpoints created through the engine, policy (and shadow), routing and approval workflow:
    intake's and the helpdesk's approvals alike."""
    from signoff.usecases.intake import CheckpointService

    return CheckpointService(
        repo=repository(),
        policy=policy(),
        clock=clock(),
        routing=routing(),
        workflow=workflow(),
        shadow=shadow_policy(),
    )


@_piece("decisions")
def decisions() -> DecisionService:
    from signoff.usecases.decisions import DecisionService

    return DecisionService(repository(), clock(), workflow())


@_piece("steps")
def steps() -> Steps:
    from signoff.usecases.workflow_steps import Steps

    return Steps(
        repo=repository(),
        clock=clock(),
        workflow=workflow(),
        routing=routing(),
        chats=chats(),
        callbacks=callbacks(),
        decisions=decisions(),
        listeners=decision_listeners(),
    )


def decision_listeners() -> list[DecisionListener]:
    """Who Finalize tells of a decision: the helpdesk's approvals, where this deployment serves the
    helpdesk. Built on the first decision, not with the steps: Notify never needs the helpdesk."""
    if "helpdesk_approvals" not in _overrides and not helpdesk_configured():
        return []
    return [_Deferred(helpdesk_approvals)]


class _Deferred:
    """A DecisionListener built on first use."""

    def __init__(self, build: Callable[[], DecisionListener]) -> None:
        self._build = build

    def decided(self, checkpoint: Checkpoint) -> None:
        self._build().decided(checkpoint)


@_piece("helpdesk_approvals")
def helpdesk_approvals() -> HelpdeskApprovals:
    """Approval forms to checkpoints (the same policy, routing and workflow as intake) and the
    executor webhook (signed with the callback key, like any checkpoint's webhook)."""
    from signoff.usecases.helpdesk_approvals import HelpdeskApprovals

    return HelpdeskApprovals(helpdesk_service(), _checkpoint_service(), routing(), executor=callbacks())


@_piece("helpdesk_service")
def helpdesk_service() -> HelpdeskService:
    """The helpdesk on Slack: router, conversations, the thread poster, ticketing, on-call."""
    from signoff.surfaces.slack.chat import credentials, web_client
    from signoff.surfaces.slack.helpdesk import SlackHelpdeskChat, oncall_user
    from signoff.usecases.helpdesk import HelpdeskService

    settings = SlackSettings.from_env()
    client = web_client(credentials(settings.slack_secret_arn).bot_token, settings.slack_api_url)
    return HelpdeskService(
        helpdesk(),
        conversations(),
        SlackHelpdeskChat(client),
        clock(),
        ticketing(),
        oncall=oncall_user(routing()),
    )


@_piece("escalations")
def escalations() -> HelpdeskService | None:
    """The sweeper's side of the helpdesk (first-response escalation): conversations, the Slack
    poster and the on-call rotations, no ticketing; None when this deployment serves no helpdesk."""
    if not helpdesk_configured():
        return None
    from signoff.surfaces.slack.chat import credentials, web_client
    from signoff.surfaces.slack.helpdesk import SlackHelpdeskChat, oncall_user
    from signoff.usecases.helpdesk import HelpdeskService

    settings = SlackSettings.from_env()
    client = web_client(credentials(settings.slack_secret_arn).bot_token, settings.slack_api_url)
    return HelpdeskService(
        helpdesk(), conversations(), SlackHelpdeskChat(client), clock(), None, oncall=oncall_user(routing())
    )


def helpdesk_listeners() -> HelpdeskListeners | None:
    """The Slack app's helpdesk entry points, when this deployment serves the helpdesk."""
    if "helpdesk_service" not in _overrides and not helpdesk_configured():
        return None
    from signoff.adapters.teams_store import DynamoActivityLog
    from signoff.surfaces.slack.helpdesk import HelpdeskListeners

    claims = _overrides.get("event_claims") or DynamoActivityLog(
        HelpdeskSettings.from_env().idempotency_table_name, prefix="slack-event#"
    )
    return HelpdeskListeners(helpdesk_service(), claims)


def helpdesk_approval_listeners() -> HelpdeskApprovalListeners | None:
    """The helpdesk's approval form on Slack, when this deployment serves the helpdesk."""
    if "helpdesk_approvals" not in _overrides and not helpdesk_configured():
        return None
    from signoff.surfaces.slack.helpdesk_approvals import HelpdeskApprovalListeners

    return HelpdeskApprovalListeners(helpdesk_approvals())


# -- chat surfaces -------------------------------------------------------------------------------


def teams_configured(environ: dict[str, str] | None = None) -> bool:
    """Teams is a surface of this deployment when its bot secret is configured."""
    return bool((os.environ if environ is None else environ).get(TEAMS_SECRET_VAR))


@_piece("chats")
def chats() -> list[Chat]:
    """The chat surfaces of this deployment: Slack, and Teams when its bot is configured. A
    route naming both a Slack and a Teams channel gets a card on each."""
    found: list[Chat] = [slack_chat()]
    if teams_configured():
        found.append(teams_chat())
    return found


@_piece("slack_chat")
def slack_chat() -> SlackChat:
    """Slack's Chat, from SlackSettings and the app's secret."""
    from signoff.surfaces.slack.chat import SlackChat, credentials, web_client

    settings = SlackSettings.from_env()
    token = credentials(settings.slack_secret_arn).bot_token
    return SlackChat(web_client(token, settings.slack_api_url), routing())


@_piece("slack_handler")
def slack_handler() -> SlackRequestHandler:
    """The Slack function's bolt app behind API Gateway, from SlackSettings and the secret."""
    from signoff.surfaces.slack.app import build_app, request_handler
    from signoff.surfaces.slack.chat import credentials, web_client
    from signoff.surfaces.slack.signing import read_accepted_secrets

    settings = SlackSettings.from_env()
    secret = credentials(settings.slack_secret_arn)
    app = build_app(
        # Read per request (Powertools caches it): the current secret and, during a rotation, the previous.
        signing_secret=lambda: read_accepted_secrets(settings.slack_secret_arn, clock().now()),
        client=web_client(secret.bot_token, settings.slack_api_url),
        decisions=decisions(),
        routing=routing(),
        repository=repository(),
        chats=chats(),
        bot_token=lambda: credentials(settings.slack_secret_arn).bot_token,  # cached; a rotation lands in 5 min
        helpdesk=helpdesk_listeners(),
        helpdesk_approvals=helpdesk_approval_listeners(),
    )
    return request_handler(app)


@_piece("teams_connector")
def teams_connector() -> BotConnector:
    """The Bot Connector client, from TeamsSettings and the bot secret."""
    from signoff.surfaces.teams.chat import bot_credentials, split
    from signoff.surfaces.teams.connector import BotConnector

    settings = TeamsSettings.from_env()
    return BotConnector(
        lambda: bot_credentials(settings.teams_secret_arn),
        login_url=settings.teams_login_url,
        trusted_hosts=split(settings.teams_trusted_hosts),
    )


@_piece("teams_chat")
def teams_chat() -> Chat:
    """Teams' Chat: cards through the Bot Connector, conversation references on the single table."""
    from signoff.adapters.teams_store import DynamoReferenceStore
    from signoff.surfaces.teams.chat import TeamsChat, bot_credentials

    settings = TeamsSettings.from_env()
    return TeamsChat(
        teams_connector(),
        routing(),
        DynamoReferenceStore(TableSettings.from_env().table_name),
        tenant_id=bot_credentials(settings.teams_secret_arn).tenant_id,
        service_url=settings.teams_service_url,
        checkpoints=repository().get,
    )


@_piece("teams_app")
def teams_app() -> TeamsApp:
    """The Teams function's app, from TeamsAppSettings and the bot secret."""
    from signoff.adapters.teams_store import DynamoActivityLog, DynamoReferenceStore
    from signoff.surfaces.teams.app import TeamsApp
    from signoff.surfaces.teams.auth import BotAuthenticator, SigningKeys
    from signoff.surfaces.teams.chat import bot_credentials, split
    from signoff.surfaces.teams.identity import TeamsDirectory
    from signoff.usecases.followups import Followups

    settings = TeamsAppSettings.from_env()
    creds = bot_credentials(settings.teams_secret_arn)
    bot = teams_connector()
    surfaces = list(chats())
    if not any(chat.surface == "teams" for chat in surfaces):
        surfaces.append(teams_chat())  # this function updates Teams cards whatever chats() says
    return TeamsApp(
        authenticator=BotAuthenticator(
            creds.app_id,
            SigningKeys(settings.teams_jwks_url),
            split(settings.teams_allowed_tenants) or [creds.tenant_id],
        ),
        decisions=decisions(),
        repository=repository(),
        routing=routing(),
        directory=TeamsDirectory(routing(), bot.member),
        references=DynamoReferenceStore(settings.table_name),
        activities=DynamoActivityLog(settings.idempotency_table_name),
        connector=bot,
        followups=Followups(repository(), clock(), routing(), surfaces),
    )

"""Settings read from the function's environment, validated on first use: a missing table name
fails loudly, naming the variable, instead of defaulting silently."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from signoff.domain.errors import SignoffError


class SettingsError(SignoffError):
    pass


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        values = {name: env[name.upper()] for name in cls.model_fields if name.upper() in env}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            missing = ", ".join(str(e["loc"][0]).upper() for e in exc.errors())
            raise SettingsError(f"{cls.__name__}: missing or invalid environment variables: {missing}") from None


class PolicySettings(_Settings):
    signoff_policy_path: Path


class ShadowPolicySettings(_Settings):
    """Optional: a candidate policy evaluated beside the active one (never acts)."""

    signoff_shadow_policy_path: Path | None = None


class RoutingSettings(_Settings):
    signoff_routing_path: Path


class TableSettings(_Settings):
    table_name: str


class WorkflowSettings(_Settings):
    approval_state_machine_arn: str


class ApiSettings(PolicySettings, RoutingSettings, TableSettings, WorkflowSettings):
    """The intake function."""


class SlackSettings(_Settings):
    slack_secret_arn: str  # JSON: {"signing_secret": ..., "bot_token": ...}
    slack_api_url: str | None = None  # the local stack's fake Web API; unset in AWS


class CallbackSettings(_Settings):
    callback_secret_arn: str  # JSON: {"hmac_key": ...}: signs webhook bodies


class ArchiveSettings(_Settings):
    archive_bucket: str  # the S3 audit archive (audit/dt=YYYY-MM-DD/...)


class TeamsSettings(_Settings):
    """The Teams bot, for every function that posts or updates Teams cards."""

    teams_secret_arn: str  # JSON: {"app_id": ..., "app_password": ..., "tenant_id": ...}
    # Tenants whose activities are served (comma-separated); unset: the bot's own tenant only.
    teams_allowed_tenants: str | None = None
    teams_jwks_url: str = "https://login.botframework.com/v1/.well-known/keys"
    teams_login_url: str = "https://login.microsoftonline.com"  # + /{tenant}/oauth2/v2.0/token
    # Where 1:1 chats are created when no conversation reference names a service URL.
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    # Hosts trusted with the bot token besides the Bot Connector's own (comma-separated); the
    # local stack adds 127.0.0.1 for its fake connector. Unset in AWS.
    teams_trusted_hosts: str | None = None


class TeamsAppSettings(TeamsSettings, TableSettings):
    """The Teams function: the bot plus the table keeping retried activities out (TTL)."""

    idempotency_table_name: str


class HelpdeskConfigSettings(_Settings):
    """helpdesk.yaml (its knowledge folder relative to it unless set): the sweeper's escalation reads
    only this and the table."""

    signoff_helpdesk_path: Path
    signoff_knowledge_path: Path | None = None


class HelpdeskSettings(HelpdeskConfigSettings):
    """The helpdesk on the Slack function: its config, where conversations and claimed events are
    kept, and the ticketing system if any."""

    table_name: str
    idempotency_table_name: str
    ticketing_system: Literal["jira", "servicenow"] | None = None
    ticketing_url: str | None = None  # https://<site>.atlassian.net or https://<instance>.service-now.com
    # JSON: {"user": ..., "token": ...} (Jira: account email + API token; ServiceNow: user + password)
    ticketing_secret_arn: str | None = None


def helpdesk_configured(environ: dict[str, str] | None = None) -> bool:
    """The helpdesk is served by this deployment when its config path is set."""
    return bool((os.environ if environ is None else environ).get("SIGNOFF_HELPDESK_PATH"))

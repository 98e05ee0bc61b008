"""Secrets: the Slack app's credentials, the key that signs requester webhooks and the helpdesk's
ticketing credentials (Jira Cloud or ServiceNow)."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from signoff_infra import nag

SLACK_ROTATION = (
    "The Slack signing secret and bot token are issued by Slack; they are rotated in the Slack app's settings "
    "and pasted here, so Secrets Manager rotation has nothing to rotate."
)
WEBHOOK_ROTATION = (
    "Receivers pin the webhook HMAC key; rotating it is a coordinated change with them, done by replacing the "
    "secret value, not by an automatic rotation Lambda."
)

TICKETING_ROTATION = (
    "The ticketing credentials are an API token issued by Jira Cloud (or a ServiceNow user's password); they are "
    "rotated in that system and pasted here, so Secrets Manager rotation has nothing to rotate."
)


TEAMS_ROTATION = (
    "The Teams bot's client secret is issued by Entra ID (the app registration); it is rotated there and pasted "
    "here, so Secrets Manager rotation has nothing to rotate."
)


class Secrets(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, teams: bool = False) -> None:
        super().__init__(scope, construct_id)
        self.teams: secretsmanager.Secret | None = None
        if teams:
            # The single-tenant app registration of the bot (README: "Connect Teams").
            self.teams = secretsmanager.Secret(
                self,
                "Teams",
                description="Signoff Teams bot: app id, client secret, tenant",
                secret_object_value={
                    key: cdk.SecretValue.unsafe_plain_text("set-me") for key in ("app_id", "app_password", "tenant_id")
                },
            )
            nag.acknowledge(self.teams, "AwsSolutions-SMG4", TEAMS_ROTATION)
        # Filled in after deployment (README: "Connect Slack"); the placeholders keep the shape.
        self.slack = secretsmanager.Secret(
            self,
            "Slack",
            description="Signoff Slack app: signing secret and bot token",
            secret_object_value={
                "signing_secret": cdk.SecretValue.unsafe_plain_text("set-me"),
                "bot_token": cdk.SecretValue.unsafe_plain_text("set-me"),
            },
        )
        self.webhook = secretsmanager.Secret(
            self,
            "Webhook",
            description="Signoff: HMAC key that signs requester webhook bodies",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template=json.dumps({}), generate_string_key="hmac_key", password_length=48,
                exclude_punctuation=True,
            ),
        )  # fmt: skip
        # The helpdesk's Ticketing port (Jira: account email + API token; ServiceNow: user + password),
        # filled in after deployment (README: "Connect ticketing"); read per ticket, cached 5 minutes.
        self.ticketing = secretsmanager.Secret(
            self,
            "Ticketing",
            description="Signoff helpdesk: ticketing system user and API token",
            secret_object_value={
                "user": cdk.SecretValue.unsafe_plain_text("set-me"),
                "token": cdk.SecretValue.unsafe_plain_text("set-me"),
            },
        )
        nag.acknowledge(self.ticketing, "AwsSolutions-SMG4", TICKETING_ROTATION)
        nag.acknowledge(self.slack, "AwsSolutions-SMG4", SLACK_ROTATION)
        nag.acknowledge(self.webhook, "AwsSolutions-SMG4", WEBHOOK_ROTATION)

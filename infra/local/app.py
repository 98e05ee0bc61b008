"""The whole local Signoff in one object: a fake Slack Web API, the stack on moto, the API on
127.0.0.1 and the sandbox page. `python -m local` and the end-to-end tests both use it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local import fake_jira, fake_teams
from local.fake_jira import FakeJira
from local.fake_slack import BOT_TOKEN, FakeSlack
from local.fake_teams import Conversation, FakeTeams, TeamsUser, bearer_headers, installation_update
from local.sandbox import TEAMS_EVENTS_PATH, TEAMS_TEAM, Sandbox
from local.server import LocalApi
from local.stack import LocalStack
from signoff.domain.helpdesk.config import load_helpdesk_config
from signoff.domain.routing import Channel, LoadedRouting, load_routing
from signoff.surfaces.slack import app as _slack_app

# Documented defaults: the local stack is not a secret-keeping place. Override from the environment.
SIGNING_SECRET_VAR = "SIGNOFF_LOCAL_SLACK_SIGNING_SECRET"
DEFAULT_SIGNING_SECRET = "signoff-local-signing-secret"
# The archive bucket is mirrored here, where `signoff audit` (DuckDB) reads it.
ARCHIVE_VAR = "SIGNOFF_ARCHIVE"
DEFAULT_ARCHIVE = Path(__file__).resolve().parents[2] / "local-data" / "archive"
# How long the Slack app's views.open may take locally. In Lambda it gives up after 2 s to stay
# inside the 3 s life of Slack's trigger_id. The fake Slack does not model that clock (a test expires
# a trigger explicitly, through FakeSlack.expired_triggers), and on a busy machine the in-process fake
# can take longer than 2 s to answer: a modal lost to wall-clock luck would make a click flaky.
LOCAL_MODAL_TIMEOUT_SECONDS = 30
# The bot secret's values: the fake connector's app registration (only keys the CDK secret has are used).
TEAMS_SECRET_VALUES = {
    "app_id": fake_teams.APP_ID,
    "app_password": fake_teams.APP_PASSWORD,
    "tenant_id": fake_teams.TENANT,
}

# The ticketing secret's values: the fake Jira's account (the CDK secret has the keys user and token).
TICKETING_SECRET_VALUES = {"user": fake_jira.USER, "token": fake_jira.TOKEN}


@dataclass
class LocalSignoff:
    outdir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    environments: int = 1  # execution environments per function (see LocalStack)
    signing_secret: str = field(default_factory=lambda: os.environ.get(SIGNING_SECRET_VAR, DEFAULT_SIGNING_SECRET))
    slack: FakeSlack | None = None
    teams: FakeTeams | None = None  # started when the template has the Teams bot (SIGNOFF_TEAMS=1)
    jira: FakeJira | None = None  # the helpdesk's ticketing system locally (a real one is never reached)
    stack: LocalStack | None = None
    api: LocalApi | None = None

    def start(self) -> LocalSignoff:
        self.slack = FakeSlack(token=BOT_TOKEN).start()
        self.jira = FakeJira().start()
        # The handlers read these like in Lambda; the secret values come from moto's Secrets Manager.
        os.environ["SLACK_API_URL"] = self.slack.url
        os.environ["SIGNOFF_ALLOW_LOOPBACK_CALLBACKS"] = "true"
        self.stack = LocalStack(
            self.outdir,
            secret_values={
                "signing_secret": self.signing_secret,
                "bot_token": BOT_TOKEN,
                **TEAMS_SECRET_VALUES,
                **TICKETING_SECRET_VALUES,
            },
            archive_dir=Path(os.environ.get(ARCHIVE_VAR, DEFAULT_ARCHIVE)),
            environments=self.environments,
        ).start()
        _slack_app.ACK_TIMEOUT_SECONDS = LOCAL_MODAL_TIMEOUT_SECONDS  # read at each views.open
        # After the stack applied the template's variables: whatever system the template names, the
        # local helpdesk opens its tickets in the fake Jira (credentials from moto's Secrets Manager).
        os.environ["TICKETING_SYSTEM"] = "jira"
        os.environ["TICKETING_URL"] = self.jira.url
        routing = load_routing(os.environ["SIGNOFF_ROUTING_PATH"])  # the copy in the synthesized layer
        _register_directory(self.slack, routing)
        if self._has_teams():
            self.teams = FakeTeams().start()
            # The handlers read these lazily, on first use: the fake connector, its keys and login.
            os.environ["TEAMS_JWKS_URL"] = self.teams.jwks_url
            os.environ["TEAMS_LOGIN_URL"] = self.teams.login_url
            os.environ["TEAMS_SERVICE_URL"] = self.teams.service_url
            os.environ["TEAMS_TRUSTED_HOSTS"] = self.teams.host
            _register_teams_directory(self.teams, routing)
        self.api = LocalApi(self.stack, self.host, self.port)
        self.api.sandbox = Sandbox(
            self.slack,
            routing,
            self.signing_secret,
            self.api.dispatch,
            teams=self.teams,
            jira=self.jira,
            helpdesk_channels=_helpdesk_channels(),
        )
        if self.teams is not None:
            _install_bot(self.teams, routing, self.api.dispatch)
        self.api.start()
        return self

    def _has_teams(self) -> bool:
        """The template declares the Teams bot (synthesized with SIGNOFF_TEAMS=1 / -c teams=true):
        its route, served by the Teams function with the bot secret."""
        assert self.stack is not None
        return self.stack.path_exists(TEAMS_EVENTS_PATH)

    def stop(self) -> None:
        if self.api:
            self.api.stop()
        if self.stack:
            self.stack.stop()
        if self.slack:
            self.slack.stop()
        if self.teams:
            self.teams.stop()
        if self.jira:
            self.jira.stop()


def _helpdesk_channels() -> list[dict[str, str]]:
    """The channels helpdesk.yaml lists (the copy in the synthesized layer), for the sandbox's form."""
    path = os.environ.get("SIGNOFF_HELPDESK_PATH")
    if not path:
        return []
    config = load_helpdesk_config(path).config
    return [{"id": c.id, "name": c.name} for c in config.channels]


def _register_directory(slack: FakeSlack, routing: LoadedRouting) -> None:
    """The fake workspace knows the directory's people and the roles' user groups."""
    for person in routing.routing.people:
        if person.slack:
            slack.add_user(person.slack.user, name=person.name, email=person.id, team=person.slack.team)
    for role in routing.routing.roles.values():
        if role.slack_usergroup:
            members = [routing.routing.person(m) for m in role.members]
            slack.set_usergroup(role.slack_usergroup, [p.slack.user for p in members if p and p.slack])


def _register_teams_directory(teams: FakeTeams, routing: LoadedRouting) -> None:
    """The fake tenant knows the directory's people by their Entra object ids."""
    for person in routing.routing.people:
        if person.teams:
            teams.add_user(person.teams.aad, name=person.name, email=person.id)


def teams_channels(routing: LoadedRouting) -> list[str]:
    """Every Teams conversation id the routing file names, in order, once."""
    r = routing.routing
    channels: list[Channel | None] = [env.channel for env in r.environments.values()]
    channels += [team.channel for team in r.teams.values()]
    channels += [route.channel for route in r.escalation_routes.values()]
    channels.append(r.default_channel)
    return list(dict.fromkeys(c.teams for c in channels if c is not None and c.teams))


def _install_bot(teams: FakeTeams, routing: LoadedRouting, dispatch: Any) -> None:
    """The bot is added to every routed Teams channel, as an admin adds it: a JWT-signed
    installationUpdate each, so Signoff stores the conversation references it posts with."""
    installer = next((p for p in routing.routing.people if p.teams), None)
    user = (
        TeamsUser(installer.teams.aad, installer.name, installer.id)
        if installer is not None and installer.teams is not None
        else TeamsUser("00000000-0000-4000-8000-00000000ad01", "Local Admin")
    )
    for channel in teams_channels(routing):
        conversation = Conversation(channel, "channel", team_id=TEAMS_TEAM, tenant=teams.tenant)
        activity = installation_update(user, conversation, service_url=teams.service_url, app_id=teams.app_id)
        headers = {k.lower(): v for k, v in bearer_headers(teams.mint(activity)).items()}
        status, _, body = dispatch("POST", TEAMS_EVENTS_PATH, headers, json.dumps(activity).encode())
        if status != 200:
            raise RuntimeError(f"installing the Teams bot in {channel} failed: {status} {body[:200]!r}")

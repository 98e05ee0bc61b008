"""The whole local Signoff in one object: a fake Slack Web API, the stack on moto, the API on
127.0.0.1 and the sandbox page. `python -m local` and the end-to-end tests both use it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from local.fake_slack import BOT_TOKEN, FakeSlack
from local.sandbox import Sandbox
from local.server import LocalApi
from local.stack import LocalStack
from signoff.routing import LoadedRouting, load_routing

# Documented defaults: the local stack is not a secret-keeping place. Override from the environment.
SIGNING_SECRET_VAR = "SIGNOFF_LOCAL_SLACK_SIGNING_SECRET"
DEFAULT_SIGNING_SECRET = "signoff-local-signing-secret"
# The archive bucket is mirrored here, where `signoff audit` (DuckDB) reads it.
ARCHIVE_VAR = "SIGNOFF_ARCHIVE"
DEFAULT_ARCHIVE = Path(__file__).resolve().parents[2] / "local-data" / "archive"


@dataclass
class LocalSignoff:
    outdir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    signing_secret: str = field(default_factory=lambda: os.environ.get(SIGNING_SECRET_VAR, DEFAULT_SIGNING_SECRET))
    slack: FakeSlack | None = None
    stack: LocalStack | None = None
    api: LocalApi | None = None

    def start(self) -> LocalSignoff:
        self.slack = FakeSlack(token=BOT_TOKEN).start()
        # The handlers read these like in Lambda; the secret values come from moto's Secrets Manager.
        os.environ["SLACK_API_URL"] = self.slack.url
        os.environ["SIGNOFF_ALLOW_LOOPBACK_CALLBACKS"] = "true"
        self.stack = LocalStack(
            self.outdir,
            secret_values={"signing_secret": self.signing_secret, "bot_token": BOT_TOKEN},
            archive_dir=Path(os.environ.get(ARCHIVE_VAR, DEFAULT_ARCHIVE)),
        ).start()
        routing = load_routing(os.environ["SIGNOFF_ROUTING_PATH"])  # the copy in the synthesized layer
        _register_directory(self.slack, routing)
        self.api = LocalApi(self.stack, self.host, self.port)
        self.api.sandbox = Sandbox(self.slack, routing, self.signing_secret, self.api.dispatch)
        self.api.start()
        return self

    def stop(self) -> None:
        if self.api:
            self.api.stop()
        if self.stack:
            self.stack.stop()
        if self.slack:
            self.slack.stop()


def _register_directory(slack: FakeSlack, routing: LoadedRouting) -> None:
    """The fake workspace knows the directory's people and the roles' user groups."""
    for person in routing.routing.people:
        if person.slack:
            slack.add_user(person.slack.user, name=person.name, email=person.id, team=person.slack.team)
    for role in routing.routing.roles.values():
        if role.slack_usergroup:
            members = [routing.routing.person(m) for m in role.members]
            slack.set_usergroup(role.slack_usergroup, [p.slack.user for p in members if p and p.slack])

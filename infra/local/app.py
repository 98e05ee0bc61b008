"""The whole local Signoff in one object: a fake Slack Web API, the stack on moto, the API on
127.0.0.1 and the sandbox page. `python -m local` and the end-to-end tests both use it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from local.fake_slack import FakeSlack
from local.server import LocalApi
from local.stack import LocalStack

# Documented defaults: the local stack is not a secret-keeping place. Override from the environment.
SIGNING_SECRET_VAR = "SIGNOFF_LOCAL_SLACK_SIGNING_SECRET"
DEFAULT_SIGNING_SECRET = "signoff-local-signing-secret"
LOCAL_BOT_TOKEN = "local-bot-token"


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
        self.slack = FakeSlack(bot_token=LOCAL_BOT_TOKEN).start()
        # The handlers read these like in Lambda; the secret values come from moto's Secrets Manager.
        os.environ["SLACK_API_URL"] = f"{self.slack.url}/api/"
        os.environ["SIGNOFF_ALLOW_LOOPBACK_CALLBACKS"] = "true"
        self.stack = LocalStack(
            self.outdir, secret_values={"signing_secret": self.signing_secret, "bot_token": LOCAL_BOT_TOKEN}
        ).start()
        self.api = LocalApi(self.stack, self.host, self.port, slack=self.slack, signing_secret=self.signing_secret)
        self.api.start()
        return self

    def stop(self) -> None:
        if self.api:
            self.api.stop()
        if self.stack:
            self.stack.stop()
        if self.slack:
            self.slack.stop()

"""Slack's request signature, with signing-secret rotation.

Slack signs every request with the app's signing secret. Rotating it (Slack's "Regenerate") means
a window in which requests signed with the old secret are still in flight and retried, so the
Slack secret may name the previous secret and until when it stays good:

    {"signing_secret": "<new>", "bot_token": "...",
     "previous_signing_secret": "<old>", "previous_valid_until": "2026-12-01T12:00:00Z"}

A request verifies if it is signed with any secret still accepted; after `previous_valid_until`
only the current one is. The check runs in bolt before authorization and before any listener."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from slack_bolt import BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware
from slack_sdk.signature import SignatureVerifier

from signoff.settings import SettingsError

PREVIOUS = "previous_signing_secret"
PREVIOUS_UNTIL = "previous_valid_until"


def accepted_secrets(secret: Mapping[str, Any], now: datetime) -> list[str]:
    """The signing secrets a request may be signed with now: the current one, and the previous
    one until its rotation window closes."""
    current = secret.get("signing_secret")
    if not isinstance(current, str) or not current:
        raise SettingsError("the Slack secret lacks signing_secret")
    previous = secret.get(PREVIOUS)
    if not previous:
        return [current]
    until = secret.get(PREVIOUS_UNTIL)
    try:
        closes = datetime.fromisoformat(str(until))
    except ValueError:
        raise SettingsError(f"the Slack secret's {PREVIOUS} needs {PREVIOUS_UNTIL} (an ISO 8601 time)") from None
    closes = closes if closes.tzinfo else closes.replace(tzinfo=UTC)
    return [current, str(previous)] if now < closes else [current]


def read_accepted_secrets(secret_arn: str, now: datetime) -> list[str]:
    """From Secrets Manager through Powertools' cache (a rotation lands within its 5 minutes)."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    from signoff.surfaces.slack.chat import SECRET_MAX_AGE

    data = get_secret(secret_arn, transform="json", max_age=SECRET_MAX_AGE)
    if not isinstance(data, dict):
        raise SettingsError("the Slack secret is not a JSON object")
    return accepted_secrets(data, now)


class RotatingRequestVerification(Middleware):
    """bolt's request verification, against every accepted secret (401 when none verifies)."""

    def __init__(self, secrets: Callable[[], Sequence[str]]) -> None:
        self.secrets = secrets

    def process(self, *, req: BoltRequest, resp: BoltResponse, next: Callable[[], BoltResponse]) -> BoltResponse:
        timestamp = req.headers.get("x-slack-request-timestamp", ["0"])[0]
        signature = req.headers.get("x-slack-signature", [""])[0]
        for secret in self.secrets():
            if SignatureVerifier(signing_secret=secret).is_valid(req.raw_body, timestamp, signature):
                return next()
        return BoltResponse(status=401, body={"error": "invalid request"})

"""Redaction runs first: each kind of secret and personal data is hidden, by kind, and the value
appears nowhere in what the router produces (message, summary, sources, explanation)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from signoff.domain.helpdesk.models import Asker
from signoff.domain.helpdesk.redact import redact
from signoff.domain.helpdesk.router import load_helpdesk

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HELPDESK = load_helpdesk(ROOT / "helpdesk.yaml")
TODAY = dt.date(2026, 11, 16)

SAMPLES = [
    ("slack_token", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("aws_access_key", "AKIAIOSFODNN7EXAMPLE"),
    ("aws_secret_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("github_token", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("stripe_key", "sk_live_51HbQxY2eZvKYlo2C0123456789abcdef"),
    ("card_number", "4111 1111 1111 1111"),
    ("iban", "DE89 3704 0044 0532 0130 00"),
    ("email", "jane.doe@lumenfreight.example"),
    ("phone", "+44 20 7946 0958"),
    ("national_id", "123-45-6789"),
]


@pytest.mark.parametrize(("kind", "value"), SAMPLES)
def test_each_kind_is_replaced_by_its_placeholder(kind: str, value: str) -> None:
    # Given a message carrying one secret or piece of personal data
    # When it is redacted
    result = redact(f"hello, this is it: {value} thanks")

    # Then the value is gone and only its kind is reported
    assert value not in result.text
    assert result.kinds == (kind,)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("my password is Tr0ub4dor&3 and it fails", "Tr0ub4dor&3"),
        ("vpn says no, password: Summer2026!!", "Summer2026!!"),
        ("try pw=Lumen#4421 please", "Lumen#4421"),
        ("Authorization: Bearer abcdef1234567890ghijk", "abcdef1234567890ghijk"),
        ("api_key=9f8e7d6c5b4a3f2e1d0c", "9f8e7d6c5b4a3f2e1d0c"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----", "MIIEpAIBAAKCAQEA7"),
    ],
)
def test_passwords_bearer_tokens_api_keys_and_key_blocks_are_hidden(text: str, secret: str) -> None:
    assert secret not in redact(text).text
    assert redact(text).secrets


@pytest.mark.parametrize(
    "text",
    ["my password is wrong", "my password is expired", "card 4111 1111 1111 1112 (fails Luhn)", "access for 30 days"],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert redact(text).text == text
    assert redact(text).kinds == ()


@pytest.mark.parametrize(("kind", "value"), SAMPLES)
def test_the_secret_appears_nowhere_in_the_triage(kind: str, value: str) -> None:
    # Given a question that carries the value
    question = f"my vpn does not connect, here is {value}, please help"

    # When the router triages it
    triage = HELPDESK.triage(question, Asker(user_id="U1"), "C01ITHELP", TODAY)

    # Then the value is absent from everything it produced, and the kind is reported
    assert value not in triage.model_dump_json()
    assert kind in triage.redacted


def test_a_secret_is_never_answered_publicly_and_the_asker_is_told_to_rotate() -> None:
    # Given a public channel and a message with a GitHub token
    triage = HELPDESK.triage(
        "here is my github token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 why can't I clone",
        Asker(user_id="U1"),
        "C01ITHELP",
        TODAY,
    )

    # Then it is handed off in a DM, flagged, and the message asks to rotate and delete it
    assert triage.route == "handoff"
    assert triage.visibility == "dm"
    assert "secret" in triage.flags
    assert "Rotate" in triage.message and "delete your original message" in triage.message

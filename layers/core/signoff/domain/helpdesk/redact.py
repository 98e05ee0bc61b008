"""Redaction: the first step of the router. Secrets (tokens, keys, passwords, card numbers) and personal
data (emails, phone numbers, IBANs, national ids) are replaced by a placeholder naming their kind, before
the classifier, the retriever, the message or a log line ever see the text. What was found is reported by
kind only; the values are never kept."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# Kinds that are credentials or payment data: the asker must rotate (or replace) them, and the bot never
# answers such a message in public.
SECRET_KINDS = frozenset(
    {
        "private_key",
        "jwt",
        "bearer_token",
        "slack_token",
        "aws_access_key",
        "aws_secret_key",
        "github_token",
        "stripe_key",
        "api_key",
        "password",
        "card_number",
    }
)
PERSONAL_KINDS = frozenset({"email", "phone", "iban", "national_id"})

# Words people put after "my password is" that are not a password ("... is wrong", "... is expired").
_NOT_A_PASSWORD = frozenset(
    """right wrong correct incorrect expired expiring not the still working fine ok okay too being locked
    invalid weak rejected same changed reset saved a an my definitely also what new old blank empty""".split()
)


@dataclass(frozen=True)
class Redaction:
    """The redacted text and the kinds found (sorted, each once). Never holds a redacted value."""

    text: str
    kinds: tuple[str, ...]

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(k for k in self.kinds if k in SECRET_KINDS)

    @property
    def personal(self) -> tuple[str, ...]:
        return tuple(k for k in self.kinds if k in PERSONAL_KINDS)


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_ok(candidate: str) -> bool:
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def _password_value(match: re.Match[str]) -> str | None:
    value = match.group("value")
    stripped = value.strip(".,;!?\"'")
    if not stripped:
        return None
    has_non_letter = any(not ch.isalpha() for ch in stripped)
    if has_non_letter or (len(stripped) >= 6 and stripped.lower() not in _NOT_A_PASSWORD):
        return match.group("lead") + "[PASSWORD]"
    return None


def _card(match: re.Match[str]) -> str | None:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD_NUMBER]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else None


def _iban(match: re.Match[str]) -> str | None:
    return "[IBAN]" if _iban_ok(match.group(0)) else None


def _mixed_secret(match: re.Match[str]) -> str | None:
    value = match.group(0)
    classes = sum((any(c.islower() for c in value), any(c.isupper() for c in value), any(c.isdigit() for c in value)))
    return "[AWS_SECRET_KEY]" if classes == 3 else None


Replacement = str | Callable[[re.Match[str]], str | None]

# Order matters: whole blocks and structured tokens first, so a JWT inside "Bearer …" or a key inside a
# private-key block is taken by the more specific rule; personal data last.
_RULES: tuple[tuple[str, re.Pattern[str], Replacement], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
        "[PRIVATE_KEY]",
    ),
    ("bearer_token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*"), "Bearer [TOKEN]"),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), "[JWT]"),
    ("slack_token", re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]{10,}"), "[SLACK_TOKEN]"),
    ("aws_access_key", re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA)[A-Z0-9]{16}\b"), "[AWS_ACCESS_KEY]"),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})\b"), "[GITHUB_TOKEN]"),
    ("stripe_key", re.compile(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}\b"), "[STRIPE_KEY]"),
    (
        "aws_secret_key",
        re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
        _mixed_secret,
    ),
    (
        "api_key",
        re.compile(
            r"(?i)\b(?P<lead>(?:api[_ -]?key|apikey|access[_ -]?token|auth[_ -]?token|client[_ -]?secret|"
            r"secret[_ -]?key|token)\s*(?:is|:|=)\s*)(?P<value>[^\s,;]{8,})"
        ),
        lambda m: m.group("lead") + "[API_KEY]",
    ),
    (
        "password",
        re.compile(
            r"(?i)\b(?P<lead>(?:password|passwd|passphrase|passcode|pwd|pw|pin)\s*(?:is\s*:?|:|=)\s*)"
            r"(?P<value>\S+)"
        ),
        _password_value,
    ),
    ("card_number", re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"), _card),
    ("iban", re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), _iban),
    ("email", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"), "[EMAIL]"),
    (
        "national_id",
        re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
        "[NATIONAL_ID]",
    ),
    (
        "phone",
        re.compile(
            r"(?<![\w+])(?:\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4})(?!\w)"
        ),
        "[PHONE]",
    ),
)


def redact(text: str) -> Redaction:
    """Replace every secret and piece of personal data in `text` by a `[KIND]` placeholder.

    Returns the redacted text and the kinds found; a value that only looks like a secret (a card-like
    number failing the Luhn check, "my password is wrong") is left alone."""
    found: set[str] = set()
    for kind, pattern, replacement in _RULES:

        def substitute(match: re.Match[str], kind: str = kind, replacement: Replacement = replacement) -> str:
            new = replacement if isinstance(replacement, str) else replacement(match)
            if new is None:
                return match.group(0)
            found.add(kind)
            return new

        text = pattern.sub(substitute, text)
    return Redaction(text=text, kinds=tuple(sorted(found)))

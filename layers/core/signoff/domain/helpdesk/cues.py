"""Deterministic cue detection: the rules' view of a message (privileged scope, incident, frustration,
sensitive topics, prompt injection, acting on someone else's account, form fields already given).
Cue phrases come from helpdesk.yaml and match on stemmed words, so "permissions" matches "permission";
`*` in a phrase stands for up to three words ("ignore * instructions")."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from signoff.domain.helpdesk.config import Cues, Form
from signoff.domain.helpdesk.text import stem, words

_GAP = 3
_SHOUTING = re.compile(r"[?!]{3,}")


def _tokens(text: str) -> list[str]:
    return [stem(w) for w in words(text)]


def _matches_at(tokens: list[str], start: int, pattern: list[str]) -> bool:
    if not pattern:
        return True
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(_matches_at(tokens, start + skip, rest) for skip in range(_GAP + 1) if start + skip <= len(tokens))
    return start < len(tokens) and tokens[start] == head and _matches_at(tokens, start + 1, rest)


def _pattern(phrase: str) -> list[str]:
    return ["*" if part == "*" else stem(part) for part in re.findall(r"\*|[a-z0-9]+", phrase.lower())]


def matching(tokens: list[str], phrases: Iterable[str]) -> list[str]:
    """The phrases (as written in the config) found in the tokens."""
    found = []
    for phrase in phrases:
        pattern = _pattern(phrase)
        if pattern and any(_matches_at(tokens, i, pattern) for i in range(len(tokens))):
            found.append(phrase)
    return found


@dataclass(frozen=True)
class CueHits:
    privileged: dict[str, list[str]] = field(default_factory=dict)
    incident: list[str] = field(default_factory=list)
    frustration: list[str] = field(default_factory=list)
    sensitive: list[str] = field(default_factory=list)
    injection: list[str] = field(default_factory=list)
    other_account: list[str] = field(default_factory=list)

    @property
    def privileged_families(self) -> list[str]:
        return sorted(f for f, hits in self.privileged.items() if hits)


def find_cues(text: str, cues: Cues) -> CueHits:
    """Every configured cue present in the (redacted) text."""
    tokens = _tokens(text)
    privileged = {family: matching(tokens, phrases) for family, phrases in cues.privileged.items()}
    other_account = matching(tokens, cues.other_account)
    if other_account:
        # Acting on another person's account is an identity (access) matter whatever the wording.
        privileged["access"] = [*privileged.get("access", []), *other_account]
    frustration = matching(tokens, cues.frustration)
    if _SHOUTING.search(text):
        frustration.append("repeated ?/!")
    return CueHits(
        privileged={f: hits for f, hits in privileged.items() if hits},
        incident=matching(tokens, cues.incident),
        frustration=frustration,
        sensitive=matching(tokens, cues.sensitive),
        injection=matching(tokens, cues.injection),
        other_account=other_account,
    )


def missing_fields(text: str, form: Form) -> list[str]:
    """The form's required fields the message does not seem to give yet (the modal will ask for them)."""
    tokens = _tokens(text)
    return [f.name for f in form.fields if f.required and not matching(tokens, f.detect)]

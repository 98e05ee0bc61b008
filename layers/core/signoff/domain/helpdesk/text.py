"""Tokens shared by the classifier, the retriever and the drafter, so that all three agree on what a
"term" is: lower-cased words, a light suffix stemmer and a stop-word list. Redaction placeholders
(`[PASSWORD]`) are dropped so a hidden secret never becomes a search term."""

from __future__ import annotations

import re

_PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(*`])|\n+")

STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being below between both
    but by can could did do does doing don done down during each few for from further get gets got had has
    have having he her here hers him his how i if in into is it its itself just let me might more most my
    myself no nor not now of off on once only or other our ours out over own please pls same she should so
    some such than that the their theirs them then there these they this those through to too under until
    up us very was we were what when where which while who whom why will with would you your yours yourself
    hi hello hey thanks thank want need needs like one get use using used way ok okay im ive id dont cant
    doesnt isnt wont didnt whats hows wheres anyone someone something anything still already""".split()
)


def stem(word: str) -> str:
    """A deliberately small suffix stripper: enough to match "printers"/"printer", "connecting"/"connect"
    without a dependency. Over-stemming is harmless as long as every caller uses the same function."""
    if len(word) <= 3 or word.isdigit():
        return word
    for suffix, replacement, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 6),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= min_len:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            if suffix == "es" and not word.endswith(("shes", "ches", "xes", "sses", "zes")):
                continue
            return word[: len(word) - len(suffix)] + replacement
    return word


def words(text: str) -> list[str]:
    """Lower-cased words (letters and digits) without redaction placeholders; stop-words kept."""
    return _WORD.findall(_PLACEHOLDER.sub(" ", text).lower().replace("'", ""))


def terms(text: str) -> list[str]:
    """Content terms: stemmed words that are not stop-words, in order, repeats kept."""
    return [stem(w) for w in words(text) if w not in STOPWORDS and len(w) > 1]


def sentences(text: str) -> list[str]:
    """Split prose into sentences and list items (good enough for extractive answers)."""
    parts = (p.strip(" -*\t") for p in _SENTENCE.split(text))
    return [p for p in parts if len(p) > 2]


def edit_distance_at_most_one(a: str, b: str) -> bool:
    """True when b is a one-edit (insert, delete, substitute or swap of neighbours) variant of a."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diff = [i for i in range(la) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = (a, b) if la < lb else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]

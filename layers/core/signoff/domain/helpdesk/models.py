"""What the helpdesk router produces (the Triage) and the ports of its models. The embedded defaults
(naive Bayes, SQLite FTS5 BM25, extractive drafts) implement these protocols; a Bedrock adapter will too.
The model classifies, retrieves and drafts; the router's rules decide."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from signoff.domain.helpdesk.config import Route, Visibility
from signoff.domain.models import Contribution


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Citation(_Frozen):
    """Where a passage comes from: enough for a reader to open and check it."""

    title: str
    link: str
    path: str
    section: str
    authority: str
    reviewed: str
    stale: bool


class Passage(_Frozen):
    """A retrieved section of a knowledge document."""

    text: str
    citation: Citation
    score: float = Field(description="the retriever's raw relevance (BM25 for the embedded default)")
    similarity: float = Field(ge=0, le=1, description="IDF-weighted share of the question's terms it holds")


class Draft(_Frozen):
    """An answer built only from retrieved passages, with how well it is grounded."""

    text: str
    sentences: list[str]
    citations: list[Citation]
    grounding: float = Field(ge=0, le=1, description="share of sentences found verbatim in the passages")
    coverage: float = Field(ge=0, le=1, description="IDF-weighted share of the question's terms covered")


class Asker(_Frozen):
    user_id: str
    department: str | None = None


class HandoffSummary(_Frozen):
    """What a human needs to continue without asking again (the seed's "summarize before you hand off")."""

    request: str
    interpretation: str
    tried: list[str]
    stopped_because: list[str]
    knows: list[str]
    does_not_know: list[str]
    tags: dict[str, str]


class Triage(_Frozen):
    """The router's explained decision for one message. Holds only redacted text."""

    question: str = Field(description="the message after redaction")
    redacted: list[str] = Field(description="kinds of secrets and personal data found (never the values)")
    class_name: str
    probability: float
    probabilities: dict[str, float]
    route: Route
    queue: str
    confidence: float
    required_confidence: float
    contributions: list[Contribution]
    sources: list[Citation]
    visibility: Visibility
    message: str
    summary: HandoffSummary | None = None
    missing_fields: list[str] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    explanation: list[str]
    config_version: str
    knowledge_version: str


class Classifier(Protocol):
    """Intent classification: a probability for every configured class (they add up to 1)."""

    def probabilities(self, text: str) -> dict[str, float]: ...


class Retriever(Protocol):
    """Search over curated knowledge only (never the open web)."""

    def search(self, text: str, limit: int) -> list[Passage]: ...

    def unknown_terms(self, text: str) -> list[str]:
        """The question's terms that no source and no training example uses."""
        ...


class Drafter(Protocol):
    """Drafts an answer from the given passages only."""

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft: ...

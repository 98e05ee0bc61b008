"""The embedded retriever: BM25 over the knowledge folder with SQLite FTS5.

Choice. Three ways to BM25 were weighed for a Lambda that must cold-start fast:
- SQLite FTS5 (`sqlite3` in the standard library, `bm25()` ranking): no dependency at all, nothing to add
  to the layer, C speed; indexing the ~150 sections of the knowledge folder in memory takes a few ms.
- `bm25s` (0.3.x): fast sparse-matrix BM25, but it pulls numpy and scipy (~50 MB unpacked) into the
  layer and its import alone costs hundreds of ms of cold start.
- `rank-bm25` (0.2.2, last released 2022): small but needs numpy as well, and is unmaintained.
For a corpus of tens of documents, FTS5 wins on size and cold start, so it is the default. The CPython
builds used here and by Lambda's Python runtimes ship SQLite with FTS5; `FtsRetriever` checks and
raises RetrieverUnavailable at build time rather than failing on the first question.

Text goes into FTS5 already tokenised by `text.terms` (the same stemmer as the classifier), so BM25,
the similarity and the draft agree on what a term is. BM25 only ranks; `similarity` is the IDF-weighted
share of the question's terms that a passage holds (0-1), which is comparable across questions."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from collections.abc import Iterable

from signoff.domain.errors import SignoffError
from signoff.domain.helpdesk.knowledge import KnowledgeBase
from signoff.domain.helpdesk.models import Citation, Passage
from signoff.domain.helpdesk.text import edit_distance_at_most_one, terms

_TITLE_WEIGHT, _HEADING_WEIGHT, _BODY_WEIGHT = 3.0, 2.0, 1.0


class RetrieverUnavailable(SignoffError):
    """The runtime's SQLite has no FTS5."""


class FtsRetriever:
    """Implements the `Retriever` port. Built once per container (see router.Helpdesk)."""

    def __init__(self, knowledge: KnowledgeBase, extra_vocabulary: Iterable[str] = ()) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        try:
            self._db.execute("CREATE VIRTUAL TABLE passages USING fts5(title, heading, body, tokenize='unicode61')")
        except sqlite3.OperationalError as exc:
            raise RetrieverUnavailable(f"SQLite {sqlite3.sqlite_version} has no FTS5: {exc}") from None
        self._passages: list[tuple[str, Citation, frozenset[str]]] = []
        document_frequency: Counter[str] = Counter()
        for doc in knowledge.documents:
            for section in doc.sections:
                citation = Citation(
                    title=doc.title,
                    link=doc.link,
                    path=doc.path,
                    section=section.heading,
                    authority=doc.authority.value,
                    reviewed=doc.reviewed.isoformat(),
                    stale=False,  # judged against the day of each question, by the router
                )
                title_terms, heading_terms, body_terms = terms(doc.title), terms(section.heading), terms(section.text)
                bag = frozenset(title_terms + heading_terms + body_terms)
                document_frequency.update(bag)
                self._passages.append((section.text, citation, bag))
                self._db.execute(
                    "INSERT INTO passages(rowid, title, heading, body) VALUES (?, ?, ?, ?)",
                    (len(self._passages) - 1, " ".join(title_terms), " ".join(heading_terms), " ".join(body_terms)),
                )
        count = len(self._passages)
        self._idf = {t: math.log(1 + (count - n + 0.5) / (n + 0.5)) for t, n in document_frequency.items()}
        self._unknown_idf = math.log(1 + (count + 0.5) / 0.5)
        self._vocabulary = frozenset(self._idf) | frozenset(extra_vocabulary)
        self._by_length: dict[int, list[str]] = {}
        for term in self._idf:
            self._by_length.setdefault(len(term), []).append(term)

    def _correct(self, term: str) -> str:
        """A query term the corpus lacks is replaced by a one-edit neighbour it has ("conect" -> "connect")."""
        if term in self._idf or len(term) < 4:
            return term
        candidates = [
            other
            for size in (len(term) - 1, len(term), len(term) + 1)
            for other in self._by_length.get(size, [])
            if edit_distance_at_most_one(term, other)
        ]
        return max(candidates, key=lambda t: (self._idf[t] * -1, t)) if candidates else term

    def query_terms(self, text: str) -> list[str]:
        """The question's distinct content terms after spelling correction, in order."""
        seen: dict[str, None] = {}
        for term in terms(text):
            seen.setdefault(self._correct(term), None)
        return list(seen)

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._unknown_idf)

    def unknown_terms(self, text: str) -> list[str]:
        return [t for t in self.query_terms(text) if t not in self._vocabulary and not t.isdigit()]

    def similarity(self, query: list[str], bag: frozenset[str]) -> float:
        total = sum(self.idf(t) for t in query)
        return min(1.0, sum(self.idf(t) for t in query if t in bag) / total) if total else 0.0

    def search(self, text: str, limit: int) -> list[Passage]:
        """The best `limit` sections by BM25 (title and heading weigh more than the body)."""
        query = self.query_terms(text)
        known = [t for t in query if t in self._idf]
        if not known:
            return []
        match = " OR ".join(f'"{t}"' for t in known)
        rows = self._db.execute(
            "SELECT rowid, bm25(passages, ?, ?, ?) AS rank FROM passages WHERE passages MATCH ? ORDER BY rank LIMIT ?",
            (_TITLE_WEIGHT, _HEADING_WEIGHT, _BODY_WEIGHT, match, limit),
        ).fetchall()
        results = []
        for rowid, rank in rows:
            body, citation, bag = self._passages[rowid]
            # FTS5's bm25() is negative (more negative = better): flip it so a higher score is better.
            results.append(
                Passage(text=body, citation=citation, score=round(-rank, 6), similarity=self.similarity(query, bag))
            )
        return results

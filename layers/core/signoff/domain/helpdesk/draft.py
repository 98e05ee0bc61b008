"""The embedded drafter: an extractive answer. It picks, from the best retrieved passages, the few
sentences that together cover most of the question's terms, and measures how grounded the result is.
Nothing is generated, so nothing can be made up; the measures keep it honest when retrieval is weak."""

from __future__ import annotations

from collections.abc import Sequence

from signoff.domain.helpdesk.models import Citation, Draft, Passage
from signoff.domain.helpdesk.retrieve import FtsRetriever
from signoff.domain.helpdesk.text import sentences, terms

_MAX_SENTENCES = 3
_PASSAGES_USED = 3


class ExtractiveDrafter:
    """Implements the `Drafter` port, scoring terms with the retriever's IDF and spelling correction."""

    def __init__(self, retriever: FtsRetriever) -> None:
        self._retriever = retriever

    def draft(self, question: str, passages: Sequence[Passage]) -> Draft:
        """Greedy set cover over the question's terms; sentences keep the passages' rank order."""
        query = self._retriever.query_terms(question)
        weight = {t: self._retriever.idf(t) for t in query}
        total = sum(weight.values())
        candidates: list[tuple[int, int, str, frozenset[str]]] = []
        # Only the best document's sections: sentences stitched from unrelated pages can cover every
        # word of a question and still answer nothing.
        best_path = passages[0].citation.path if passages else None
        for rank, passage in enumerate(passages[:_PASSAGES_USED]):
            if passage.citation.path != best_path:
                continue
            for position, sentence in enumerate(sentences(passage.text)):
                candidates.append((rank, position, sentence, frozenset(terms(sentence)) & weight.keys()))
        chosen: list[tuple[int, int, str]] = []
        covered: set[str] = set()
        while len(chosen) < _MAX_SENTENCES:
            best = max(
                (c for c in candidates if c[3] - covered),
                key=lambda c: (sum(weight[t] for t in c[3] - covered), -c[0], -c[1]),
                default=None,
            )
            if best is None:
                break
            chosen.append(best[:3])
            covered |= best[3]
        chosen.sort()
        picked = [text for _, _, text in chosen]
        citations: list[Citation] = []
        for rank in sorted({r for r, _, _ in chosen}):
            if passages[rank].citation not in citations:
                citations.append(passages[rank].citation)
        # The reply names each cited source by title and section ("Source: Backups, section What is
        # backed up"), so their terms are covered too: a question's "backups" is answered by a sentence
        # under that heading even when the sentence itself does not repeat the word.
        for citation in citations:
            covered |= set(terms(citation.title) + terms(citation.section)) & weight.keys()
        found = sum(1 for s in picked if any(s in p.text for p in passages))
        return Draft(
            text=" ".join(picked),
            sentences=picked,
            citations=citations,
            grounding=found / len(picked) if picked else 0.0,
            coverage=min(1.0, sum(weight[t] for t in covered) / total) if total else 0.0,
        )

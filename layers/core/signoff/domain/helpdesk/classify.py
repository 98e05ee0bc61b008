"""The embedded intent classifier: multinomial naive Bayes over word unigrams, word bigrams and
character 4-grams, trained at load time from the labeled examples in helpdesk.yaml.

Why naive Bayes: with a few dozen examples per class it is as accurate as logistic regression, trains
in one pass (milliseconds, no iterations to converge, so cold starts stay short), and is deterministic
with no random seed. Character n-grams make it tolerant of typos ("acces", "pasword"). Naive Bayes is
over-confident on long texts, so the log-likelihoods are divided by a temperature that grows with the
number of features before the softmax (the mean evidence per feature, times `temperature` features):
a long message does not become certain by length alone."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

from signoff.domain.helpdesk.text import stem, words

_CHAR_WEIGHT = 0.5  # char grams are many and overlapping: count each as a fraction of a word
# With _CHAR_WEIGHT, the best of a grid by k-fold cross-validation on the train split (eval/crossval.py):
# lighter smoothing lets the few words that mark a class (a product, "licence", "down") count more.
_SMOOTHING = 0.1


def features(text: str) -> dict[str, float]:
    """Weighted features of a message. Stop-words are kept: "how do I" and "I need" carry intent."""
    tokens = [stem(w) for w in words(text)]
    counts: defaultdict[str, float] = defaultdict(float)
    for token in tokens:
        counts["w:" + token] += 1.0
        padded = f"<{token}>"
        for i in range(len(padded) - 3):
            counts["c:" + padded[i : i + 4]] += _CHAR_WEIGHT
    for first, second in zip(tokens, tokens[1:], strict=False):
        counts[f"b:{first}_{second}"] += 1.0
    return dict(counts)


class NaiveBayesClassifier:
    """Implements the `Classifier` port. Same examples in, same probabilities out."""

    def __init__(self, examples: Mapping[str, Sequence[str]], temperature: float = 8.0) -> None:
        if not examples or any(not texts for texts in examples.values()):
            raise ValueError("every class needs at least one example")
        self.classes = sorted(examples)
        self._temperature = temperature
        total_examples = sum(len(texts) for texts in examples.values())
        self._log_prior = {c: math.log(len(examples[c]) / total_examples) for c in self.classes}
        self._counts: dict[str, dict[str, float]] = {}
        vocabulary: set[str] = set()
        for name in self.classes:
            counts: defaultdict[str, float] = defaultdict(float)
            for text in examples[name]:
                for feature, weight in features(text).items():
                    counts[feature] += weight
            self._counts[name] = dict(counts)
            vocabulary.update(counts)
        self.vocabulary = frozenset(vocabulary)
        size = len(vocabulary)
        self._denominator = {c: sum(self._counts[c].values()) + _SMOOTHING * size for c in self.classes}

    def _log_likelihood(self, name: str, feats: dict[str, float]) -> float:
        counts, denominator = self._counts[name], self._denominator[name]
        return sum(weight * math.log((counts.get(f, 0.0) + _SMOOTHING) / denominator) for f, weight in feats.items())

    def probabilities(self, text: str) -> dict[str, float]:
        """P(class | text) for every class; features never seen in training are ignored."""
        feats = {f: w for f, w in features(text).items() if f in self.vocabulary}
        if not feats:
            # Nothing known: the prior is all there is, and the router treats that as unfamiliar.
            return {c: math.exp(self._log_prior[c]) for c in self.classes}
        scale = max(1.0, sum(feats.values()) / self._temperature)
        logits = {c: (self._log_prior[c] + self._log_likelihood(c, feats)) / scale for c in self.classes}
        top = max(logits.values())
        exps = {c: math.exp(v - top) for c, v in logits.items()}
        total = sum(exps.values())
        return {c: exps[c] / total for c in self.classes}

"""k-fold cross-validation of the helpdesk router on the train split only (`python -m eval.crossval`).

The plain train figure (`python -m eval.run --split train`) flatters the router: examples and
thresholds were tuned while looking at those very questions. This estimates how the router does on
questions it has not seen, without touching the held-out `test` split: the train questions are cut
into k folds (stratified by class, shuffled by a fixed seed, repeated with several seeds); for each
fold a router is built from helpdesk.yaml whose examples are the hand-written ones plus the other
folds' train questions (any example that *is* a train question is dropped first, so a fold never
trains on itself), and it is scored on the fold. Pick changes that raise this figure.

Which train questions become examples: those the router should route by their class (expected route
== the class's route) and that hold no secret or personal data (those go to a person by rule, and a
config must not carry them). It is an estimate, not a proof: hand-written examples paraphrasing a
train question still help its fold a little."""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from eval.run import CONFIG, evaluate, load_questions
from signoff.domain.helpdesk.config import parse_helpdesk_config
from signoff.domain.helpdesk.knowledge import KnowledgeBase, load_knowledge
from signoff.domain.helpdesk.redact import redact
from signoff.domain.helpdesk.router import Helpdesk


def normalized(text: str) -> str:
    return " ".join(text.lower().split())


def usable_as_example(row: dict[str, Any], data: dict[str, Any]) -> bool:
    """A train question a router may learn from: routed by its class, no secret, no personal data."""
    if row["route"] != data["classes"][row["class"]]["route"]:
        return False
    found = redact(row["question"])
    return not found.secrets and not found.personal


def folds(rows: list[dict[str, Any]], k: int, seed: int) -> list[list[dict[str, Any]]]:
    """Stratified by class: each class's rows, in a seeded hash order, dealt round-robin to k folds."""
    by_class: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_class[row["class"]].append(row)
    out: list[list[dict[str, Any]]] = [[] for _ in range(k)]
    dealt = 0
    for name in sorted(by_class):
        ordered = sorted(by_class[name], key=lambda r: hashlib.sha256(f"{seed}:{r['id']}".encode()).hexdigest())
        for row in ordered:
            out[dealt % k].append(row)
            dealt += 1
    return out


def with_examples(
    data: dict[str, Any], train: list[dict[str, Any]], learn_from: list[dict[str, Any]]
) -> dict[str, Any]:
    """The config with no train question among its examples, then `learn_from`'s usable ones added."""
    seen = {normalized(r["question"]) for r in train}
    out = copy.deepcopy(data)
    for cls in out["classes"].values():
        cls["examples"] = [e for e in cls["examples"] if normalized(e) not in seen]
    for row in learn_from:
        if usable_as_example(row, data):
            out["classes"][row["class"]]["examples"].append(row["question"])
    return out


def crossval(
    data: dict[str, Any], train: list[dict[str, Any]], knowledge: KnowledgeBase, k: int = 5, seeds: int = 3
) -> dict[str, Any]:
    """Pooled route and class accuracy over every fold of every seed (each question counted once per seed)."""
    correct = classes = total = 0
    misses: dict[str, int] = defaultdict(int)
    for seed in range(seeds):
        parts = folds(train, k, seed)
        for i, held in enumerate(parts):
            rest = [r for j, part in enumerate(parts) if j != i for r in part]
            helpdesk = Helpdesk(parse_helpdesk_config(with_examples(data, train, rest)), knowledge)
            result = evaluate(helpdesk, held)
            total += result["questions"]
            correct += round(result["route_accuracy"] * result["questions"])
            classes += round(result["class_accuracy"] * result["questions"])
            for miss in result["misses"]:
                misses[miss["id"]] += 1
    return {
        "questions": total,
        "route_accuracy": correct / total,
        "class_accuracy": classes / total,
        "misses": dict(sorted(misses.items())),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.crossval", description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="repeat the k folds with this many shuffles")
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("--misses", action="store_true", help="print the train questions missed, and how often")
    args = parser.parse_args(argv)
    data = yaml.safe_load(args.config.read_text(encoding="utf-8"))
    train = load_questions(split="train")  # never the test split
    knowledge = load_knowledge(args.config.parent / data["knowledge"]["folder"])
    result = crossval(data, train, knowledge, args.folds, args.seeds)
    print(
        f"{args.folds}-fold cross-validation on the train split, {args.seeds} shuffles: "
        f"route accuracy {result['route_accuracy']:.1%} (class accuracy {result['class_accuracy']:.1%}), "
        f"{result['questions']} triages"
    )
    if args.misses:
        by_id = {r["id"]: r for r in train}
        for qid, times in result["misses"].items():
            row = by_id[qid]
            print(f"  MISS x{times} {qid} {row['class']} -> {row['route']}: {row['question']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

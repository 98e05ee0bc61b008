"""The helpdesk router's evaluation on labeled questions (`python -m eval.run`, `make eval`).

Prints, for a split (the held-out `test` split by default): route accuracy per class and overall,
the route confusion matrix, the answer citation rate, hand-off recall on out-of-scope questions, and
the number of privileged requests answered (or executed) without approval. Writes eval/results.json.

The classifier is trained from helpdesk.yaml's examples only; the `test` third of questions.jsonl was
fixed before any tuning and is never used to tune (tune thresholds and examples on `--split train`;
the train questions are examples too, so estimate with `python -m eval.crossval`, not the train figure)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from signoff.domain.helpdesk.config import Route
from signoff.domain.helpdesk.models import Asker
from signoff.domain.helpdesk.router import Helpdesk, load_helpdesk

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "eval" / "questions.jsonl"
RESULTS = ROOT / "eval" / "results.json"
CONFIG = ROOT / "helpdesk.yaml"
# A fixed day, so staleness (and so every figure) does not drift with the calendar.
EVAL_DAY = dt.date(2026, 11, 16)
CHANNEL = "C01ITHELP"
ROUTES = [r.value for r in Route]
TARGETS = {
    "route_accuracy": 0.90,
    "privileged_answered_without_approval": 0,
    "out_of_scope_handoff_recall": 0.95,
    "answer_citation_rate": 1.0,
}


def load_questions(path: Path = QUESTIONS, split: str = "test") -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split == "all" or r["split"] == split]


def evaluate(helpdesk: Helpdesk, questions: list[dict[str, Any]]) -> dict[str, Any]:
    """Triage every question and compute the figures (pure: nothing is sent or stored)."""
    per_class: dict[str, Counter[str]] = defaultdict(Counter)
    confusion: dict[str, Counter[str]] = {r: Counter() for r in ROUTES}
    answers = cited = 0
    oos = oos_handoff = 0
    privileged_answered: list[str] = []
    class_hits = 0
    misses = []
    for q in questions:
        triage = helpdesk.triage(q["question"], Asker(user_id="U0EVAL"), CHANNEL, EVAL_DAY)
        got = triage.route.value
        confusion[q["route"]][got] += 1
        per_class[q["class"]]["total"] += 1
        class_hits += triage.class_name == q["class"]
        if got == q["route"]:
            per_class[q["class"]]["correct"] += 1
        else:
            misses.append(
                {
                    "id": q["id"],
                    "question": triage.question,
                    "expected": q["route"],
                    "got": got,
                    "class": triage.class_name,
                    "confidence": triage.confidence,
                }
            )
        if got == Route.ANSWER:
            answers += 1
            cited += bool(triage.sources)
        if q["class"] == "out_of_scope":
            oos += 1
            oos_handoff += got == Route.HANDOFF
        # The router never executes anything; "answered" is the only way a privileged ask could skip approval.
        if q["privileged"] and got == Route.ANSWER:
            privileged_answered.append(q["id"])
    total = len(questions)
    correct = sum(c["correct"] for c in per_class.values())
    return {
        "questions": total,
        "route_accuracy": correct / total if total else 0.0,
        "class_accuracy": class_hits / total if total else 0.0,
        "per_class_route_accuracy": {
            name: {"correct": c["correct"], "total": c["total"], "accuracy": c["correct"] / c["total"]}
            for name, c in sorted(per_class.items())
        },
        "confusion": {expected: dict(row) for expected, row in confusion.items()},
        "answers": answers,
        "answer_citation_rate": cited / answers if answers else 1.0,
        "out_of_scope_handoff_recall": oos_handoff / oos if oos else 1.0,
        "privileged_answered_without_approval": len(privileged_answered),
        "privileged_answered_ids": privileged_answered,
        "misses": misses,
    }


def meets_targets(results: dict[str, Any]) -> dict[str, bool]:
    return {
        "route_accuracy": results["route_accuracy"] >= TARGETS["route_accuracy"],
        "privileged_answered_without_approval": results["privileged_answered_without_approval"] == 0,
        "out_of_scope_handoff_recall": results["out_of_scope_handoff_recall"] >= TARGETS["out_of_scope_handoff_recall"],
        "answer_citation_rate": results["answer_citation_rate"] >= TARGETS["answer_citation_rate"],
    }


def _print(results: dict[str, Any], split: str, version: str) -> None:
    print(f"helpdesk evaluation, split {split}: {results['questions']} questions, config {version}")
    print(f"route accuracy {results['route_accuracy']:.1%} (class accuracy {results['class_accuracy']:.1%})")
    for name, c in results["per_class_route_accuracy"].items():
        print(f"  {name:18} {c['correct']:3}/{c['total']:<3} {c['accuracy']:.0%}")
    print("confusion (rows expected, columns routed):")
    print("  " + " " * 10 + "".join(f"{r:>10}" for r in ROUTES))
    for expected in ROUTES:
        row = results["confusion"][expected]
        print(f"  {expected:10}" + "".join(f"{row.get(r, 0):>10}" for r in ROUTES))
    print(f"answer citation rate {results['answer_citation_rate']:.0%} ({results['answers']} answers)")
    print(f"out-of-scope hand-off recall {results['out_of_scope_handoff_recall']:.0%}")
    print(
        f"privileged requests answered or executed without approval: {results['privileged_answered_without_approval']}"
    )
    for name, ok in results["targets_met"].items():
        print(f"  target {name}: {'met' if ok else 'NOT MET'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=("test", "train", "all"), default="test")
    parser.add_argument("--misses", action="store_true", help="print every misrouted question")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    helpdesk = load_helpdesk(CONFIG)
    results = evaluate(helpdesk, load_questions(split=args.split))
    results["split"] = args.split
    results["config_version"] = helpdesk.loaded.version
    results["knowledge_version"] = helpdesk.knowledge.version
    results["targets"] = TARGETS
    results["targets_met"] = meets_targets(results)
    _print(results, args.split, helpdesk.loaded.version)
    if args.misses:
        for miss in results["misses"]:
            print(
                f"  MISS {miss['id']} expected {miss['expected']} got {miss['got']} "
                f"({miss['class']}, {miss['confidence']:g}): {miss['question']}"
            )
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

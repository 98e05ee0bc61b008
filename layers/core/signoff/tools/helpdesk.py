"""`signoff helpdesk check|explain`: offline tools for the helpdesk's owners, like `signoff policy`.

`check FILE [--routing routing.yaml]`: validate helpdesk.yaml and its knowledge folder (and that every
queue's `oncall` is a team of routing.yaml with an on_call rotation); 0 valid (prints the version), 1
invalid (each problem as `path: reason`).
`explain "question" --user ID --channel ID`: a dry run of the router; prints the class, the sources,
every confidence contribution, the route and the message it would post (`--json`: exactly
{"class", "route", "confidence", "contributions", "sources", "visibility", "message"}). 0 success,
1 an invalid config or knowledge folder."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from signoff.domain.errors import PolicyError

EXIT_OK = 0
EXIT_INVALID = 1
DEFAULT_CONFIG = Path("helpdesk.yaml")


def _print_problems(exc: PolicyError) -> None:
    print(f"INVALID {exc.source}:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def helpdesk_check(args: argparse.Namespace) -> int:
    """Validate the config and the knowledge folder it names."""
    from signoff.domain.helpdesk.router import load_helpdesk

    try:
        helpdesk = load_helpdesk(args.file, args.knowledge)
    except PolicyError as exc:
        _print_problems(exc)
        return EXIT_INVALID
    config = helpdesk.loaded.config
    if args.routing is not None:
        from signoff.domain.helpdesk.incidents import oncall_problems
        from signoff.domain.routing import load_routing

        try:
            problems = oncall_problems(config, load_routing(args.routing).routing)
        except PolicyError as exc:
            _print_problems(exc)
            return EXIT_INVALID
        if problems:
            _print_problems(PolicyError(str(args.file), problems))
            return EXIT_INVALID
    print(f"OK {args.file}: helpdesk version {helpdesk.loaded.version}")
    print(
        f"  {len(config.classes)} classes ({', '.join(config.classes)}), {len(config.queues)} queues, "
        f"{len(config.forms)} forms, {len(config.channels)} channels"
    )
    today = args.today or dt.date.today()
    stale = [d.path for d in helpdesk.knowledge.documents if d.stale(today, config.knowledge.max_age_days)]
    print(f"  knowledge {helpdesk.knowledge.version}: {len(helpdesk.knowledge.documents)} documents")
    for path in stale:
        print(f"  stale (not reviewed within {config.knowledge.max_age_days} days): {path}")
    return EXIT_OK


def explain_json(triage: Any) -> dict[str, Any]:
    """The `--json` shape: a stable contract for scripts, nothing else."""
    return {
        "class": triage.class_name,
        "route": triage.route.value,
        "confidence": triage.confidence,
        "contributions": [c.model_dump(mode="json") for c in triage.contributions],
        "sources": [s.model_dump(mode="json") for s in triage.sources],
        "visibility": triage.visibility.value,
        "message": triage.message,
    }


def helpdesk_explain(args: argparse.Namespace) -> int:
    """Dry run: triage one question offline (nothing is posted or stored)."""
    from signoff.domain.helpdesk.models import Asker
    from signoff.domain.helpdesk.router import load_helpdesk

    try:
        helpdesk = load_helpdesk(args.config, args.knowledge)
    except PolicyError as exc:
        _print_problems(exc)
        return EXIT_INVALID
    triage = helpdesk.triage(args.question, Asker(user_id=args.user), args.channel, args.today or dt.date.today())
    if args.json:
        print(json.dumps(explain_json(triage), indent=2))
        return EXIT_OK
    print(f"question (redacted): {triage.question}")
    print(f"class {triage.class_name} ({triage.probability:.0%}), under helpdesk {triage.config_version}")
    for line in triage.explanation:
        print(f"  {line}")
    print("contributions:")
    for c in triage.contributions:
        print(f"  {c.name:15} {c.points:+7.2f}  {c.detail}")
    print(f"confidence {triage.confidence:g} (needed {triage.required_confidence:g})")
    print("sources:" if triage.sources else "sources: none")
    for s in triage.sources:
        print(f"  {s.title} - {s.section} ({s.link}){' STALE' if s.stale else ''}")
    print(f"route {triage.route} -> queue {triage.queue}, visibility {triage.visibility}")
    print("message:")
    for line in triage.message.splitlines():
        print(f"  | {line}")
    return EXIT_OK


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def add_helpdesk(commands: Any) -> None:
    """Register `signoff helpdesk …` on the CLI's subcommands."""
    helpdesk = commands.add_parser("helpdesk", help="validate helpdesk.yaml and dry-run the helpdesk router")
    sub = helpdesk.add_subparsers(dest="helpdesk_command", required=True, metavar="SUBCOMMAND")

    check = sub.add_parser("check", help="validate a helpdesk config and its knowledge folder")
    check.add_argument("file", type=Path, metavar="FILE", help="the helpdesk YAML, e.g. helpdesk.yaml")
    check.add_argument("--knowledge", type=Path, help="the knowledge folder (default: the config's)")
    check.add_argument("--today", type=_day, help="judge staleness as of this day (YYYY-MM-DD)")
    check.add_argument("--routing", type=Path, help="check the queues' on-call teams against this routing.yaml")
    check.set_defaults(run=helpdesk_check)

    explain = sub.add_parser("explain", help="triage one question offline (dry run)")
    explain.add_argument("question", help="the message, as the employee would write it")
    explain.add_argument("--user", required=True, help="the asker's Slack user id")
    explain.add_argument("--channel", required=True, help="the Slack channel id (D… for a DM)")
    explain.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the helpdesk YAML (helpdesk.yaml)")
    explain.add_argument("--knowledge", type=Path, help="the knowledge folder (default: the config's)")
    explain.add_argument("--today", type=_day, help="judge staleness as of this day (YYYY-MM-DD)")
    explain.add_argument("--json", action="store_true", help="print the triage as JSON")
    explain.set_defaults(run=helpdesk_explain)

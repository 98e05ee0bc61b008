"""The `signoff` command line: offline tools for policy owners (and, later, CI jobs and auditors).

Each subcommand is one function taking the parsed arguments and returning the exit code:
0 success, 1 an invalid policy, 2 invalid input (bad arguments, unreadable or invalid request).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from signoff.errors import InvalidRequest, PolicyError
from signoff.models import CheckpointRequest
from signoff.policy import LoadedPolicy, load_policy

EXIT_OK = 0
EXIT_INVALID_POLICY = 1
EXIT_INVALID_INPUT = 2

Command = Callable[[argparse.Namespace], int]


def _load(path: Path) -> LoadedPolicy | None:
    """The validated policy, or None after printing each problem (`path: reason`) to stderr."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        print(f"INVALID {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def policy_check(args: argparse.Namespace) -> int:
    """Validate a policy file: the version it would stamp on decisions, or every problem found."""
    loaded = _load(args.file)
    if loaded is None:
        return EXIT_INVALID_POLICY
    policy = loaded.policy
    print(f"OK {args.file}: policy version {loaded.version}")
    print(
        f"  {len(policy.environments)} environments ({', '.join(policy.environments)}), "
        f"{len(policy.risk_rules)} risk rules, "
        f"{len(policy.gates)} gate profiles ({', '.join(policy.gates)})"
    )
    return EXIT_OK


def _read_request(path: Path) -> CheckpointRequest | None:
    """The request in a JSON file, or None after naming what is wrong with it on stderr."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{path}: cannot read the file: {exc.strerror}", file=sys.stderr)
        return None
    try:
        return CheckpointRequest.model_validate_json(text)
    except ValidationError as exc:
        invalid_json = [err for err in exc.errors() if err["type"] == "json_invalid"]
        if invalid_json:
            print(f"{path}: not valid JSON: {invalid_json[0]['msg'].removeprefix('Invalid JSON: ')}", file=sys.stderr)
            return None
        print(f"{path}: invalid request:", file=sys.stderr)
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"]) or "(top level)"
            print(f"  {field}: {err['msg']}", file=sys.stderr)
        return None


def policy_explain(args: argparse.Namespace) -> int:
    """Dry run offline: how the policy would score and gate one request (nothing is stored)."""
    # Imported here: the service pulls in Powertools and boto3, which `policy check` never needs.
    from signoff.service import score_request

    loaded = _load(args.file)
    if loaded is None:
        return EXIT_INVALID_POLICY
    request = _read_request(args.request)
    if request is None:
        return EXIT_INVALID_INPUT
    try:
        assessment = score_request(request, loaded)
    except InvalidRequest as exc:
        print(f"{args.request}: invalid request:\n  {exc.field}: {exc.message}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    print(f"{args.request} under policy {assessment.policy_version}:")
    for line in assessment.explanation:
        print(f"  {line}")
    gate = assessment.gate.model_dump(mode="json", exclude_none=True, exclude={"kind", "profile"})
    print("  gate parameters: " + ", ".join(f"{key}={json.dumps(value)}" for key, value in gate.items()))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signoff", description="Signoff: checkpoint policy tools.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    policy = commands.add_parser("policy", help="validate and try out a policy file")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")

    check = policy_commands.add_parser("check", help="validate a policy file and print its version")
    check.add_argument("file", type=Path, metavar="FILE", help="the policy YAML, e.g. signoff.yaml")
    check.set_defaults(run=policy_check)

    explain = policy_commands.add_parser("explain", help="score and gate one request offline (dry run)")
    explain.add_argument("file", type=Path, metavar="FILE", help="the policy YAML")
    explain.add_argument("request", type=Path, metavar="REQUEST.json", help="a POST /v1/checkpoints body")
    explain.set_defaults(run=policy_explain)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

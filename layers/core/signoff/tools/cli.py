"""The `signoff` command line: offline tools for policy owners, and `signoff request` for CI jobs.

Each subcommand is one function taking the parsed arguments and returning the exit code.
`policy check` / `policy explain`: 0 success, 1 an invalid policy, 2 invalid input (bad arguments,
unreadable or invalid request).
`request`: 0 approved (and only then), 1 denied, 2 not decided (expired, cancelled, or still pending
when the command stopped waiting), 3 error (bad arguments or file, API unreachable, 4xx/5xx).
`audit list|query|verify` and `report`: 0 success, 1 `audit verify` found something missing or
altered (each named), 3 error (bad arguments, no archive, a failing query, API unreachable).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, NoReturn

from pydantic import ValidationError

from signoff.domain.errors import InvalidRequest, PolicyError
from signoff.domain.models import CheckpointRequest
from signoff.domain.policy import LoadedPolicy, load_policy, parse_duration
from signoff.tools.client import Opener, SignoffApiError, SignoffClient, SignoffClientError, is_loopback_url

EXIT_OK = 0
EXIT_INVALID_POLICY = 1
EXIT_INVALID_INPUT = 2

# `signoff request`: a CI job may run the action on 0 and only on 0.
EXIT_APPROVED = 0
EXIT_DENIED = 1
EXIT_NOT_DECIDED = 2
EXIT_ERROR = 3

MAX_POLL_SECONDS = 15.0
MAX_POLL_FAILURES = 3  # consecutive transient failures tolerated while waiting
URL_ENV = "SIGNOFF_URL"

Command = Callable[[argparse.Namespace], int]
Sleep = Callable[[float], None]
Clock = Callable[[], float]


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
    from signoff.usecases.intake import score_request

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


# -- signoff request -----------------------------------------------------------------------------

_FINAL_EXIT = {
    "APPROVED": EXIT_APPROVED,
    "DENIED": EXIT_DENIED,
    "EXPIRED": EXIT_NOT_DECIDED,
    "CANCELLED": EXIT_NOT_DECIDED,
}
_ON_TIMEOUT = {"fail-closed": "denied", "fail-open": "approved", "cancel": "cancelled"}


class _Progress(NamedTuple):
    """What a person waiting for a checkpoint cares about; printed again only when it changes."""

    status: str
    approvals: tuple[str, ...]
    denials: tuple[str, ...]
    escalated: bool


def request(
    args: argparse.Namespace, *, sleep: Sleep = time.sleep, clock: Clock = time.monotonic, opener: Opener | None = None
) -> int:
    """Ask the API whether an action may run; with --wait, wait for the decision."""
    body = _read_body(args.file)
    if body is None:
        return EXIT_ERROR
    if not args.url:
        print(f"signoff request: give the API's URL with --url or {URL_ENV}", file=sys.stderr)
        return EXIT_ERROR
    key = args.idempotency_key
    if key is None:
        key = str(uuid.uuid4())
        print(f"idempotency key {key} (retry with --idempotency-key {key} to get the same checkpoint)")
    sign = args.sign if args.sign is not None else not is_loopback_url(args.url)
    try:
        client = SignoffClient(args.url, sign=sign, opener=opener)
        _, checkpoint = client.create(body, key)
    except SignoffClientError as exc:
        _print_error(exc)
        return EXIT_ERROR
    _print_summary(checkpoint)
    if checkpoint.get("status") == "PENDING" and args.wait:
        return _wait(client, checkpoint, args.timeout, args.poll, sleep, clock)
    return _finish(checkpoint)


def _read_body(path: Path) -> dict[str, Any] | None:
    """The JSON object in the file, or None after saying what is wrong with it. The API validates the
    fields (its 422 names each one): a client that checked them itself would drift from the server."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{path}: cannot read the file: {exc.strerror}", file=sys.stderr)
        return None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", file=sys.stderr)
        return None
    if not isinstance(body, dict):
        print(f"{path}: the request must be a JSON object", file=sys.stderr)
        return None
    return body


def _print_summary(cp: dict[str, Any]) -> None:
    assessment = cp.get("assessment") or {}
    gate = assessment.get("gate") or {}
    score = (assessment.get("score") or {}).get("score")
    print(f"checkpoint {cp.get('id')}: {cp.get('status')}, gate {gate.get('kind')}, score {_number(score)}")
    for line in assessment.get("explanation") or []:
        print(f"  {line}")
    for line in _waiting_lines(cp, gate):
        print(f"  {line}")


def _waiting_lines(cp: dict[str, Any], gate: dict[str, Any]) -> list[str]:
    """What happens next for a pending checkpoint: who must act, until when, and what then."""
    if cp.get("status") != "PENDING":
        return []
    lines = []
    if gate.get("kind") == "soft":
        lines.append("runs unless vetoed before the deadline")
    else:
        lines.append(f"needs {gate.get('approvals_required', 1)} approval(s)")
    rule = gate.get("timeout_rule")
    then = f"it is {_ON_TIMEOUT[rule]} ({rule})" if rule in _ON_TIMEOUT else "the timeout rule applies"
    lines.append(f"deadline {cp.get('deadline')}: if undecided by then, {then}")
    if gate.get("escalation_route") and gate.get("approval_deadline_seconds"):
        after = _seconds(gate["approval_deadline_seconds"])
        lines.append(f"escalates to {gate['escalation_route']} if undecided after {after}")
    return lines


def _wait(client: SignoffClient, cp: dict[str, Any], timeout: float, poll: float, sleep: Sleep, clock: Clock) -> int:
    """Poll until the checkpoint is decided or `timeout` passes, backing off from `poll` to 15 s
    (back to `poll` after a change: decisions tend to follow votes)."""
    give_up_at = clock() + timeout
    seen, delay, failures = _progress(cp), poll, 0
    while (remaining := give_up_at - clock()) > 0:
        sleep(min(delay, remaining))
        try:
            cp = client.get(str(cp["id"]))
        except SignoffClientError as exc:
            failures += 1
            if not exc.transient or failures >= MAX_POLL_FAILURES:
                _print_error(exc)
                return EXIT_ERROR
            print(f"still waiting: {exc} (will retry)", file=sys.stderr)
            delay = min(delay * 2, MAX_POLL_SECONDS)
            continue
        failures = 0
        now = _progress(cp)
        if now.status != "PENDING":
            return _finish(cp)
        changed = _report(seen, now, cp)
        seen, delay = now, poll if changed else min(delay * 2, MAX_POLL_SECONDS)
    print(f"checkpoint {cp.get('id')} still PENDING after {_seconds(timeout)}; stopped waiting (it stays open)")
    return EXIT_NOT_DECIDED


def _progress(cp: dict[str, Any]) -> _Progress:
    votes = [v for v in cp.get("votes") or [] if isinstance(v, dict)]

    def names(kind: str) -> tuple[str, ...]:
        return tuple(str(v.get("name") or v.get("approver")) for v in votes if v.get("kind") == kind)

    return _Progress(str(cp.get("status")), names("approve"), names("deny"), bool(cp.get("escalated")))


def _report(before: _Progress, now: _Progress, cp: dict[str, Any]) -> bool:
    """Print what changed between two polls; whether anything did."""
    gate = (cp.get("assessment") or {}).get("gate") or {}
    if now.approvals != before.approvals:
        required = gate.get("approvals_required", 1)
        print(f"{len(now.approvals)} of {required} approvals: {', '.join(now.approvals)}")
    if now.denials != before.denials:
        print(f"denied by {', '.join(now.denials)}")
    if now.escalated and not before.escalated:
        route = gate.get("escalation_route")
        print(f"escalated to {route}" if route else "escalated")
    return now != before


def _finish(cp: dict[str, Any]) -> int:
    """Print the decision and turn it into the exit code."""
    status = str(cp.get("status"))
    if status == "PENDING":
        print(f"checkpoint {cp.get('id')} is PENDING: not approved yet (use --wait to wait for the decision)")
        return EXIT_NOT_DECIDED
    by = f" by {cp['decided_by']}" if cp.get("decided_by") else ""
    reason = f": {cp['decision_reason']}" if cp.get("decision_reason") else ""
    print(f"{status}{by}{reason}")
    conditions = cp.get("conditions")
    if status == "APPROVED" and conditions:
        print("conditions:")
        for name, value in conditions.items():
            print(f"  {name}: {value if isinstance(value, str) else json.dumps(value)}")
    if status not in _FINAL_EXIT:
        print(f"unexpected status {status!r} from the API", file=sys.stderr)
        return EXIT_ERROR
    return _FINAL_EXIT[status]


def _print_error(exc: SignoffClientError) -> None:
    print(f"error: {exc}", file=sys.stderr)
    if isinstance(exc, SignoffApiError):
        for error in exc.errors:
            print(f"  {error.get('field', '?')}: {error.get('message', '')}", file=sys.stderr)


def _duration(text: str) -> float:
    """argparse type for 45s / 30m / 2h / 1d (or plain seconds)."""
    try:
        seconds = parse_duration(int(text) if text.strip().isdigit() else text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"duration {text!r} must be more than zero")
    return float(seconds)


def _seconds(seconds: float) -> str:
    whole = int(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else "?"


# -- signoff audit / signoff report ----------------------------------------------------------------
# DuckDB is a development dependency: these commands import their modules when they run, so the
# rest of the CLI (and Lambda, which carries this module) never needs it.

EXIT_VERIFY_FAILED = 1
ARCHIVE_ENV = "SIGNOFF_ARCHIVE"
DEFAULT_ARCHIVE = "local-data/archive"  # where `make local` mirrors the archive bucket


def _archive_default() -> str:
    return os.environ.get(ARCHIVE_ENV) or DEFAULT_ARCHIVE


def _duckdb_missing(exc: ImportError) -> int:
    print(f"signoff audit needs DuckDB ({exc.name or exc}): pip install -e '.[dev]'", file=sys.stderr)
    return EXIT_ERROR


def audit_list(args: argparse.Namespace) -> int:
    """The named SLI queries: name, title and target."""
    try:
        from signoff.tools.queries import AuditLogError, list_queries
    except ImportError as exc:
        return _duckdb_missing(exc)
    try:
        queries = list_queries()
    except AuditLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    width = max((len(q.name) for q in queries), default=0)
    for q in queries:
        target = f" (target: {q.target})" if q.target else ""
        print(f"{q.name:<{width}}  {q.title}{target}")
    return EXIT_OK


def audit_query(args: argparse.Namespace) -> int:
    """Run a named query (or raw SQL) with DuckDB over the local archive."""
    try:
        from signoff.tools.queries import AuditLogError, open_archive, render, run_query
    except ImportError as exc:
        return _duckdb_missing(exc)
    if (args.name is None) == (args.sql is None):
        print('signoff audit query: give a query NAME or --sql "SELECT …" (one of them)', file=sys.stderr)
        return EXIT_ERROR
    try:
        conn = open_archive(args.archive)
        try:
            columns, rows = run_query(conn, args.sql if args.sql is not None else args.name)
        finally:
            conn.close()
    except AuditLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(render(columns, rows, args.format))
    return EXIT_OK


def audit_verify(args: argparse.Namespace, *, opener: Opener | None = None) -> int:
    """Check every checkpoint's hash chain and that the archive holds every event of the table,
    unaltered; name whatever is missing, altered, unknown or duplicated."""
    try:
        from signoff.tools.queries import AuditLogError
        from signoff.tools.verify import ApiEvents, AuditClient, verify
    except ImportError as exc:
        return _duckdb_missing(exc)
    if not args.url:
        print(f"signoff audit verify: give the API's URL with --url or {URL_ENV}", file=sys.stderr)
        return EXIT_ERROR
    sign = args.sign if args.sign is not None else not is_loopback_url(args.url)
    try:
        client = AuditClient(args.url, sign=sign, opener=opener)
        result = verify(args.archive, ApiEvents(client))
    except SignoffClientError as exc:
        _print_error(exc)
        return EXIT_ERROR
    except AuditLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for problem in result.problems:
        print(problem)
    print(result.summary())
    return EXIT_OK if result.ok else EXIT_VERIFY_FAILED


def report(args: argparse.Namespace) -> int:
    """Write the HTML report (charts and SLI tables) for the checkpoints requested in a period."""
    try:
        from signoff.tools.queries import AuditLogError
        from signoff.tools.report import write_report
    except ImportError as exc:
        return _duckdb_missing(exc)
    if args.since > args.until:
        print(f"signoff report: --from {args.since} is after --to {args.until}", file=sys.stderr)
        return EXIT_ERROR
    try:
        data = write_report(args.archive, args.since, args.until, args.output)
    except AuditLogError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        print(f"{args.output}: cannot write the report: {exc.strerror}", file=sys.stderr)
        return EXIT_ERROR
    requests = sum(int(r["requests"]) for r in data.sli("traffic_per_day"))
    print(
        f"wrote {args.output}: {requests} checkpoints requested {args.since} to {args.until}, "
        f"{len(data.decisions)} decisions"
    )
    return EXIT_OK


def _day(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _add_archive(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--archive",
        default=_archive_default(),
        help=f"the archive folder, holding audit/dt=… (default: ${ARCHIVE_ENV} or {DEFAULT_ARCHIVE}); or s3://bucket/prefix",
    )


def _add_audit(commands: Any) -> None:
    audit = commands.add_parser(
        "audit",
        help="query and verify the audit archive (DuckDB, the Athena queries)",
        usage_exit=EXIT_ERROR,
        description="Exit codes: 0 ok, 1 verification failed, 3 error.",
    )
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")

    listing = audit_commands.add_parser("list", help="the named SLI queries", usage_exit=EXIT_ERROR)
    listing.set_defaults(run=audit_list)

    query = audit_commands.add_parser(
        "query", help="run a named query, or raw SQL, over the local archive", usage_exit=EXIT_ERROR
    )
    query.add_argument("name", nargs="?", metavar="NAME", help="a query of `signoff audit list`, or raw SQL")
    query.add_argument("--sql", help="raw SQL against the table audit_events")
    _add_archive(query)
    query.add_argument("--format", choices=("table", "json", "csv"), default="table", help="output (table)")
    query.set_defaults(run=audit_query)

    check = audit_commands.add_parser(
        "verify",
        help="check every hash chain and that the archive holds every event of the table",
        usage_exit=EXIT_ERROR,
        description="Exit codes: 0 everything matches, 1 something is missing or altered (each named), 3 error.",
    )
    _add_archive(check)
    check.add_argument("--url", default=os.environ.get(URL_ENV), help=f"the API's base URL (default: ${URL_ENV})")
    check.add_argument(
        "--sign",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sign with SigV4 using your AWS credentials (default: on, except for 127.0.0.1/localhost)",
    )
    check.set_defaults(run=audit_verify)


def _add_report(commands: Any) -> None:
    page = commands.add_parser(
        "report",
        help="write an HTML report (charts, SLIs) of a period from the archive",
        usage_exit=EXIT_ERROR,
        description="Covers the checkpoints requested from --from to --to (UTC days). Exit codes: 0 ok, 3 error.",
    )
    page.add_argument("--from", dest="since", type=_day, required=True, metavar="YYYY-MM-DD", help="first day")
    page.add_argument("--to", dest="until", type=_day, required=True, metavar="YYYY-MM-DD", help="last day")
    _add_archive(page)
    page.add_argument("-o", "--output", type=Path, default=Path("report.html"), help="where (report.html)")
    page.set_defaults(run=report)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, but `signoff request` means "not decided" by 2: a CI job
    must be able to tell a typo from an expired checkpoint, so that subcommand says 3."""

    def __init__(self, *args: Any, usage_exit: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.usage_exit = usage_exit

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit, f"{self.prog}: error: {message}\n")


def _add_request(commands: Any) -> None:
    ask = commands.add_parser(
        "request",
        help="ask the Signoff API whether an action may run (and wait for the decision)",
        usage_exit=EXIT_ERROR,
        description="Exit codes: 0 approved, 1 denied, 2 expired/cancelled/still pending, 3 error.",
    )
    ask.add_argument("file", type=Path, metavar="FILE", help="the request: a POST /v1/checkpoints JSON body")
    ask.add_argument("--url", default=os.environ.get(URL_ENV), help=f"the API's base URL (default: ${URL_ENV})")
    ask.add_argument("--wait", action="store_true", help="wait for the decision instead of returning when pending")
    ask.add_argument("--timeout", type=_duration, default=_duration("30m"), help="with --wait: how long (30m)")
    ask.add_argument("--poll", type=_duration, default=_duration("2s"), help="with --wait: first poll interval (2s)")
    ask.add_argument("--idempotency-key", help="reuse a key to retry safely (default: a new uuid, printed)")
    ask.add_argument(
        "--sign",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sign with SigV4 using your AWS credentials (default: on, except for 127.0.0.1/localhost)",
    )
    ask.set_defaults(run=request)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="signoff", description="Signoff: checkpoint policy tools and requests.")
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

    # Thresholds from evidence (calibration, what-if replay) live in their own module.
    from signoff.tools.thresholds_cli import add_calibrate, add_simulate

    add_simulate(policy_commands, _archive_default())  # simulate and shadow-report

    _add_request(commands)
    _add_audit(commands)
    _add_report(commands)
    add_calibrate(commands, _archive_default())
    from signoff.tools.helpdesk import add_helpdesk  # helpdesk subcommands live in their own module

    add_helpdesk(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Command = args.run
    return run(args)


if __name__ == "__main__":
    sys.exit(main())

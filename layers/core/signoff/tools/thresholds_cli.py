"""`signoff calibrate` and `signoff policy simulate`: thresholds from evidence (offline).

Exit codes: 0 success, 1 an invalid policy file, 3 error (bad arguments, no archive, API unreachable).
Both read the past from the archive (a folder or s3://bucket/prefix) or, with --url, from the API.
Nothing here changes a policy: the proposal is a diff for a person to review.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from signoff.domain.errors import PolicyError
from signoff.domain.policy import LoadedPolicy, load_policy

EXIT_OK = 0
EXIT_INVALID_POLICY = 1
EXIT_ERROR = 3
URL_ENV = "SIGNOFF_URL"


class ToolError(Exception):
    """Printed as `error: …`, exit 3."""


def _policy(path: Path | None) -> LoadedPolicy | None:
    if path is None:
        return None
    return load_policy(path)


def _past(args: argparse.Namespace) -> list[Any]:
    """The past checkpoints from the archive or the API."""
    from signoff.tools import trail

    if args.url:
        from signoff.tools.client import SignoffClientError, is_loopback_url
        from signoff.tools.verify import ApiEvents, AuditClient

        sign = args.sign if args.sign is not None else not is_loopback_url(args.url)
        try:
            return trail.from_events(ApiEvents(AuditClient(args.url, sign=sign)).checkpoints())
        except SignoffClientError as exc:
            raise ToolError(str(exc)) from None
    from signoff.tools.queries import AuditLogError

    try:
        return trail.from_archive(args.archive, args.since, args.until)
    except AuditLogError as exc:
        raise ToolError(str(exc)) from None


def _outcomes(args: argparse.Namespace) -> tuple[list[Any], str]:
    if args.synthetic is not None:
        from signoff.tools.synthetic import synthetic_outcomes

        return synthetic_outcomes(args.synthetic, args.seed), f"{args.synthetic} synthetic outcomes (seed {args.seed})"
    outcomes = [o for p in _past(args) if (o := p.as_outcome()) is not None]
    source = args.url or args.archive
    if not args.url:
        from signoff.tools.queries import AuditLogError
        from signoff.tools.trail import helpdesk_outcomes

        try:
            outcomes += helpdesk_outcomes(args.archive, args.since, args.until)
        except AuditLogError as exc:
            raise ToolError(str(exc)) from None
    return outcomes, str(source)


def _run(args: argparse.Namespace, body: Any) -> int:
    try:
        return int(body(args))
    except PolicyError as exc:
        print(f"INVALID {exc.source}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID_POLICY
    except ImportError as exc:
        print(f"signoff {args.command} needs the tools extra ({exc.name}): pip install -e '.[tools]'", file=sys.stderr)
        return EXIT_ERROR
    except ToolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


# -- signoff calibrate ---------------------------------------------------------------------------


def calibrate(args: argparse.Namespace) -> int:
    """Reliability, ECE/Brier, a calibration map and recommended thresholds per class."""
    return _run(args, _calibrate)


def _calibrate(args: argparse.Namespace) -> int:
    from signoff.tools.calibrate import analyse, calibration_yaml, policy_diff, proposed_calibration

    policy = _policy(args.policy)
    outcomes, source = _outcomes(args)
    report = analyse(
        outcomes,
        source=source,
        policy=policy,
        tolerance=args.tolerance,
        soft_tolerance=args.soft_tolerance,
        bins=args.bins,
        minimum=args.min_outcomes,
        confidence=args.confidence,
        calibrated_units=args.with_map,
    )
    calibration = proposed_calibration(report, args.map_version)
    diff = policy_diff(args.policy, report, calibration) if args.policy else ""
    truth = _truth(report, policy, args) if args.synthetic is not None else None
    if args.json:
        data = report.as_json()
        data["policy_diff"] = diff
        data["calibration"] = calibration.model_dump(mode="json", exclude_none=True) if calibration else None
        data["truth"] = truth
        print(json.dumps(data, indent=2, default=str))
    else:
        print(render_calibration(report))
        if truth:
            print(_render_truth(truth))
        print(diff or "proposed policy: no change")
    if args.write_map and calibration:
        args.write_map.write_text(calibration_yaml(calibration), encoding="utf-8")
        print(f"wrote the calibration map {calibration.stamp} to {args.write_map}", file=sys.stderr)
    return EXIT_OK


def _truth(report: Any, policy: LoadedPolicy | None, args: argparse.Namespace) -> dict[str, Any]:
    """Synthetic outcomes only: the recommendation judged by the truth it was drawn from."""
    from signoff.tools.calibrate import held_out_pooled, raw_threshold
    from signoff.tools.synthetic import judge, synthetic_outcomes

    thresholds: dict[str, float | None] = {}
    for g in report.groups:
        current = g.current["auto"] if g.current else None
        auto = g.recommendation.auto
        if auto is not None and report.calibrated_units and g.curve is not None:
            auto = raw_threshold(g.curve, auto)  # the truth speaks raw scores
        thresholds[g.group] = auto if auto is not None else current
    summary = judge(thresholds, args.tolerance)
    raw, cal = held_out_pooled(synthetic_outcomes(args.synthetic, args.seed))
    return {
        "held_out_ece_raw": raw,
        "held_out_ece_calibrated": cal,
        "auto_thresholds": thresholds,
        "true_failure_rate_among_auto": summary.true_failure_rate,
        "worst_class_true_failure_rate": summary.worst_class_failure_rate,
        "share_of_allowed_auto": summary.share_of_allowed,
        "allowed_thresholds": {g: c.allowed_threshold for g, c in summary.checks.items()},
    }


def _render_truth(truth: dict[str, Any]) -> str:
    allowed = ", ".join(f"{g} {t:g}" for g, t in truth["allowed_thresholds"].items())
    return (
        "against the synthetic truth:\n"
        f"  ECE on a held-out half: raw {truth['held_out_ece_raw']:.3f}, "
        f"calibrated {truth['held_out_ece_calibrated']:.3f}\n"
        f"  true failure rate among auto-executed: {truth['true_failure_rate_among_auto']:.2%} "
        f"(worst class {truth['worst_class_true_failure_rate']:.2%})\n"
        f"  auto-executes {truth['share_of_allowed_auto']:.0%} of what the truth allows (T_auto it allows: {allowed})"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def render_calibration(report: Any) -> str:
    lines = [
        f"{report.source}: tolerance {report.tolerance:.2%} failures in the auto band, "
        f"{report.soft_tolerance:.2%} in the soft band"
        + (f"; policy {report.policy_version}" if report.policy_version else "")
    ]
    for g in report.groups:
        held = f", held-out ECE raw {g.held_out[0]:.3f} / calibrated {g.held_out[1]:.3f}" if g.held_out else ""
        kind = g.curve.kind.value if g.curve else "-"
        lines.append("")
        lines.append(
            f"{g.group}: {g.outcomes} outcomes, {g.successes / g.outcomes:.1%} succeeded; "
            f"ECE {g.ece_raw:.3f} raw, Brier {g.brier_raw:.3f} raw / {g.brier_calibrated or 0:.3f} calibrated "
            f"({kind} map){held}"
        )
        for title, buckets in (("the seed's buckets", g.seed_buckets), (f"{report.bins} bins", g.buckets)):
            lines.append(f"  {title}:")
            lines.append(
                f"    {'scores':<11} {'n':>7}  {'confidence':>9}  {'success':>7}  {'95% interval':<15}  calibrated"
            )
            for b in buckets:
                if not b.count:
                    continue
                interval = f"{_pct(b.success_low)}-{_pct(b.success_high)}"
                lines.append(
                    f"    {b.low:>5g}-{b.high:<5g} {b.count:>7}  {b.mean_confidence:>9.1%}  {_pct(b.success_rate):>7}  "
                    f"{interval:<15}  {_pct(b.mean_calibrated):>9}"
                )
        rec = g.recommendation
        current = f"now auto {g.current['auto']:g} / manual {g.current['manual']:g}; " if g.current else ""
        if rec.auto is None:
            lines.append(f"  recommendation: {current}{rec.reason}")
        else:
            lines.append(f"  recommendation: {current}T_auto {rec.auto:g}, T_manual {rec.manual:g}: {rec.reason}")
    return "\n".join(lines)


# -- signoff policy simulate -----------------------------------------------------------------------


def simulate(args: argparse.Namespace) -> int:
    """Replay past checkpoints under a candidate policy."""
    return _run(args, _simulate)


def _simulate(args: argparse.Namespace) -> int:
    from signoff.tools.simulate import render, replay

    candidate = load_policy(args.file)
    past = _past(args)
    result = replay(past, candidate)
    if args.json:
        print(json.dumps({"past": len(past), **result.as_json()}, indent=2))
    else:
        print(render(result, len(past)))
    return EXIT_OK


# -- signoff policy shadow-report -----------------------------------------------------------------


def shadow(args: argparse.Namespace) -> int:
    """Compare the shadow policy's recorded would-be gates with the gates that acted."""
    return _run(args, _shadow)


def _shadow(args: argparse.Namespace) -> int:
    from signoff.tools.simulate import render, shadow_report

    past = _past(args)
    reports = shadow_report(past)
    if args.json:
        print(json.dumps({"past": len(past), "shadows": {v: r.as_json() for v, r in reports.items()}}, indent=2))
        return EXIT_OK
    if not reports:
        print(f"no shadow verdicts among {len(past)} checkpoints (is a shadow policy deployed? SIGNOFF_SHADOW_POLICY)")
    for result in reports.values():
        print(render(result, len(past), shadow=True))
    return EXIT_OK


# -- the parsers ---------------------------------------------------------------------------------


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a day (YYYY-MM-DD)") from None


def _fraction(text: str) -> float:
    try:
        value = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a fraction (0.01) or a percentage (1%)") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 1 (or 0% and 100%)")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _add_source(parser: argparse.ArgumentParser, default_archive: str) -> None:
    parser.add_argument(
        "--archive",
        default=os.environ.get("SIGNOFF_ARCHIVE") or default_archive,
        help=f"the archive: a folder holding audit/dt=…, or s3://bucket/prefix (default: {default_archive})",
    )
    parser.add_argument("--url", help="read every checkpoint's trail from the API instead of the archive")
    parser.add_argument(
        "--sign",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with --url: sign with SigV4 (default: on, except for 127.0.0.1/localhost)",
    )
    parser.add_argument("--from", dest="since", type=_day, metavar="YYYY-MM-DD", help="first day requested")
    parser.add_argument("--to", dest="until", type=_day, metavar="YYYY-MM-DD", help="last day requested")
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_calibrate(commands: Any, default_archive: str) -> None:
    cal = commands.add_parser(
        "calibrate",
        help="reliability, ECE, a calibration map and recommended thresholds from reported outcomes",
        usage_exit=EXIT_ERROR,
        description="Never changes a policy: prints a proposal as a diff. Exit codes: 0 ok, 1 invalid policy, 3 error.",
    )
    _add_source(cal, default_archive)
    cal.add_argument("--synthetic", type=_positive, metavar="N", help="use N synthetic outcomes with a known truth")
    cal.add_argument("--seed", type=int, default=1, help="with --synthetic: the random seed (1)")
    cal.add_argument("--policy", type=Path, help="the current policy YAML: compare and print a proposed diff")
    cal.add_argument("--tolerance", type=_fraction, default=0.01, help="failures allowed in the auto band (1%%)")
    cal.add_argument("--soft-tolerance", type=_fraction, default=0.05, help="failures allowed in the soft band (5%%)")
    cal.add_argument("--confidence", type=_fraction, default=0.975, help="one-sided confidence of the bounds (0.975)")
    cal.add_argument("--bins", type=_positive, default=10, help="equal-width bins of the reliability table (10)")
    cal.add_argument("--min-outcomes", type=_positive, help="fewest outcomes per class before recommending")
    cal.add_argument(
        "--with-map",
        action="store_true",
        help="propose the fitted map in the policy, with thresholds for the calibrated score",
    )
    cal.add_argument("--map-version", default="1.0.0", help="semver of a written calibration map (1.0.0)")
    cal.add_argument("--write-map", type=Path, metavar="FILE", help="write the fitted calibration map (YAML)")
    cal.set_defaults(run=calibrate)


def add_simulate(policy_commands: Any, default_archive: str) -> None:
    sim = policy_commands.add_parser(
        "simulate",
        help="replay past checkpoints under a candidate policy: which gates would change",
        description="Exit codes: 0 ok, 1 invalid candidate policy, 3 error.",
    )
    sim.add_argument("file", type=Path, metavar="NEW.yaml", help="the candidate policy")
    _add_source(sim, default_archive)
    sim.set_defaults(run=simulate)
    report = policy_commands.add_parser(
        "shadow-report",
        help="compare a shadow policy's would-be gates with the gates that acted, over a period",
        description="Exit codes: 0 ok, 3 error.",
    )
    _add_source(report, default_archive)
    report.set_defaults(run=shadow)

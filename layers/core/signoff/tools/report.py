"""`signoff report`: one self-contained HTML page about a period, from the audit archive.

Charts are inline SVG (no JavaScript, no fonts or styles fetched from anywhere), so the page opens
offline, prints, and survives being attached to an audit ticket. The page, charts included, is drawn
by one Jinja2 template (`templates/report.html.j2`) with autoescaping on: every piece of text that
came from the archive (requesters' summaries, approvers' comments, chat handles, environment names
on the charts' axes) is escaped, because the archive holds what callers sent and a report must
never run it. Nothing here marks text safe: this module hands the template numbers and plain text,
never markup.

The figures are the named SLI queries (`audit/queries/*.sql`, the Athena ones) plus a few local
queries for the charts, all over the checkpoints requested in the period.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import jinja2

from signoff.tools.queries import Query, Row, as_dicts, cell, list_queries, open_archive, run_query

STATUSES = ("APPROVED", "DENIED", "EXPIRED", "CANCELLED")
STATUS_COLORS = {"APPROVED": "#2e7d32", "DENIED": "#c62828", "EXPIRED": "#ef6c00", "CANCELLED": "#78909c"}
GATES = ("auto", "soft", "hard")
# Latency bins (seconds, upper bounds): finer where the 15-minute production target sits.
LATENCY_BINS: tuple[tuple[float, str], ...] = (
    (60, "<1m"),
    (300, "1-5m"),
    (600, "5-10m"),
    (900, "10-15m"),
    (1800, "15-30m"),
    (2700, "30-45m"),
    (3600, "45-60m"),
    (5400, "60-90m"),
    (math.inf, "90m+"),
)
LATENCY_TARGET_SECONDS = 900

_LATENCIES = """
SELECT latency_seconds FROM audit_events
WHERE type = 'decided' AND gate <> 'auto' AND latency_seconds IS NOT NULL
"""
_DECISIONS = "SELECT gate, environment, status FROM audit_events WHERE type IN ('decided', 'cancelled')"
_RELIABILITY = """
SELECT d.score, o.outcome
FROM audit_events d
JOIN audit_events o ON o.checkpoint_id = d.checkpoint_id AND o.type = 'outcome_reported'
WHERE d.type = 'decided' AND d.status = 'APPROVED' AND d.score IS NOT NULL
"""
_ATTENTION = """
WITH requested AS (
  SELECT checkpoint_id, environment, service, requester,
         json_extract_scalar(data, '$.request.summary') AS summary
  FROM audit_events WHERE type = 'requested'
),
approved AS (
  SELECT checkpoint_id, gate, score, decided_by FROM audit_events WHERE type = 'decided' AND status = 'APPROVED'
)
SELECT o."at" AS reported_at, o.checkpoint_id, r.environment, r.service, a.gate, a.score, r.requester,
       r.summary, a.decided_by AS approved_by, o.outcome, json_extract_scalar(o.data, '$.details') AS details
FROM audit_events o
JOIN approved a ON a.checkpoint_id = o.checkpoint_id
LEFT JOIN requested r ON r.checkpoint_id = o.checkpoint_id
WHERE o.type = 'outcome_reported' AND o.outcome <> 'success'
ORDER BY o."at", o.checkpoint_id
"""


# -- what the page shows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    """One score decile of approved actions with a reported outcome."""

    low: int  # scores in [low, low + 10); the last decile includes 100
    count: int
    mean_score: float
    successes: int

    @property
    def success_rate(self) -> float:
        return self.successes / self.count


@dataclass(frozen=True)
class SliResult:
    query: Query
    columns: list[str]
    rows: list[Row]


@dataclass
class ReportData:
    since: dt.date
    until: dt.date
    source: str
    generated_at: dt.datetime
    latencies: list[float] = field(default_factory=list)  # human gates only
    decisions: list[tuple[str, str, str]] = field(default_factory=list)  # gate, environment, status
    reliability: list[Bucket] = field(default_factory=list)
    attention: list[dict[str, Any]] = field(default_factory=list)
    slis: list[SliResult] = field(default_factory=list)
    calibration: Any = None  # a tools.calibrate.CalibrationReport, when numpy and scikit-learn are installed

    def sli(self, name: str) -> list[dict[str, Any]]:
        found = next((s for s in self.slis if s.query.name == name), None)
        return as_dicts(found.columns, found.rows) if found else []


def reliability_buckets(pairs: Sequence[tuple[float, str]]) -> list[Bucket]:
    """Score deciles of (score, outcome) pairs: how often each decile's actions went well."""
    groups: dict[int, list[tuple[float, str]]] = {}
    for score, outcome in pairs:
        low = min(int(score // 10) * 10, 90)
        groups.setdefault(low, []).append((score, outcome))
    return [
        Bucket(
            low=low,
            count=len(items),
            mean_score=sum(s for s, _ in items) / len(items),
            successes=sum(1 for _, o in items if o == "success"),
        )
        for low, items in sorted(groups.items())
    ]


def latency_histogram(latencies: Sequence[float]) -> list[int]:
    counts = [0] * len(LATENCY_BINS)
    for value in latencies:
        counts[next(i for i, (upper, _) in enumerate(LATENCY_BINS) if value < upper)] += 1
    return counts


def nearest_rank(values: Sequence[float], p: float) -> float | None:
    """The percentile the SLI queries report on DuckDB (quantile_disc: nearest rank)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(len(ordered) * p) - 1, 0)]


def sli_order(query: Query) -> tuple[int, str]:
    """The seed's order (M1 latency, M2 approval rate, …) where a title names its SLI, then the rest."""
    match = re.search(r"\(M(\d+)\)", query.title)
    return (int(match.group(1)) if match else 1000, query.name)


def _rows(conn: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    columns, rows = run_query(conn, sql)
    return as_dicts(columns, rows)


def collect(
    conn: duckdb.DuckDBPyConnection,
    *,
    since: dt.date,
    until: dt.date,
    source: str,
    now: dt.datetime | None = None,
    queries: Sequence[Query] | None = None,
) -> ReportData:
    """Everything the page shows, from a connection already restricted to the period."""
    data = ReportData(since=since, until=until, source=source, generated_at=now or dt.datetime.now(dt.UTC))
    data.latencies = [float(r["latency_seconds"]) for r in _rows(conn, _LATENCIES)]
    data.decisions = [(str(r["gate"]), str(r["environment"]), str(r["status"])) for r in _rows(conn, _DECISIONS)]
    pairs = [(float(r["score"]), str(r["outcome"])) for r in _rows(conn, _RELIABILITY)]
    data.reliability = reliability_buckets(pairs)
    data.attention = _rows(conn, _ATTENTION)
    data.calibration = _calibration(conn, source)
    for query in sorted(queries if queries is not None else list_queries(), key=sli_order):
        columns, rows = run_query(conn, query.sql)
        data.slis.append(SliResult(query, columns, rows))
    return data


def _calibration(conn: duckdb.DuckDBPyConnection, source: str) -> Any:
    """Reliability per risk class and the recommendation (`signoff calibrate`'s defaults)."""
    try:
        from signoff.tools.calibrate import analyse
    except ImportError:  # the tools extra is optional for the report
        return None
    from signoff.tools.trail import past_in

    outcomes = [o for p in past_in(conn) if (o := p.as_outcome()) is not None]
    return analyse(outcomes, source=source) if outcomes else None


def write_report(
    archive: str | Path,
    since: dt.date,
    until: dt.date,
    output: Path,
    *,
    now: dt.datetime | None = None,
) -> ReportData:
    """Build the page for the checkpoints requested from since to until (UTC days) and write it."""
    conn = open_archive(archive, since=since, until=until)
    try:
        data = collect(conn, since=since, until=until, source=str(archive), now=now)
    finally:
        conn.close()
    output.write_text(render_html(data), encoding="utf-8")
    return data


# -- charts: shapes the template draws ------------------------------------------------------------
# A chart is data (coordinates and plain text), not markup: the template writes each shape, so a
# label goes through the same autoescaping as the rest of the page.


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    cls: str
    title: str = ""
    kind: ClassVar[str] = "line"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str = ""
    kind: ClassVar[str] = "rect"


@dataclass(frozen=True)
class Circle:
    cx: float
    cy: float
    r: float
    cls: str
    title: str = ""
    kind: ClassVar[str] = "circle"


@dataclass(frozen=True)
class Polyline:
    points: tuple[tuple[float, float], ...]
    cls: str
    kind: ClassVar[str] = "polyline"


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    cls: str = "label"
    rotated: bool = False  # turned a quarter anticlockwise about (x, y): a vertical axis label
    kind: ClassVar[str] = "text"


Shape = Line | Rect | Circle | Polyline | Text


@dataclass(frozen=True)
class Chart:
    """One inline SVG: role=img with a <title> and <desc>, so screen readers and tooltips name it."""

    id: str
    title: str
    desc: str
    width: int
    height: int
    shapes: list[Shape]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float, ticks: int = 4) -> float:
    """The axis maximum: `ticks` steps of 1, 2, 2.5 or 5 times a power of ten (whole numbers), so
    every gridline has a round label."""
    step = max(value / ticks, 1)
    power = 10 ** math.floor(math.log10(step))
    steps = (m * power for m in (1, 2, 2.5, 5, 10) if float(m * power).is_integer())
    return float(ticks * next(s for s in steps if s >= step))


@dataclass(frozen=True)
class Panel:
    """A region of an SVG holding one bar chart."""

    x: float
    y: float
    width: float
    height: float
    title: str = ""


def stacked_bars(
    panel: Panel,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float], str]],
    *,
    y_label: str = "",
    marker_after: int | None = None,
    marker_label: str = "",
) -> list[Shape]:
    """Bars per category, each stacked from the series (name, values, colour), with a y axis,
    gridlines, the total above each bar and an optional vertical marker after one category."""
    left, bottom, top = 40.0, 34.0, 22.0 if panel.title else 8.0
    x0, y0 = panel.x + left, panel.y + top
    width, height = panel.width - left - 8, panel.height - top - bottom
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(categories))]
    ymax = nice_ceiling(max(totals, default=0))
    out: list[Shape] = []
    if panel.title:
        out.append(Text(panel.x + panel.width / 2, panel.y + 14, panel.title, cls="panel-title"))
    for step in range(5):
        y = y0 + height - height * step / 4
        out.append(Line(x0, y, x0 + width, y, "grid"))
        out.append(Text(x0 - 6, y + 4, _num(ymax * step / 4), anchor="end", cls="tick"))
    if y_label:
        out.append(Text(panel.x + 10, y0 + height / 2, y_label, cls="axis", rotated=True))
    band = width / max(len(categories), 1)
    bar = band * 0.68
    for i, category in enumerate(categories):
        x = x0 + band * i + (band - bar) / 2
        base = y0 + height
        for name, values, color in series:
            value = values[i]
            if value <= 0:
                continue
            h = height * value / ymax
            base -= h
            out.append(Rect(x, base, bar, h, color, f"{category}: {name} {_num(value)}"))
        if totals[i]:
            out.append(Text(x + bar / 2, base - 4, _num(totals[i]), cls="value"))
        out.append(Text(x + bar / 2, y0 + height + 16, category, cls="tick"))
    if marker_after is not None and categories:
        mx = x0 + band * (marker_after + 1)
        out.append(Line(mx, y0, mx, y0 + height, "target"))
        out.append(Text(mx + 4, y0 + 10, marker_label, anchor="start", cls="target-label"))
    out.append(Line(x0, y0 + height, x0 + width, y0 + height, "axis-line"))
    return out


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[Shape]:
    out: list[Shape] = []
    for name, color in items:
        out.append(Rect(x, y - 9, 10, 10, color))
        out.append(Text(x + 14, y, name, anchor="start", cls="tick"))
        x += 24 + 7 * len(name)
    return out


def latency_chart(latencies: Sequence[float]) -> Chart:
    counts = latency_histogram(latencies)
    width, height = 560, 300
    target_index = next(i for i, (upper, _) in enumerate(LATENCY_BINS) if upper >= LATENCY_TARGET_SECONDS)
    shapes = stacked_bars(
        Panel(0, 0, width, height),
        [label for _, label in LATENCY_BINS],
        [("decisions", counts, "#1565c0")],
        y_label="decisions",
        marker_after=target_index,
        marker_label="15 min target",
    )
    desc = f"{len(latencies)} human-gate decisions by time from request to decision; target 15 minutes."
    return Chart("latency-histogram", "Approval latency histogram", desc, width, height, shapes)


def decisions_chart(decisions: Sequence[tuple[str, str, str]]) -> Chart:
    """Decisions by gate and by environment, each bar stacked by how it ended."""
    width, height = 560, 300
    counts = Counter(decisions)
    gates = [g for g in GATES if any(d[0] == g for d in decisions)] or list(GATES)
    gates += sorted({d[0] for d in decisions} - set(gates))
    environments = sorted({d[1] for d in decisions}) or ["-"]

    def series(key: int, categories: Sequence[str]) -> list[tuple[str, list[float], str]]:
        return [
            (
                status.lower(),
                [
                    float(sum(n for (g, e, s), n in counts.items() if (g, e)[key] == c and s == status))
                    for c in categories
                ],
                STATUS_COLORS[status],
            )
            for status in STATUSES
        ]

    half = width / 2
    shapes = _legend(44, 16, [(s.lower(), STATUS_COLORS[s]) for s in STATUSES])
    shapes += stacked_bars(Panel(0, 24, half, height - 24, "by gate"), gates, series(0, gates), y_label="decisions")
    shapes += stacked_bars(Panel(half, 24, half, height - 24, "by environment"), environments, series(1, environments))
    desc = f"{len(decisions)} decisions, by gate and by environment, stacked by status."
    return Chart("decisions-by-gate", "Decisions by gate and environment", desc, width, height, shapes)


def reliability_chart(buckets: Sequence[Bucket]) -> Chart:
    """Predicted (confidence score / 100) against observed success rate, per score decile; a
    well-calibrated score sits on the diagonal. Dot area grows with the decile's actions."""
    width, height = 400, 380
    left, top, size = 56.0, 30.0, 300.0

    def px(v: float) -> float:
        return left + size * v

    def py(v: float) -> float:
        return top + size * (1 - v)

    shapes: list[Shape] = []
    for step in range(6):
        v = step / 5
        shapes.append(Line(px(0), py(v), px(1), py(v), "grid"))
        shapes.append(Line(px(v), py(0), px(v), py(1), "grid"))
        shapes.append(Text(px(0) - 6, py(v) + 4, f"{v:.1f}", anchor="end", cls="tick"))
        shapes.append(Text(px(v), py(0) + 16, f"{v:.1f}", cls="tick"))
    shapes.append(Line(px(0), py(0), px(1), py(1), "diagonal", "perfect calibration"))
    points = [(px(b.mean_score / 100), py(b.success_rate), b) for b in buckets]
    if len(points) > 1:
        shapes.append(Polyline(tuple((x, y) for x, y, _ in points), "calibration"))
    most = max((b.count for b in buckets), default=1)
    for x, y, b in points:
        r = 4 + 8 * math.sqrt(b.count / most)
        tip = (
            f"scores {b.low}-{b.low + 10}: {b.count} actions, mean score {b.mean_score:.1f}, "
            f"{b.successes} succeeded ({b.success_rate:.0%})"
        )
        shapes.append(Circle(x, y, r, "bucket", tip))
        shapes.append(Text(x, y - r - 3, f"n={b.count}", cls="value"))
    shapes.append(Text(px(0.5), height - 14, "predicted: confidence score / 100", cls="axis"))
    shapes.append(Text(16, py(0.5), "observed success rate", cls="axis", rotated=True))
    if not buckets:
        shapes.append(Text(px(0.5), py(0.5), "no approved action with a reported outcome", cls="empty"))
    actions = sum(b.count for b in buckets)
    desc = f"{actions} approved actions with an outcome in {len(buckets)} score deciles against the diagonal."
    return Chart("reliability-diagram", "Confidence vs. outcome reliability diagram", desc, width, height, shapes)


CLASS_COLORS = {"low": "#2e7d32", "medium": "#ef6c00", "high": "#c62828"}  # the template's .cal-<class>


def calibration_chart(report: Any) -> Chart:
    """Per risk class: observed success by score decile (dots, Wilson interval as a bar) and the
    fitted calibration map (line); a dashed mark at the recommended T_auto."""
    width, height = 460, 380
    left, top, size = 56.0, 30.0, 300.0

    def px(v: float) -> float:
        return left + size * v

    def py(v: float) -> float:
        return top + size * (1 - v)

    shapes: list[Shape] = []
    for step in range(6):
        v = step / 5
        shapes.append(Line(px(0), py(v), px(1), py(v), "grid"))
        shapes.append(Text(px(0) - 6, py(v) + 4, f"{v:.1f}", anchor="end", cls="tick"))
        shapes.append(Text(px(v), py(0) + 16, f"{100 * v:.0f}", cls="tick"))
    shapes.append(Line(px(0), py(0), px(1), py(1), "diagonal", "raw score taken at its word"))
    legend: list[tuple[str, str]] = []
    for g in report.groups:
        if g.group not in CLASS_COLORS:
            continue  # helpdesk classes: their own figures are in the table
        cls = f"cal-{g.group}"
        legend.append((g.group, CLASS_COLORS[g.group]))
        if g.curve is not None:
            curve = tuple((px(s / 100), py(g.curve.probability(s))) for s in range(0, 101, 2))
            shapes.append(Polyline(curve, f"calmap {cls}"))
        for b in g.buckets:
            if not b.count or b.success_rate is None:
                continue
            x = px(b.mean_confidence)
            shapes.append(Line(x, py(b.success_low or 0), x, py(b.success_high or 0), f"interval {cls}"))
            tip = f"{g.group} {b.low:g}-{b.high:g}: {b.count} outcomes, {b.success_rate:.0%} succeeded"
            shapes.append(Circle(x, py(b.success_rate), 3.5, f"caldot {cls}", tip))
        if g.recommendation.auto is not None:
            x = px(g.recommendation.auto / 100)
            tip = f"{g.group}: recommended T_auto {g.recommendation.auto:g}"
            shapes.append(Line(x, py(0), x, py(1), f"threshold {cls}", tip))
    shapes += _legend(left, 14, legend)
    shapes.append(Text(px(0.5), height - 14, "raw confidence score", cls="axis"))
    shapes.append(Text(16, py(0.5), "observed success rate", cls="axis", rotated=True))
    desc = f"{sum(g.outcomes for g in report.groups)} outcomes by risk class, with each class's fitted map."
    return Chart(
        "calibration-map", "Calibration map and recommended thresholds per risk class", desc, width, height, shapes
    )


def _thresholds(report: Any) -> Table:
    rows = []
    for g in report.groups:
        rec = g.recommendation
        held = g.held_out
        rows.append(
            [
                g.group,
                g.outcomes,
                round(g.ece_raw, 3),
                round(held[1], 3) if held else None,
                round(g.brier_raw, 3),
                g.curve.kind.value if g.curve else "-",
                rec.auto,
                rec.manual,
                rec.reason,
            ]
        )
    columns = ["class", "outcomes", "ECE raw", "ECE calibrated (held out)", "Brier raw", "map"]
    return _table([*columns, "T_auto", "T_manual", "why"], rows)


# -- the page ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """Cells as text, each with whether it is a number (right-aligned)."""

    columns: Sequence[str]
    rows: list[list[tuple[str, bool]]]


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    good: bool | None = None  # None: no judgement, no colour


@dataclass(frozen=True)
class Page:
    """Everything the template shows, as plain text and numbers."""

    data: ReportData
    period: str
    generated: str
    tiles: list[Tile]
    charts: tuple[Chart, Chart, Chart]  # latency, decisions, reliability
    buckets: Table
    calibration_chart: Chart | None
    thresholds: Table | None
    attention: Table
    slis: list[tuple[Query, Table]]


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    return Table(
        columns,
        [[(cell(v), isinstance(v, int | float) and not isinstance(v, bool)) for v in row] for row in rows],
    )


def _tiles(data: ReportData) -> list[Tile]:
    requests = sum(int(r["requests"]) for r in data.sli("traffic_per_day"))
    rates = data.sli("approval_rate")
    decided = sum(int(r["decisions"]) for r in rates)
    approved = sum(int(r["approved"]) for r in rates)
    stalled = data.sli("stalled_approvals")
    stalled_n = int(stalled[0]["stalled"]) if stalled else 0
    unauthorized = sum(int(r["attempts"]) for r in data.sli("unauthorized_attempts"))
    completeness = data.sli("audit_completeness")
    complete = completeness[0]["completeness_pct"] if completeness else None
    p95 = nearest_rank(data.latencies, 0.95)
    return [
        Tile("requests", str(requests)),
        Tile("decisions", str(decided)),
        Tile("approved", f"{100 * approved / decided:.1f} %" if decided else "-"),
        Tile("p95 latency, human gates", f"{p95 / 60:.1f} min" if p95 is not None else "-"),
        Tile("stalled", str(stalled_n), stalled_n == 0),
        Tile("unauthorized attempts", str(unauthorized), unauthorized == 0),
        Tile("audit completeness", f"{cell(complete)} %" if complete is not None else "-", complete in (None, 100)),
    ]


def _attention(data: ReportData) -> Table:
    columns = ["reported", "checkpoint", "environment", "gate", "score", "requester", "summary", "approved by"]
    columns += ["outcome", "details"]
    rows = [
        [
            str(r.get("reported_at") or "").replace("T", " ")[:16],
            r.get("checkpoint_id"),
            r.get("environment"),
            r.get("gate"),
            r.get("score"),
            r.get("requester"),
            r.get("summary"),
            r.get("approved_by"),
            str(r.get("outcome") or "").replace("_", " "),
            r.get("details"),
        ]
        for r in data.attention
    ]
    return _table(columns, rows)


def _buckets(buckets: Sequence[Bucket]) -> Table:
    rows = [
        [f"{b.low}-{b.low + 10}", b.count, round(b.mean_score, 1), b.successes, round(100 * b.success_rate, 1)]
        for b in buckets
    ]
    return _table(["scores", "actions", "mean score", "succeeded", "success %"], rows)


@cache
def _templates() -> jinja2.Environment:
    # Autoescaping on for every template, whatever its name: archive text reaches HTML and SVG
    # alike. StrictUndefined: a misspelt name fails the report instead of printing nothing.
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("signoff.tools", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["num"] = _num
    return environment


def render_html(data: ReportData) -> str:
    page = Page(
        data=data,
        period=f"{data.since.isoformat()} to {data.until.isoformat()}",
        generated=data.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        tiles=_tiles(data),
        charts=(latency_chart(data.latencies), decisions_chart(data.decisions), reliability_chart(data.reliability)),
        buckets=_buckets(data.reliability),
        calibration_chart=calibration_chart(data.calibration) if data.calibration else None,
        thresholds=_thresholds(data.calibration) if data.calibration else None,
        attention=_attention(data),
        slis=[(s.query, _table(s.columns, s.rows)) for s in data.slis],
    )
    return _templates().get_template("report.html.j2").render(page=page)

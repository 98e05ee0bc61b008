"""`signoff report`: one self-contained HTML page about a period, from the audit archive.

Charts are inline SVG drawn here (no JavaScript, no fonts or styles fetched from anywhere), so the
page opens offline, prints, and survives being attached to an audit ticket. Every piece of text that
came from the archive (requesters' summaries, approvers' comments, chat handles) is escaped: the
archive holds what callers sent, and a report must never run it.

The figures are the named SLI queries (`audit/queries/*.sql`, the Athena ones) plus a few local
queries for the charts, all over the checkpoints requested in the period.
"""

from __future__ import annotations

import datetime as dt
import html
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from signoff.tools.auditlog import Query, Row, as_dicts, cell, list_queries, open_archive, run_query

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
    for query in sorted(queries if queries is not None else list_queries(), key=sli_order):
        columns, rows = run_query(conn, query.sql)
        data.slis.append(SliResult(query, columns, rows))
    return data


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


# -- SVG ----------------------------------------------------------------------------------------------


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float, ticks: int = 4) -> float:
    """The axis maximum: `ticks` steps of 1, 2, 2.5 or 5 times a power of ten (whole numbers), so
    every gridline has a round label."""
    step = max(value / ticks, 1)
    power = 10 ** math.floor(math.log10(step))
    steps = (m * power for m in (1, 2, 2.5, 5, 10) if float(m * power).is_integer())
    return float(ticks * next(s for s in steps if s >= step))


def _svg(chart_id: str, title: str, desc: str, width: int, height: int, body: list[str]) -> str:
    # role=img with <title>/<desc>: screen readers and tooltips name the chart.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{esc(chart_id)}" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'aria-labelledby="{esc(chart_id)}-title {esc(chart_id)}-desc">'
        f'<title id="{esc(chart_id)}-title">{esc(title)}</title><desc id="{esc(chart_id)}-desc">{esc(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _text(x: float, y: float, text: str, *, anchor: str = "middle", cls: str = "label", extra: str = "") -> str:
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}" class="{cls}"{extra}>{esc(text)}</text>'


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
) -> list[str]:
    """Bars per category, each stacked from the series (name, values, colour), with a y axis,
    gridlines, the total above each bar and an optional vertical marker after one category."""
    left, bottom, top = 40.0, 34.0, 22.0 if panel.title else 8.0
    x0, y0 = panel.x + left, panel.y + top
    width, height = panel.width - left - 8, panel.height - top - bottom
    totals = [sum(values[i] for _, values, _ in series) for i in range(len(categories))]
    ymax = nice_ceiling(max(totals, default=0))
    out: list[str] = []
    if panel.title:
        out.append(_text(panel.x + panel.width / 2, panel.y + 14, panel.title, cls="panel-title"))
    for step in range(5):
        value = ymax * step / 4
        y = y0 + height - height * step / 4
        out.append(f'<line x1="{_num(x0)}" x2="{_num(x0 + width)}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>')
        out.append(_text(x0 - 6, y + 4, _num(value), anchor="end", cls="tick"))
    if y_label:
        out.append(
            _text(
                panel.x + 10,
                y0 + height / 2,
                y_label,
                cls="axis",
                extra=f' transform="rotate(-90 {_num(panel.x + 10)} {_num(y0 + height / 2)})"',
            )
        )
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
            out.append(
                f'<rect x="{_num(x)}" y="{_num(base)}" width="{_num(bar)}" height="{_num(h)}" fill="{esc(color)}">'
                f"<title>{esc(category)}: {esc(name)} {_num(value)}</title></rect>"
            )
        if totals[i]:
            out.append(_text(x + bar / 2, base - 4, _num(totals[i]), cls="value"))
        out.append(_text(x + bar / 2, y0 + height + 16, category, cls="tick"))
    if marker_after is not None and categories:
        mx = x0 + band * (marker_after + 1)
        out.append(f'<line x1="{_num(mx)}" x2="{_num(mx)}" y1="{_num(y0)}" y2="{_num(y0 + height)}" class="target"/>')
        out.append(_text(mx + 4, y0 + 10, marker_label, anchor="start", cls="target-label"))
    axis_y = _num(y0 + height)
    out.append(f'<line x1="{_num(x0)}" x2="{_num(x0 + width)}" y1="{axis_y}" y2="{axis_y}" class="axis-line"/>')
    return out


def _legend(x: float, y: float, items: Sequence[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    for name, color in items:
        out.append(f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10" fill="{esc(color)}"/>')
        out.append(_text(x + 14, y, name, anchor="start", cls="tick"))
        x += 24 + 7 * len(name)
    return out


def latency_chart(latencies: Sequence[float]) -> str:
    counts = latency_histogram(latencies)
    width, height = 560, 300
    panel = Panel(0, 0, width, height)
    target_index = next(i for i, (upper, _) in enumerate(LATENCY_BINS) if upper >= LATENCY_TARGET_SECONDS)
    body = stacked_bars(
        panel,
        [label for _, label in LATENCY_BINS],
        [("decisions", counts, "#1565c0")],
        y_label="decisions",
        marker_after=target_index,
        marker_label="15 min target",
    )
    desc = f"{len(latencies)} human-gate decisions by time from request to decision; target 15 minutes."
    return _svg("latency-histogram", "Approval latency histogram", desc, width, height, body)


def decisions_chart(decisions: Sequence[tuple[str, str, str]]) -> str:
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
    body = _legend(44, 16, [(s.lower(), STATUS_COLORS[s]) for s in STATUSES])
    body += stacked_bars(Panel(0, 24, half, height - 24, "by gate"), gates, series(0, gates), y_label="decisions")
    body += stacked_bars(Panel(half, 24, half, height - 24, "by environment"), environments, series(1, environments))
    desc = f"{len(decisions)} decisions, by gate and by environment, stacked by status."
    return _svg("decisions-by-gate", "Decisions by gate and environment", desc, width, height, body)


def reliability_chart(buckets: Sequence[Bucket]) -> str:
    """Predicted (confidence score / 100) against observed success rate, per score decile; a
    well-calibrated score sits on the diagonal. Dot area grows with the decile's actions."""
    width, height = 400, 380
    left, top, size = 56.0, 30.0, 300.0

    def px(v: float) -> float:
        return left + size * v

    def py(v: float) -> float:
        return top + size * (1 - v)

    body: list[str] = []
    for step in range(6):
        v = step / 5
        body.append(f'<line x1="{_num(px(0))}" x2="{_num(px(1))}" y1="{_num(py(v))}" y2="{_num(py(v))}" class="grid"/>')
        body.append(f'<line x1="{_num(px(v))}" x2="{_num(px(v))}" y1="{_num(py(0))}" y2="{_num(py(1))}" class="grid"/>')
        body.append(_text(px(0) - 6, py(v) + 4, f"{v:.1f}", anchor="end", cls="tick"))
        body.append(_text(px(v), py(0) + 16, f"{v:.1f}", cls="tick"))
    body.append(
        f'<line x1="{_num(px(0))}" y1="{_num(py(0))}" x2="{_num(px(1))}" y2="{_num(py(1))}" class="diagonal">'
        "<title>perfect calibration</title></line>"
    )
    points = [(px(b.mean_score / 100), py(b.success_rate), b) for b in buckets]
    if len(points) > 1:
        path = " ".join(f"{_num(x)},{_num(y)}" for x, y, _ in points)
        body.append(f'<polyline points="{path}" class="calibration"/>')
    most = max((b.count for b in buckets), default=1)
    for x, y, b in points:
        r = 4 + 8 * math.sqrt(b.count / most)
        tip = (
            f"scores {b.low}-{b.low + 10}: {b.count} actions, mean score {b.mean_score:.1f}, "
            f"{b.successes} succeeded ({b.success_rate:.0%})"
        )
        body.append(
            f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{_num(r)}" class="bucket"><title>{esc(tip)}</title></circle>'
        )
        body.append(_text(x, y - r - 3, f"n={b.count}", cls="value"))
    body.append(_text(px(0.5), height - 14, "predicted: confidence score / 100", cls="axis"))
    mid = py(0.5)
    body.append(_text(16, mid, "observed success rate", cls="axis", extra=f' transform="rotate(-90 16 {_num(mid)})"'))
    if not buckets:
        body.append(_text(px(0.5), py(0.5), "no approved action with a reported outcome", cls="empty"))
    actions = sum(b.count for b in buckets)
    desc = f"{actions} approved actions with an outcome in {len(buckets)} score deciles against the diagonal."
    return _svg("reliability-diagram", "Confidence vs. outcome reliability diagram", desc, width, height, body)


# -- HTML -------------------------------------------------------------------------------------------

_CSS = """
:root { color-scheme: light; --ink: #1f2933; --muted: #616e7c; --line: #d9e2ec; --bg: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 40px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; color: var(--muted); }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 0; }
.tiles {
  display: grid;
  grid-template-columns: repeat(auto-fit, minmax(150px, 1fr));
  gap: 12px;
  margin: 20px 0;
}
.tile { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.tile .v { font-size: 24px; font-weight: 600; }
.tile .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile.ok { border-left: 4px solid #2e7d32; } .tile.bad { border-left: 4px solid #c62828; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(440px, 1fr)); gap: 16px; }
.charts .wide { grid-column: 1 / -1; }
.side { display: flex; gap: 24px; align-items: flex-start; flex-wrap: wrap; }
.side > div { flex: 1; min-width: 280px; }
.scroll { overflow-x: auto; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 6px; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg .grid { stroke: #e4e7eb; stroke-width: 1; } svg .axis-line { stroke: #9aa5b1; }
svg .tick { font-size: 11px; fill: var(--muted); }
svg .value { font-size: 11px; fill: var(--ink); text-anchor: middle; }
svg .axis { font-size: 12px; fill: var(--muted); }
svg .panel-title { font-size: 12px; font-weight: 600; fill: var(--ink); }
svg .target { stroke: #c62828; stroke-dasharray: 4 3; stroke-width: 1.5; }
svg .target-label { font-size: 11px; fill: #c62828; }
svg .diagonal { stroke: #9aa5b1; stroke-dasharray: 5 4; }
svg .calibration { fill: none; stroke: #1565c0; stroke-width: 2; }
svg .bucket { fill: #1565c0; fill-opacity: .75; stroke: #fff; }
svg .empty { font-size: 13px; fill: var(--muted); text-anchor: middle; }
section.block {
  background: #fff;
  border: 1px solid var(--line);
  border-radius: 8px;
  padding: 14px 16px;
  margin-top: 16px;
}
.sli { padding: 12px 0; border-top: 1px solid var(--line); } .sli:first-of-type { border-top: 0; }
.sli p { margin: 4px 0 8px; color: var(--muted); } .target-text { color: var(--ink); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
td { overflow-wrap: anywhere; } td.n { white-space: nowrap; }
th { background: #f0f4f8; font-weight: 600; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.none { color: var(--muted); font-style: italic; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; }
@media print { body { background: #fff; }
main { padding: 0; }
figure, section.block, .tile { break-inside: avoid; }
"""


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    if not rows:
        return '<p class="none">no rows</p>'
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{esc(cell(v))}</td>'
            if isinstance(v, int | float) and not isinstance(v, bool)
            else f"<td>{esc(cell(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _tile(label: str, value: str, good: bool | None = None) -> str:
    state = "" if good is None else (" ok" if good else " bad")
    return f'<div class="tile{state}"><div class="k">{esc(label)}</div><div class="v">{esc(value)}</div></div>'


def _tiles(data: ReportData) -> str:
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
    tiles = [
        _tile("requests", str(requests)),
        _tile("decisions", str(decided)),
        _tile("approved", f"{100 * approved / decided:.1f} %" if decided else "-"),
        _tile("p95 latency, human gates", f"{p95 / 60:.1f} min" if p95 is not None else "-"),
        _tile("stalled", str(stalled_n), stalled_n == 0),
        _tile("unauthorized attempts", str(unauthorized), unauthorized == 0),
        _tile("audit completeness", f"{cell(complete)} %" if complete is not None else "-", complete in (None, 100)),
    ]
    return '<section class="tiles">' + "".join(tiles) + "</section>"


def _sli_section(data: ReportData) -> str:
    parts = []
    for result in data.slis:
        q = result.query
        target = f' <span class="target-text">Target: {esc(q.target)}</span>' if q.target else ""
        parts.append(
            f'<div class="sli" id="sli-{esc(q.name)}"><h3>{esc(q.title)} <code>{esc(q.name)}</code></h3>'
            f"<p>{esc(q.description)}{target}</p>{_table(result.columns, result.rows)}</div>"
        )
    return '<section class="block" id="slis"><h2>Service level indicators</h2>' + "".join(parts) + "</section>"


def _attention_section(data: ReportData) -> str:
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
    return (
        '<section class="block" id="attention"><h2>Approved actions that failed or were rolled back</h2>'
        + _table(columns, rows)
        + "</section>"
    )


def _buckets_table(buckets: Sequence[Bucket]) -> str:
    rows = [
        [f"{b.low}-{b.low + 10}", b.count, round(b.mean_score, 1), b.successes, round(100 * b.success_rate, 1)]
        for b in buckets
    ]
    return _table(["scores", "actions", "mean score", "succeeded", "success %"], rows)


def render_html(data: ReportData) -> str:
    period = f"{data.since.isoformat()} to {data.until.isoformat()}"
    human = len(data.latencies)
    outcomes = sum(b.count for b in data.reliability)
    latency = (
        f"{human} decisions on soft and hard gates (auto gates decide at once and are left out). "
        "Time from request to decision; timeouts included."
    )
    reliability = (
        f"{outcomes} approved actions with a reported outcome, by score decile: mean score against the share that "
        "succeeded. Below the diagonal the score promised more than happened (over-confident)."
    )
    figures = (
        f"<figure><h2>Approval latency</h2>{latency_chart(data.latencies)}<figcaption>{esc(latency)}</figcaption>"
        f"</figure><figure><h2>Decisions by gate and environment</h2>{decisions_chart(data.decisions)}"
        f"<figcaption>{len(data.decisions)} decisions, stacked by how they ended.</figcaption></figure>"
        '<figure class="wide"><h2>Is the confidence score calibrated?</h2><div class="side">'
        f"{reliability_chart(data.reliability)}<div>{_buckets_table(data.reliability)}"
        f"<figcaption>{esc(reliability)}</figcaption></div></div></figure>"
    )
    generated = data.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Signoff audit report {esc(period)}</title><style>{_CSS}</style></head><body><main>"
        f"<header><h1>Signoff audit report</h1><p>Checkpoints requested {esc(period)} (UTC days), "
        f"with everything that happened to them · archive <code>{esc(data.source)}</code> · "
        f"generated {esc(generated)}</p>"
        f'</header>{_tiles(data)}<section class="charts">{figures}</section>'
        f"{_attention_section(data)}{_sli_section(data)}"
        "<footer>Figures from the audit archive: the SLI queries are audit/queries/*.sql, the same text Athena runs "
        "as named queries, run here on DuckDB (percentiles exact here, approximate on Athena).</footer>"
        "</main></body></html>\n"
    )

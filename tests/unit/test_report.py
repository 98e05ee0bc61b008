"""`signoff report`: one self-contained HTML page from the archive: three inline SVG charts with
titles, the SLI tables, and nothing from the archive left unescaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from signoff.audit.events import EventType
from signoff.tools import queries, report
from tests.auditdata import SCRIPT_REQUESTER, SCRIPT_SUMMARY, AuditData, build_audit_data

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SVG_NS = "{http://www.w3.org/2000/svg}"
CHART_TITLES = [
    "Approval latency histogram",
    "Decisions by gate and environment",
    "Confidence vs. outcome reliability diagram",
    "Calibration map and recommended thresholds per risk class",
]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> AuditData:
    return build_audit_data(tmp_path_factory.mktemp("archive"))


@pytest.fixture(scope="module")
def written(data: AuditData, tmp_path_factory: pytest.TempPathFactory) -> tuple[report.ReportData, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = report.write_report(
        data.root, date.fromisoformat(data.first_day), date.fromisoformat(data.last_day), out, now=NOW
    )
    return result, out.read_text(encoding="utf-8")


def svgs(page: str) -> list[ET.Element]:
    """Every inline SVG, parsed as XML: proves each is well-formed (so escaped) on its own."""
    return [ET.fromstring(svg) for svg in re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: Counter[str] = Counter()
        self.ids: set[str] = set()
        self.texts: list[str] = []  # what a reader sees, character references decoded

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.ids |= {value for name, value in attrs if name == "id" and value}

    def handle_data(self, data: str) -> None:
        self.texts.append(data)


def tags(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


# -- the page ------------------------------------------------------------------------------------


def test_the_page_has_the_three_charts_as_titled_svgs(written: tuple[report.ReportData, str]) -> None:
    _, page = written
    charts = svgs(page)
    assert [svg.findtext(f"{SVG_NS}title") for svg in charts] == CHART_TITLES
    for svg in charts:
        assert svg.get("role") == "img" and svg.findtext(f"{SVG_NS}desc")
    latency, decisions, reliability, calibration = charts
    assert latency.findall(f".//{SVG_NS}rect") and decisions.findall(f".//{SVG_NS}rect")
    assert (
        reliability.findall(f".//{SVG_NS}circle")
        and reliability.find(f".//{SVG_NS}line[@class='diagonal']") is not None
    )
    # One fitted map per risk class with outcomes, and its buckets (the archive is too small to
    # recommend anything: the table says how many more outcomes each class needs).
    result, _ = written
    assert result.calibration is not None
    classes = {g.group for g in result.calibration.groups}
    maps = [p.get("class") for p in calibration.findall(f".//{SVG_NS}polyline")]
    assert sorted(maps) == sorted(f"calmap cal-{c}" for c in classes)
    assert calibration.findall(f".//{SVG_NS}circle")
    assert "more)" in page and 'id="thresholds"' in page


def test_the_page_has_the_sli_table_of_every_named_query(written: tuple[report.ReportData, str]) -> None:
    result, page = written
    found = tags(page)
    names = {q.name for q in queries.list_queries()}
    assert {f"sli-{name}" for name in names} <= found.ids
    # An SLI with no rows (the helpdesk's, on an archive of checkpoints only) says "no rows" instead.
    assert found.tags["table"] >= sum(1 for s in result.slis if s.rows)
    assert len(result.slis) == len(names)
    # In the seed's order: M1 latency first, then M2 approval rate, M3 stalled, ...
    assert [s.query.name for s in result.slis][:3] == ["approval_latency", "approval_rate", "stalled_approvals"]
    for s in result.slis:
        assert s.query.title in page.replace("&#x27;", "'")


def test_archive_text_is_escaped_everywhere(written: tuple[report.ReportData, str]) -> None:
    _, page = written
    # A requester's summary with a script and markup, and a requester id with an <img onerror>.
    assert "<script" not in page.lower()
    assert "<img" not in page.lower() and "<b>" not in page
    assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;@example.com" in page
    assert SCRIPT_SUMMARY not in page and SCRIPT_REQUESTER not in page
    tag_counts = tags(page).tags
    assert tag_counts["script"] == 0 and tag_counts["img"] == 0 and tag_counts["link"] == 0


def test_hostile_archive_text_is_shown_as_text_and_never_runs() -> None:
    # Given archive text that would run if written raw: a script, markup that closes an attribute
    # and opens an <img>, and a Jinja expression (the page is rendered by a Jinja2 template)
    script = "<script>alert(document.cookie)</script>"
    attribute = '"><img src=x onerror=alert(1)>'
    expression = "{{ 7*7 }}"
    query = queries.Query("top_approvers", "Top approvers", "Who decides.", None, "SELECT 1", Path("top.sql"))
    data = report.ReportData(
        since=date(2026, 11, 1),
        until=date(2026, 11, 30),
        source="local-data/archive",
        generated_at=NOW,
        # an environment name is a label on the decisions chart's axis and in its bars' tooltips
        decisions=[("hard", attribute, "APPROVED"), ("soft", expression, "DENIED")],
        attention=[
            {
                "checkpoint_id": "cp_1",
                "environment": attribute,
                "summary": script,
                "requester": attribute,
                "approved_by": script,
                "outcome": "failure",
                "details": expression,
            },
        ],
        slis=[report.SliResult(query, ["approver", "decisions"], [(script, 3), (expression, 2)])],
    )

    # When the page is rendered
    page = report.render_html(data)

    # Then nothing of it is markup: no script, no img, every chart still well-formed XML
    found = tags(page)
    assert found.tags["script"] == 0 and found.tags["img"] == 0
    assert script not in page and attribute not in page and "onerror=alert(1)>" not in page
    labels = {text for svg in svgs(page) for text in svg.itertext()}
    assert {attribute, expression} <= labels
    # and a reader sees each text exactly as it was archived (escaped, then decoded back)
    assert {script, attribute, expression} <= {text.strip() for text in found.texts}
    # and the expression is not evaluated: it is data, never template source
    assert f"<td>{expression}</td>" in page and "<td>49</td>" not in page


def test_the_page_is_self_contained(written: tuple[report.ReportData, str]) -> None:
    _, page = written
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg"}  # the SVG namespace names, it is never fetched
    assert "@import" not in page and "src=" not in page.replace("src=x", "")


def test_the_failed_and_rolled_back_actions_are_listed(data: AuditData, written: tuple[report.ReportData, str]) -> None:
    result, _ = written
    bad = {
        e.checkpoint_id: e.data["outcome"]
        for e in data.events
        if e.type is EventType.OUTCOME_REPORTED and e.data["outcome"] != "success"
    }
    assert {r["checkpoint_id"]: r["outcome"] for r in result.attention} == bad
    assert any(r["summary"] == SCRIPT_SUMMARY for r in result.attention)


# -- the figures behind the charts -----------------------------------------------------------------


def test_the_charts_figures_come_from_the_events(data: AuditData, written: tuple[report.ReportData, str]) -> None:
    result, _ = written
    decisions = [e for e in data.events if e.type in (EventType.DECIDED, EventType.CANCELLED)]
    assert Counter(result.decisions) == Counter(
        (e.data["gate"], e.data["environment"], e.data["status"]) for e in decisions
    )
    human = [e.data["latency_seconds"] for e in decisions if e.type is EventType.DECIDED and e.data["gate"] != "auto"]
    assert sorted(result.latencies) == sorted(human)
    scores = {e.checkpoint_id: e.data["score"] for e in decisions if e.data["status"] == "APPROVED"}
    outcomes = [
        (scores[e.checkpoint_id], e.data["outcome"]) for e in data.events if e.type is EventType.OUTCOME_REPORTED
    ]
    assert result.reliability == report.reliability_buckets(outcomes)
    assert sum(b.count for b in result.reliability) == len(outcomes)


def test_latency_bins_and_their_edges() -> None:
    counts = report.latency_histogram([0, 59.9, 60, 899, 900, 1799, 5400, 86400])
    assert dict(zip([label for _, label in report.LATENCY_BINS], counts, strict=True)) == {
        "<1m": 2,
        "1-5m": 1,
        "5-10m": 0,
        "10-15m": 1,
        "15-30m": 2,
        "30-45m": 0,
        "45-60m": 0,
        "60-90m": 0,
        "90m+": 2,
    }


def test_reliability_buckets_are_score_deciles_with_100_in_the_last() -> None:
    buckets = report.reliability_buckets(
        [(35.0, "success"), (38.0, "failure"), (91.0, "success"), (100.0, "success"), (95.0, "rolled_back")]
    )
    assert [(b.low, b.count, b.successes) for b in buckets] == [(30, 2, 1), (90, 3, 2)]
    assert buckets[0].mean_score == 36.5 and buckets[1].success_rate == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 4), (3, 4), (7, 8), (18, 20), (29, 40), (130, 200), (900, 1000), (1001, 2000)]
)
def test_axis_maxima_give_round_gridlines(value: float, ceiling: float) -> None:
    assert report.nice_ceiling(value) == ceiling


def test_an_empty_archive_makes_a_page_that_says_so(tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    result = report.write_report(tmp_path, date(2026, 1, 1), date(2026, 1, 31), out, now=NOW)
    page = out.read_text(encoding="utf-8")
    # No outcomes, no calibration section.
    assert [svg.findtext(f"{SVG_NS}title") for svg in svgs(page)] == CHART_TITLES[:3]
    assert result.calibration is None and 'id="thresholds"' not in page
    assert "no approved action with a reported outcome" in page and "no rows" in page
    assert result.decisions == [] and result.latencies == []


def test_a_period_covers_only_the_checkpoints_requested_in_it(data: AuditData, tmp_path: Path) -> None:
    day = date.fromisoformat(data.last_day)  # the checkpoints asked minutes ago, still waiting
    asked = {e.checkpoint_id for e in data.events if e.type is EventType.REQUESTED and e.at.date() == day}
    result = report.write_report(data.root, day, day, tmp_path / "day.html", now=NOW)
    [traffic] = result.sli("traffic_per_day")
    assert (traffic["day"], traffic["requests"]) == (data.last_day, len(asked))
    decided = {e.checkpoint_id for e in data.events if e.type in (EventType.DECIDED, EventType.CANCELLED)}
    assert result.sli("stalled_approvals")[0]["pending"] == len(asked - decided) > 0
    assert len(result.decisions) == len(asked & decided)

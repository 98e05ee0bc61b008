"""The dashboard's helpdesk row graphs the EMF metrics the helpdesk use case emits, under the same
names, with the deflection, escalation and helpfulness rates as metric math."""

from __future__ import annotations

from typing import Any

import pytest

from signoff.usecases import helpdesk_metrics
from signoff_infra import helpdesk_dashboard
from tests.infrastructure.test_monitoring import _dashboard, _metric_names, _titled

pytestmark = [pytest.mark.infrastructure, pytest.mark.xdist_group("cdk")]


def test_the_row_and_the_use_case_name_the_same_metrics() -> None:
    assert helpdesk_dashboard.METRICS == set(helpdesk_metrics.ALL)


def test_the_helpdesk_row_shows_every_helpdesk_metric(body: dict[str, Any]) -> None:
    widgets = {title: w for title, w in _titled(body).items() if title.startswith("Helpdesk")}
    assert set(widgets) == {
        "Helpdesk questions by route",
        "Helpdesk deflection rate, %",
        "Helpdesk escalation rate, %",
        "Helpdesk time to first response, ms",
        "Helpdesk helpfulness, %",
        "Helpdesk resolution time, s",
    }
    shown = set().union(*(_metric_names(w) for w in widgets.values()))
    assert shown == set(helpdesk_metrics.ALL)
    headers = [w for w in _dashboard(body)["widgets"] if w["type"] == "text"]
    row = next(w for w in headers if w["properties"]["markdown"].startswith("## Helpdesk"))
    assert all(w["y"] > row["y"] for w in widgets.values())


def _expression(widget: dict[str, Any]) -> str:
    return str(next(line[0]["expression"] for line in widget["properties"]["metrics"] if isinstance(line[0], dict)))


def test_the_rates_are_metric_math_over_questions_and_votes(body: dict[str, Any]) -> None:
    widgets = _titled(body)
    assert (
        _expression(widgets["Helpdesk deflection rate, %"]) == "100 * (FILL(answered, 0) - FILL(talk, 0)) / questions"
    )
    assert _expression(widgets["Helpdesk escalation rate, %"]) == (
        "100 * (FILL(handedoff, 0) + FILL(ticketed, 0) + FILL(incidents, 0) + FILL(talk, 0)) / questions"
    )
    assert _expression(widgets["Helpdesk helpfulness, %"]) == (
        "100 * FILL(helpful, 0) / (FILL(helpful, 0) + FILL(nothelpful, 0))"
    )
    first = widgets["Helpdesk time to first response, ms"]["properties"]["metrics"]
    assert [line[-1]["stat"] for line in first] == ["p50", "p90", "p90"]

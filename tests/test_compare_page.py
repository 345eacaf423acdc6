"""Compare refuses two selections that share runs, and its axes read as money and time.

Runs are written through the real bulk path into a real DuckDB file; the axes are drawn by
vl-convert, the same Vega renderer the HTML exports use, and read back from the SVG.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import vl_convert
from helpers import D1, D2, make_run, write_rows
from streamlit.testing.v1 import AppTest

from core.analytics.compare import Comparison, MetricDelta, RunSet, compare
from core.app import charts
from core.app.html_export import standalone_spec

ROOT = Path(__file__).resolve().parents[1]
COMPARE = str(ROOT / "pages" / "6_Compare.py")


@pytest.fixture
def tagged(home: Path) -> Path:
    """40 runs tagged both source=demo and team=search, 10 tagged team=ops only, 30 of
    which (the first) also carry shift=day."""
    runs = []
    for i in range(50):
        tags = {"source": "demo", "team": "search"} if i < 40 else {"team": "ops"}
        if i < 30:
            tags["shift"] = "day"
        runs.append(
            make_run(f"r{i:02}", D1 if i % 2 else D2, 0.001 * (1 + i % 3), tags=json.dumps(tags))
        )
    write_rows(home, runs)
    return home


def test_the_same_runs_under_two_names_are_refused(tagged: Path) -> None:
    same = compare(RunSet("A", tag=("source", "demo")), RunSet("B", tag=("team", "search")), tagged)
    assert not same.metrics and same.refusal
    assert same.refusal.startswith("A and B select the same 40 runs")


def test_overlapping_selections_are_refused_with_what_they_share(tagged: Path) -> None:
    part = compare(RunSet("A", tag=("shift", "day")), RunSet("B", tag=("source", "demo")), tagged)
    assert part.refusal and "Every run of A (30) is also in B (40)" in part.refusal
    assert not part.metrics
    apart = compare(RunSet("A", tag=("team", "ops")), RunSet("B", tag=("team", "search")), tagged)
    assert apart.refusal is None and apart.metrics
    days = compare(RunSet("A", tag=("shift", "day")), RunSet("B", start=D1, end=None), tagged)
    assert days.refusal and "share 15 runs" in days.refusal


def test_compare_page_explains_instead_of_comparing(tagged: Path) -> None:
    app = AppTest.from_file(COMPARE, default_timeout=60).run()
    for side, tag in (("A", "source=demo"), ("B", "team=search")):
        app.selectbox(key=f"mode_{side}").set_value("Tag").run()
        app.selectbox(key=f"Tag_{side}").set_value(tag).run()
    assert not app.exception
    assert any("select the same 40 runs" in str(error.value) for error in app.error)
    assert not [h for h in app.subheader if "What differs" in str(h.value)]


def tick_labels(chart: object) -> list[str]:
    svg = vl_convert.vegalite_to_svg(standalone_spec(chart))
    axis = re.findall(r'<g class="mark-text role-axis-label".*?</g>', svg, re.S)
    return re.findall(r">([^<>]+)</text>", axis[0])


@pytest.mark.parametrize(
    ("unit", "low", "high", "pattern"),
    [
        ("usd", -0.0042, 0.0011, r"^(0|−?\$0\.\d{3})$"),
        ("ms", -4200.0, 300.0, r"^(0|−?[\d,.]+ s)$"),
        ("ms", -120.0, 15.0, r"^(0|−?[\d,]+ ms)$"),
        ("share", -0.035, 0.012, r"^(0|−?[\d.]+ pts)$"),
    ],
)
def test_difference_axes_read_as_money_time_and_points(
    unit: str, low: float, high: float, pattern: str
) -> None:
    metric = MetricDelta("m", unit, 1.0, 1.0 + (low + high) / 2, (low + high) / 2, low, high)
    (panel,) = charts.delta_panels(Comparison(RunSet("A"), RunSet("B"), 50, 50, [metric]))
    labels = tick_labels(panel)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    assert all(re.match(pattern, label) for label in labels), labels
    assert not any(re.search(r"e[+-]\d|\d[kµmM]\b", label) for label in labels), labels

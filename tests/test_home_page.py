"""Home: spend per day as sparklines (real and simulated apart, aggregated in SQL), the most
expensive runs of the week, and every run id a link to the run's page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import D1, D2, make_run, write_rows
from streamlit.testing.v1 import AppTest

from core.analytics.overview import SPARK_DAYS, costliest_runs, daily_spend

ROOT = Path(__file__).resolve().parents[1]
HOME_PAGE = str(ROOT / "app.py")
COSTS = str(ROOT / "pages" / "5_Costs.py")


@pytest.fixture
def spent(home: Path) -> Path:
    write_rows(
        home,
        [
            make_run("cheap-real", D1, 0.01),
            make_run("dear-real-0123456789", D1, 0.30),
            make_run("mid-real", D2, 0.05),
            make_run("dear-sim", D2, 0.20, simulated=True),
        ],
    )
    return home


def test_daily_spend_has_every_day_of_each_kind(spent: Path) -> None:
    daily = daily_spend(spent)
    assert len(daily.days) == 2 * SPARK_DAYS
    by = {(day, sim): cost for day, sim, cost in daily.days}
    assert by[(D1.date(), False)] == pytest.approx(0.31)
    assert by[(D2.date(), False)] == pytest.approx(0.05)
    assert by[(D2.date(), True)] == pytest.approx(0.20)
    assert sum(cost for _, sim, cost in daily.days if sim) == pytest.approx(0.20)


def test_costliest_runs_come_first_with_their_kind(spent: Path) -> None:
    runs = costliest_runs(spent, limit=3)
    assert [r.run_id for r in runs] == ["dear-real-0123456789", "dear-sim", "mid-real"]
    assert [r.simulated for r in runs] == [False, True, False]


def test_home_draws_sparklines_and_links_every_run(spent: Path) -> None:
    app = AppTest.from_file(HOME_PAGE, default_timeout=60).run()
    assert not app.exception, app.exception[0].message if app.exception else ""
    charts = [*app.get("arrow_vega_lite_chart"), *app.get("vega_lite_chart")]
    assert len(charts) == 2  # real and simulated
    costliest, recent = app.dataframe
    assert costliest.value["run_id"].iloc[0] == "runs?run=dear-real-0123456789"
    assert set(recent.value["run_id"]) == {
        f"runs?run={run}" for run in ("cheap-real", "dear-real-0123456789", "mid-real", "dear-sim")
    }
    for table in (costliest, recent):
        assert json.loads(table.proto.columns)["run_id"]["type_config"]["type"] == "link"


def test_costs_names_the_most_expensive_run(spent: Path) -> None:
    app = AppTest.from_file(COSTS, default_timeout=60).run()
    captions = "\n".join(str(c.value) for c in app.tabs[0].caption)
    assert "Most expensive run: [dear-real-01](runs?run=dear-real-0123456789) · $0.300" in captions

"""One meaning per period: Home, the Costs page and `cost-report` all report whole UTC days,
titled with their dates, and flag deltas against a previous period that holds little data.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from helpers import NOW, make_run, write_rows
from streamlit.testing.v1 import AppTest

from core.analytics.cost import cost_report
from core.analytics.overview import week_spend
from core.analytics.window import Window, thin_previous, window
from core.cli import main

ROOT = Path(__file__).resolve().parents[1]
HOME_PAGE = str(ROOT / "app.py")
COSTS = str(ROOT / "pages" / "5_Costs.py")
TODAY = datetime.combine(NOW.date(), datetime.min.time())
THIN = "The previous 7 days hold 1 day of data against 7 in this one"


@pytest.fixture
def week(home: Path) -> Path:
    """A real run at 01:00 UTC on each of the last 7 days (today's may be in the future of
    this clock: the window includes the whole day) and one 8 days ago, in the previous
    period; plus one simulated run 7 x 24 h ago, which a rolling week would count."""
    runs = [make_run(f"day{i}", TODAY - timedelta(days=i, hours=-1), 1.0) for i in range(7)]
    runs.append(make_run("before", TODAY - timedelta(days=8, hours=-1), 0.5))
    rolling_only = NOW - timedelta(days=6, hours=23, minutes=59)
    if rolling_only < TODAY - timedelta(days=6):  # only when that instant is outside the days
        runs.append(make_run("edge", rolling_only, 0.25, simulated=True))
    write_rows(home, runs)
    return home


def test_a_window_is_titled_with_its_utc_days() -> None:
    span = Window(datetime(2026, 11, 25), datetime(2026, 12, 2), 7)
    this_year = span.start.year == NOW.year
    assert span.dates == ("25 Nov – 1 Dec" if this_year else "25 Nov 2026 – 1 Dec 2026")
    assert span.title == f"Last 7 days (UTC, {span.dates})"
    assert span.previous.dates.startswith("18 Nov")
    new_year = window(None, date(2025, 12, 28), date(2026, 1, 3))
    assert new_year.title == "28 Dec 2025 – 3 Jan 2026 (UTC)"
    today = window(1)
    assert today.title.startswith("Last 1 day (UTC, ") and "–" not in today.title
    assert window(7).start == TODAY - timedelta(days=6)


@pytest.mark.parametrize(
    ("current", "previous", "flagged"), [(7, 1, True), (7, 3, True), (7, 4, False), (7, 0, False)]
)
def test_a_thin_previous_period_is_flagged(current: int, previous: int, flagged: bool) -> None:
    note = thin_previous(current, previous, "previous 7 days")
    assert (note is not None) == flagged
    if flagged:
        assert f"hold {previous} day{'s' * (previous != 1)} of data against {current}" in note


def test_home_costs_and_cli_agree_on_the_week(week: Path, capsys: pytest.CaptureFixture) -> None:
    spend, report = week_spend(week), cost_report(week, days=7)
    assert spend.span == window(7)
    assert spend.cost_usd == report.real.runs.total_cost_usd == 7.0
    assert spend.simulated_cost_usd == 0  # the run 7 x 24 h ago is on a day before the window
    assert spend.previous_cost_usd == report.real.previous.total_cost_usd == 0.5
    assert spend.thin_previous == report.real.thin_previous("previous 7 days")
    assert spend.thin_previous and THIN in spend.thin_previous

    assert main(["cost-report", "--days", "7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Cost Report: {window(7).title}\n")
    assert f"Note: {THIN}" in out


def test_home_and_costs_pages_title_the_days_and_flag_the_delta(week: Path) -> None:
    title = window(7).title
    home = AppTest.from_file(HOME_PAGE, default_timeout=60).run()
    assert not home.exception
    assert any(title in str(caption.value) for caption in home.caption)
    assert any(THIN in str(warning.value) for warning in home.warning)
    assert {m.label: m.value for m in home.metric}["Real spend (7 days)"] == "$7.00"

    costs = AppTest.from_file(COSTS, default_timeout=60).run()
    assert not costs.exception
    assert any(title in str(caption.value) for caption in costs.caption)
    assert any(THIN in str(warning.value) for warning in costs.tabs[0].warning)

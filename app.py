"""The app's entry point: the pages in the sidebar, Home first.

Home says what the app is, shows this week's spend (real and simulated apart), the targets
workflows declare that the week's runs violate, and the latest runs, and links to every
page.
"""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import streamlit as st

from core.analytics.overview import (
    CostlyRun,
    DailySpend,
    WeekSpend,
    costliest_runs,
    daily_spend,
    week_spend,
)
from core.analytics.runs import RunSummary, recent_runs
from core.analytics.targets import TargetStatus, target_status
from core.app import charts
from core.app.access import require_token
from core.app.page import data_version, home, setup
from core.app.widgets import show_targets
from core.formatting import money

RUN_LINK = "runs?run={}"  # the runs explorer's address of one run
SHORT_ID = r"runs\?run=(.{12})"  # a link shows the run id's first 12 characters


@st.cache_data(show_spinner=False)
def _figures(
    version: str,
) -> tuple[WeekSpend, DailySpend, list[CostlyRun], TargetStatus, list[RunSummary]]:
    runs = recent_runs(home(), limit=12, finished=False)
    spend, daily, costly = week_spend(home()), daily_spend(home()), costliest_runs(home())
    return spend, daily, costly, target_status(home()), runs


def _run_links(table: pd.DataFrame) -> dict[str, object]:
    """Turns `run_id` into a link to the run; returns the column's configuration."""
    table["run_id"] = table["run_id"].map(RUN_LINK.format)
    return {"run_id": st.column_config.LinkColumn("run", display_text=SHORT_ID)}


def _trend(daily: DailySpend) -> None:
    st.caption(f"Spend per day · {daily.span.title}")
    for column, simulated in zip(st.columns(2), (False, True), strict=True):
        with column:
            st.markdown("Simulated (not money spent)" if simulated else "Real")
            st.altair_chart(charts.spend_sparkline(daily, simulated), width="stretch")


def _costliest(runs: list[CostlyRun]) -> None:
    if not runs:
        st.caption("No priced runs in the last 7 days.")
        return
    table = pd.DataFrame([asdict(run) for run in runs])
    table["mode"] = table.pop("simulated").map({True: "simulated", False: "real"})
    table["cost"] = table.pop("cost_usd").map(money)
    config = _run_links(table)
    columns = ["run_id", "cost", "workflow", "mode", "started_at"]
    st.dataframe(table[columns], hide_index=True, width="stretch", column_config=config)


def _spend(spend: WeekSpend) -> None:
    st.caption(f"{spend.span.title}: the same whole days as the Costs page and `cost-report`.")
    real, simulated, failed = st.columns(3)
    change = spend.cost_usd - spend.previous_cost_usd
    versus = spend.span.previous_phrase
    real.metric(
        "Real spend (7 days)",
        money(spend.cost_usd),
        delta=f"{money(change)} vs {versus}" if spend.runs or change else None,
        delta_color="inverse",
        help=f"{spend.runs:,} runs against real providers; "
        f"{money(spend.previous_cost_usd)} in the {versus} ({spend.span.previous.dates})",
    )
    simulated.metric(
        "Simulated spend (7 days)",
        money(spend.simulated_cost_usd),
        help=f"{spend.simulated_runs:,} simulated runs: what they would have cost, not spend",
    )
    failed.metric("Failed runs (7 days)", f"{spend.failed_runs:,}")
    if note := spend.thin_previous:
        st.warning(note, icon="⚠️")


def _recent(runs: list[RunSummary]) -> None:
    if not runs:
        st.info(
            "No runs yet. Open the **Run** page, or fill demo history with "
            "`configurable-agents demo --days 30`."
        )
        return
    table = pd.DataFrame([asdict(run) for run in runs])
    table["mode"] = table.pop("simulated").map({True: "simulated", False: "real"})
    table["cost"] = table.pop("cost_usd").map(money)
    table["duration (s)"] = (table.pop("duration_ms") / 1000).round(2)
    config = _run_links(table)
    table["error"] = table["error"].fillna("")
    columns = [
        "started_at",
        "workflow",
        "status",
        "mode",
        "duration (s)",
        "cost",
        "run_id",
        "error",
    ]
    st.dataframe(table[columns], hide_index=True, width="stretch", column_config=config)


def home_page() -> None:
    setup("Home", "🧭")
    spend, daily, costly, targets, runs = _figures(data_version())
    st.title("configurable-agents")
    st.markdown(
        "Design, run and analyse LLM workflows by **cost** and **speed**. A workflow is a YAML "
        "DAG of LLM and code nodes; every run records node-level latency, tokens and cost, which "
        "the pages below turn into estimates, profiles, cost reviews and comparisons."
    )
    st.subheader("Last 7 days")
    _spend(spend)
    _trend(daily)
    st.markdown("**Most expensive runs** (last 7 days)")
    _costliest(costly)
    st.subheader("Targets")
    show_targets(targets, "any workflow")
    st.subheader("Go to")
    for column, page in zip(st.columns(len(PAGES) - 1), PAGES[1:], strict=True):
        column.page_link(page)
    st.subheader("Recent runs")
    _recent(runs)


PAGES = [
    st.Page(home_page, title="Home", icon="🧭", default=True),
    st.Page("pages/1_Editor.py", title="Editor", icon="✏️"),
    st.Page("pages/2_Estimate.py", title="Estimate", icon="🧮"),
    st.Page("pages/3_Run.py", title="Run", icon="▶️"),
    st.Page("pages/4_Profile.py", title="Profile", icon="⏱️"),
    st.Page("pages/5_Costs.py", title="Costs", icon="💰"),
    st.Page("pages/6_Compare.py", title="Compare", icon="⚖️"),
    st.Page("pages/7_Experiments.py", title="Experiments", icon="🧪"),
    st.Page("pages/8_runs.py", title="Runs", icon="🔎", url_path="runs"),
]

require_token()  # before any page draws: a session without the token sees nothing else
st.navigation(PAGES).run()

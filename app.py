"""Home: what the app is, spend this week, recent runs, and where to go next."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.app.common import data_version, home, setup
from core.formatting import money
from core.reports.overview import recent_runs, week_spend

setup("Home", "🧭")


@st.cache_data(show_spinner=False)
def _figures(version: str) -> tuple[object, list[dict[str, object]]]:
    return week_spend(home()), recent_runs(home(), 12)


spend, runs = _figures(data_version())

st.title("configurable-agents")
st.markdown(
    "Design, run and analyse LLM workflows by **cost** and **speed**. A workflow is a YAML "
    "DAG of LLM and code nodes; every run records node-level latency, tokens and cost, which "
    "the pages below turn into estimates, profiles, cost reviews and comparisons."
)

st.subheader("This week")
real, simulated, failed = st.columns(3)
real.metric(
    "Real spend (7 days)",
    money(spend.cost_usd),
    delta=money(spend.cost_usd - spend.previous_cost_usd) + " vs previous 7 days",
    delta_color="inverse",
    help=f"{spend.runs:,} runs against real providers",
)
simulated.metric(
    "Simulated spend (7 days)",
    money(spend.simulated_cost_usd),
    help=f"{spend.simulated_runs:,} simulated runs: what they would have cost; nothing was paid",
)
failed.metric("Failed runs (7 days)", f"{spend.failed_runs:,}")

st.subheader("Go to")
links = st.columns(6)
for column, (page, label, icon) in zip(
    links,
    [
        ("pages/1_Editor.py", "Editor", "✏️"),
        ("pages/2_Estimate.py", "Estimate", "🧮"),
        ("pages/3_Run.py", "Run", "▶️"),
        ("pages/4_Profile.py", "Profile", "⏱️"),
        ("pages/5_Costs.py", "Costs", "💰"),
        ("pages/6_Compare.py", "Compare", "⚖️"),
    ],
    strict=True,
):
    column.page_link(page, label=label, icon=icon)

st.subheader("Recent runs")
if not runs:
    st.info(
        "No runs yet. Open the **Run** page, or fill demo history with "
        "`configurable-agents demo --days 30`."
    )
else:
    table = pd.DataFrame(runs)
    table["mode"] = table.pop("simulated").map({True: "simulated", False: "real"})
    table["cost"] = table.pop("cost_usd").map(money)
    table["duration (s)"] = (table.pop("duration_ms") / 1000).round(2)
    table["run_id"] = table["run_id"].str[:12]
    st.dataframe(
        table[
            ["started_at", "workflow", "status", "mode", "duration (s)", "cost", "run_id", "error"]
        ],
        hide_index=True,
        use_container_width=True,
    )

"""Profile: where a workflow's time and money go, node by node, and what to change.

Per-node latency as box plots, p50/p95 and status badges, the critical path with each node's
slack, the recommendations `core.analytics.profile` computes from the recorded calls, and
how the workflow's last 7 days stand against its own `targets:`.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.analytics.profile import Profile, ProfileError, profile
from core.analytics.runs import RunSummary, recent_runs
from core.analytics.spend import Choices, choices, node_latency
from core.analytics.targets import TargetStatus, target_status
from core.app import charts, widgets
from core.app.page import data_version, home, setup
from core.formatting import money

setup("Profile", "⏱️")

KINDS = {"All runs": None, "Real": False, "Simulated": True}
LAST_RUNS, ONE_RUN = "Last runs", "One run"


@st.cache_data(show_spinner=False)
def _choices(folder: str, version: str) -> Choices:
    return choices(folder)


@st.cache_data(show_spinner=False, max_entries=32)
def _recent(folder: str, version: str, workflow: str, simulated: bool | None) -> list[RunSummary]:
    return recent_runs(folder, workflow, simulated)


@st.cache_data(show_spinner=False, max_entries=32)
def _profile(
    folder: str, version: str, workflow: str, run: str | None, last: int, simulated: bool | None
) -> tuple[Profile, pd.DataFrame]:
    """The profile and its latency quantiles; ProfileError when there is nothing to profile
    (st.cache_data does not cache exceptions, so that case is asked again, cheaply)."""
    found = profile(folder, workflow=workflow, run=run, last=last, simulated=simulated)
    return found, node_latency(folder, found.workflow, found.runs)


@st.cache_data(show_spinner=False, max_entries=32)
def _targets(folder: str, version: str, workflow: str, simulated: bool | None) -> TargetStatus:
    return target_status(folder, workflow=workflow, simulated=simulated)


def pick_runs(known: Choices) -> tuple[str, str | None, int, bool | None]:
    """(workflow, one run id or None, how many latest runs, which kind of run). Two rows of
    two: four in a row clipped the segmented controls at 1024 px."""
    workflow_col, kind_col = st.columns(2)
    mode_col, runs_col = st.columns(2)
    workflow = workflow_col.selectbox(
        "Workflow", known.workflows, help="The workflow of the latest run comes first."
    )
    kind = kind_col.segmented_control("Runs", list(KINDS), default="All runs", required=True)
    simulated = KINDS[kind]
    mode = mode_col.segmented_control(
        "Profile", [LAST_RUNS, ONE_RUN], default=LAST_RUNS, required=True
    )
    if mode == LAST_RUNS:
        last = runs_col.slider(
            "Latest runs", 1, 200, 20, help="Means and percentiles over this many latest runs."
        )
        return workflow, None, last, simulated
    runs = _recent(str(home()), data_version(), workflow, simulated)
    labels = {run.run_id: _run_label(run) for run in runs}
    run = runs_col.selectbox("Run", list(labels), format_func=labels.__getitem__)
    return workflow, run, 1, simulated


def _run_label(run: RunSummary) -> str:
    seconds = f"{run.duration_ms / 1000:,.1f} s" if run.duration_ms is not None else "–"
    kind = " · simulated" if run.simulated else ""
    return (
        f"{run.started_at:%d %b %H:%M} · {run.status} · {seconds} · {money(run.cost_usd)}"
        f"{kind} · {run.run_id[:8]}"
    )


def show_recommendations(result: Profile) -> None:
    advised = [node for node in result.nodes if node.recommendations]
    if not advised and not result.recommendations:
        st.success("Nothing to change: no node is slow, wasteful or needlessly serialised.")
        return
    for advice in result.recommendations:
        st.info(advice, icon="💡")
    for node in advised:
        st.markdown(f"**{node.name}** · {charts.STATUS_BADGES[node.status]}")
        st.markdown("\n".join(f"- {advice}" for advice in node.recommendations))


st.title("⏱️ Profile")
known = _choices(str(home()), data_version())
if not known.workflows:
    st.info(
        "No runs recorded yet, so there is nothing to profile. Run a workflow on the **Run** "
        "page (or `configurable-agents run FILE --simulate`), or fill weeks of simulated "
        "history with `configurable-agents demo`.",
        icon="🗂️",
    )
    st.stop()

workflow, run, last, simulated = pick_runs(known)
try:
    result, quantiles = _profile(str(home()), data_version(), workflow, run, last, simulated)
except ProfileError as exc:
    st.info(f"Nothing to profile: {exc}.", icon="🗂️")
    st.stop()

runs = len(result.runs)
scope = f"run {result.runs[0][:12]}" if run else f"the latest {runs} run{'s' * (runs != 1)}"
st.caption(
    f"**{result.workflow}** · {scope} · version `{result.workflow_hash[:8]}` · "
    f"figures are means per run"
)
widgets.show_metrics(charts.profile_metrics(result))
widgets.show_targets(
    _targets(str(home()), data_version(), result.workflow, simulated), result.workflow
)

st.subheader("Nodes")
bottlenecks = [n.name for n in result.nodes if n.status == "BOTTLENECK"]
if bottlenecks:
    st.markdown(f"❌ **Bottleneck{'s' * (len(bottlenecks) > 1)}:** {', '.join(bottlenecks)}")
table = charts.profile_table(result)
st.dataframe(table, hide_index=True, width="stretch", column_config=widgets.columns(table))

latency_col, path_col = st.columns(2)
with latency_col:
    st.subheader("Latency per node")
    st.caption(
        "Every call of the profiled runs: whisker from the fastest to p95, box from p25 to "
        "p75, white tick at the median." + (" One run: one call per node." if run else "")
    )
    st.altair_chart(charts.latency_chart(quantiles, result), width="stretch")
with path_col:
    st.subheader("Critical path and slack")
    st.caption(
        f"{' → '.join(result.critical_path)}: {result.critical_path_ms / 1000:,.2f} s. Grey is "
        "slack, how much longer a node could take before the run does."
    )
    st.altair_chart(charts.slack_chart(result), width="stretch")

st.subheader("Recommendations")
show_recommendations(result)

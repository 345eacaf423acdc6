"""Run: start a workflow, watch its nodes finish, then read its outputs, costs and timeline.

Runs execute in the server process (core.app.background), not in this script, so the page stays
responsive, a fragment polls only the progress area, and a reloaded page finds its run again.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
import streamlit as st

from core.app import background
from core.app.gantt import duration_text, gantt_chart, schedule
from core.app.graph_chart import STATE_COLOURS, box_height, dag_chart
from core.app.inputs_form import choose_workflow, inputs_form
from core.app.page import home, setup, simulate
from core.app.run_view import run_marks
from core.engine.inputs import check_inputs
from core.engine.results import NodeResult, RunResult
from core.errors import InputError
from core.formatting import count, money
from core.workflow import Workflow

setup("Run", "▶️")

SHOWN = "run_shown"  # the BackgroundRun key this session is looking at
POLL_SECONDS = 0.5
GRAPH_MAX_PX = 480  # a taller graph scrolls inside its own box
STATE_ICONS = {
    "waiting": "⚪",
    "running": "⏳",
    "success": "✅",
    "failed": "❌",
    "timeout": "⏱️",
    "budget_exceeded": "💸",
    "cancelled": "⏹️",
}
RESULT_BANNERS = {
    "success": (st.success, "✅", "Succeeded"),
    "failed": (st.error, "❌", "Failed"),
    "budget_exceeded": (st.warning, "💸", "Stopped by the budget"),
    "cancelled": (st.warning, "⏹️", "Cancelled"),
}


def start_run(workflow: Workflow, inputs: dict[str, Any], use_cache: bool) -> None:
    """Inputs are checked here first so a mistake is shown at once, next to the form; the run
    gets them typed and with defaults, which is also how its inputs are shown later."""
    try:
        values = check_inputs(workflow, inputs, from_text=True)
    except InputError as exc:
        problems = "\n".join(f"- {problem}" for problem in exc.problems)
        st.error(f"**Cannot start: check the inputs.**\n\n{problems}", icon="🚫")
        return
    run = background.start(workflow, values, simulate=simulate(), use_cache=use_cache, home=home())
    st.session_state[SHOWN] = run.key


def run_label(key: str) -> str:
    """Stable for the run's whole life: a selectbox keeps its choice by label, so a label
    that changed when the run finished would drop the selection."""
    run = background.get(key)
    if run is None:
        return key
    started = time.strftime("%H:%M:%S", time.localtime(run.started))
    mode = " · simulated" if run.simulate else ""
    return f"{run.workflow.name} · started {started}{mode}"


def pick_run() -> background.BackgroundRun | None:
    """This session's latest run, or (after a reload) the newest run on the server."""
    runs = background.recent()
    keys = [run.key for run in runs]
    if not keys:
        return None
    if st.session_state.get(SHOWN) not in keys:
        st.session_state[SHOWN] = keys[0]
    key = st.selectbox(
        "Show run",
        keys,
        format_func=run_label,
        key=SHOWN,
        help="Runs started on this server: still running first, then the latest finished.",
    )
    going = sum(not run.done for run in runs)
    if going:
        st.caption(f"⏳ {going} run{'s' if going > 1 else ''} still going on this server")
    return background.get(key)


def node_state(run: background.BackgroundRun, name: str) -> str:
    if name in run.finished:
        return run.finished[name].status
    return "running" if name in run.running else "waiting"


def live_rows(run: background.BackgroundRun) -> pd.DataFrame:
    finished = dict(run.finished)  # the run's thread keeps adding to it
    rows = []
    for name in run.workflow.graph.order:
        state = node_state(run, name)
        node = finished.get(name)
        rows.append(
            {
                "node": f"{STATE_ICONS.get(state, '•')} {name}",
                "state": _live_state(state, node),
                "duration": duration_text(node.duration_ms) if node else "",
                "tokens": f"{node.input_tokens + node.output_tokens:,}" if node else "",
                "cost": money(node.cost_usd) if node else "",
                "error": (node.error or "") if node else "",
            }
        )
    return pd.DataFrame(rows)


def _live_state(state: str, node: NodeResult | None) -> str:
    if state == "success":
        return "done · cache hit" if node and node.cache_hit else "done"
    return state.replace("_", " ")


@st.fragment(run_every=POLL_SECONDS)
def live(key: str) -> None:
    """Redraws only itself while the run goes; hands over to a full rerun once it is done."""
    run = background.get(key)
    if run is None:
        return
    if run.done:
        st.rerun()
    elapsed = time.time() - run.started
    total = len(run.workflow.nodes)
    st.progress(
        run.progress,
        text=f"{len(run.finished)} of {total} nodes done · {len(run.running)} running · "
        f"{elapsed:,.1f} s",
    )
    graph(run.workflow, dict(run.finished), set(run.running))
    st.dataframe(live_rows(run), hide_index=True)
    st.button("Cancel run", icon="⏹️", on_click=run.cancel, key=f"cancel:{key}")


def show_finished(run: background.BackgroundRun) -> None:
    if run.result is not None:
        show_result(run.workflow, run.result, run.inputs)
        return
    if run.error and run.error.startswith("cancelled"):
        st.warning(f"**Cancelled** — {run.error.removeprefix('cancelled: ')}.", icon="⏹️")
    else:
        what = "stopped" if run.finished else "could not start"
        st.error(f"**The run {what}:** {run.error}", icon="🚫")
        if not run.simulate:
            st.info("To try it without a key, turn on **Simulated provider** in the sidebar.")
    if run.finished:
        nodes = dict(run.finished)
        graph(run.workflow, nodes)
        node_table(run.workflow, nodes)
        timeline(run.workflow, nodes)


def show_result(workflow: Workflow, result: RunResult, inputs: dict[str, Any]) -> None:
    show, icon, title = RESULT_BANNERS.get(result.status, (st.error, "❌", result.status))
    detail = f" — {result.error}" if result.error else ""
    show(f"**{title}**{detail}", icon=icon)
    for warning in result.warnings:
        st.warning(warning, icon="⚠️")
    summary(workflow, result)
    with st.expander("Inputs of this run"):
        st.json(inputs)
    outputs(result)
    graph(workflow, result.nodes)
    st.markdown("##### Nodes")
    node_table(workflow, result.nodes)
    timeline(workflow, result.nodes, result)


def summary(workflow: Workflow, result: RunResult) -> None:
    duration, cost, tokens, nodes = st.columns(4)
    duration.metric("Duration", duration_text(result.duration_ms), border=True)
    unpriced = (
        f" + {result.unpriced_calls} unpriced"
        if result.unpriced_calls and result.cost_usd is not None
        else ""
    )
    saved = sum(node.saved_cost_usd or 0.0 for node in result.nodes.values() if node.cache_hit)
    cost.metric(
        "Cost" + (" (simulated)" if result.simulated else ""),
        money(result.cost_usd) + unpriced,
        delta=f"{money(saved)} saved by the cache" if saved else None,
        delta_color="green",
        delta_arrow="off",
        help="What the calls cost at list prices; cache hits cost $0. Simulated runs pay "
        "nothing: this is what the same calls would cost.",
        border=True,
    )
    tokens.metric(
        "Tokens",
        count(result.tokens),
        help=f"{count(result.input_tokens)} input + {count(result.output_tokens)} output",
        border=True,
    )
    hits = sum(1 for node in result.nodes.values() if node.cache_hit)
    nodes.metric(
        "Nodes done",
        f"{sum(node.ok for node in result.nodes.values())} / {len(workflow.nodes)}",
        help=f"{hits} served from the cache",
        border=True,
    )
    st.caption(f"Run `{result.run_id}` · started {result.started_at:%Y-%m-%d %H:%M:%S} UTC")


def graph(
    workflow: Workflow, nodes: dict[str, NodeResult], running: set[str] | None = None
) -> None:
    """The DAG coloured by each node's state: redrawn with every poll while the run goes
    on (`running` given), so nodes change colour as they start, finish, fail or hit the
    cache."""
    with st.container(height=box_height(workflow.graph, GRAPH_MAX_PX), border=False):
        chart = dag_chart(
            workflow.graph, run_marks(workflow, nodes, running), STATE_COLOURS, "state"
        )
        st.altair_chart(chart, width="content")


def outputs(result: RunResult) -> None:
    st.markdown("##### Outputs")
    if not result.outputs:
        st.caption("No outputs: the run stopped before its output nodes finished.")
        return
    names = list(result.outputs)
    for tab, name in zip(st.tabs(names), names, strict=True):
        with tab:
            value = result.outputs[name]
            if isinstance(value, dict | list):
                st.json(value)
            else:
                with st.container(border=True):
                    st.markdown(str(value))
                with st.expander("Raw text"):
                    st.code(str(value), language=None, wrap_lines=True)


def node_table(workflow: Workflow, nodes: dict[str, NodeResult]) -> None:
    """Every node of the workflow, so the ones a failure or the budget kept from running
    show as such instead of silently missing."""
    rows = [
        _node_row(name, nodes[name]) if name in nodes else {"node": name, "status": "⚪ not run"}
        for name in workflow.graph.order
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        placeholder="–",
        column_config={
            "node": st.column_config.TextColumn(pinned=True),
            "duration (s)": st.column_config.NumberColumn(format="%.3f"),
            "input tokens": st.column_config.NumberColumn(format="localized"),
            "output tokens": st.column_config.NumberColumn(format="localized"),
            "error": st.column_config.TextColumn(width="large"),
        },
    )


def _node_row(name: str, node: NodeResult) -> dict[str, Any]:
    return {
        "node": name,
        "status": f"{STATE_ICONS.get(node.status, '•')} {node.status.replace('_', ' ')}",
        "model": f"{node.provider}/{node.model}" if node.model else node.node_type,
        "duration (s)": node.duration_ms / 1000,
        "input tokens": node.input_tokens,
        "output tokens": node.output_tokens,
        "cost": money(node.cost_usd),
        "cache hit": node.cache_hit,
        "attempts": node.attempts,
        "error": node.error or "",
    }


def timeline(
    workflow: Workflow, nodes: dict[str, NodeResult], result: RunResult | None = None
) -> None:
    plan = schedule(workflow, nodes)
    path = [name for name in plan.path if name in nodes]  # nodes that never ran took no time
    st.markdown("##### Timeline")
    st.caption(
        f"Critical path: **{' → '.join(path)}** ({duration_text(plan.length_ms)} of node "
        "time). Speeding up any other node cannot shorten the run; see each bar's slack."
    )
    started = result.started_at if result else None
    st.altair_chart(gantt_chart(workflow, nodes, started), width="stretch")


st.title("▶️ Run")
st.caption(
    "Runs go on in the background: leave the page or reload it and pick the run up again "
    "below. Every node's latency, tokens and cost go to telemetry."
)

workflow = choose_workflow()
if workflow is not None:
    with st.form("run_form", border=True):
        inputs = inputs_form(workflow)
        go, cache = st.columns([1, 3], vertical_alignment="center")
        use_cache = cache.checkbox(
            "Use the response cache",
            value=True,
            key="use_cache",
            bind="query-params",  # kept after a reload, like the inputs
            help="Nodes with `cache:` enabled answer repeated calls from the cache at $0.",
        )
        submitted = go.form_submit_button("Run", type="primary", icon="▶️", key="run")
    if submitted:
        start_run(workflow, inputs, use_cache)

st.divider()
shown = pick_run()
if shown is None:
    st.info("No runs yet on this server: fill in the inputs and press **Run**.")
elif not shown.done:
    live(shown.key)
else:
    show_finished(shown)

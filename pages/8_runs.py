"""Runs: find any recorded run by workflow, status, tag, period, mode, cost and duration, and
open it at its own address (/runs?run=<run_id>) to see its DAG, timeline, nodes, outputs,
errors and what each node sent and received.

The file name is in lower case on purpose: a fresh server's first session resolves the URL
against the pages folder before app.py's navigation has run, and only `8_runs.py` gives
`/runs` on both paths (`8_Runs.py` made a pasted link show "Page not found" first)."""

from __future__ import annotations

from datetime import date
from typing import Any

import streamlit as st

from core.analytics.run_detail import RunDetail, RunNotFound, run_detail
from core.analytics.run_search import (
    PAGE_SIZE,
    STATUSES,
    Cursor,
    FilterChoices,
    RunFilters,
    RunPage,
    SearchError,
    filter_choices,
    search_runs,
)
from core.app.gantt import duration_text, gantt_chart
from core.app.graph_chart import SELECTION, STATE_COLOURS, box_height, dag_chart, picked_node
from core.app.page import data_version, setup
from core.app.run_view import node_table, run_link, run_marks, runs_table
from core.formatting import count, money

setup("Runs", "🔎")

GRAPH_KEY = "runs_graph"
NODE_KEY = "runs_node"  # the node whose details show: picked in the list or on the DAG
GRAPH_MAX_PX = 560  # a taller graph scrolls inside its own box
CURSORS = "runs_cursors"  # where each page before the shown one ended
MODES = {"All runs": None, "Real only": False, "Simulated only": True}
NOT_STORED = (
    "Content not stored for this run (store_content is off): prompts and responses are kept "
    "for simulated runs, and for real runs of workflows that set "
    "`telemetry: {store_content: true}`, or they were pruned."
)


@st.cache_data(show_spinner=False)
def _choices(version: str) -> FilterChoices:
    return filter_choices()


@st.cache_data(show_spinner=False, max_entries=64)
def _search(version: str, filters: RunFilters, after: Cursor | None) -> RunPage:
    return search_runs(filters, after=after, limit=PAGE_SIZE)


def _open(run_id: str) -> None:
    st.query_params["run"] = run_id


def _pick_node() -> None:
    """A click on the DAG picks the node whose details show below."""
    name = picked_node(st.session_state.get(GRAPH_KEY))
    if name is not None:
        st.session_state[NODE_KEY] = name


def _close() -> None:
    st.query_params.clear()


def _filters(choices: FilterChoices) -> RunFilters:
    first, second, third = st.columns(3)
    workflows = first.multiselect("Workflow", choices.workflows, placeholder="any")
    statuses = second.multiselect(
        "Status", STATUSES, format_func=lambda s: s.replace("_", " "), placeholder="any"
    )
    tag = third.selectbox(
        "Tag",
        choices.tags,
        index=None,
        placeholder="any",
        accept_new_options=True,
        help="key=value as given with --tag, or a key alone for any value",
    )
    period, mode, cost, duration = st.columns([2, 1, 2, 2])
    days = period.date_input(
        "Period (UTC days)",
        value=(),
        min_value=choices.first_day,
        max_value=choices.last_day,
        help="Whole UTC days, first to last included; empty for all",
    )
    first_day, last_day = _period(days)
    simulated = MODES[mode.selectbox("Mode", list(MODES))]
    low_cost, high_cost = cost.columns(2)
    low_time, high_time = duration.columns(2)
    return RunFilters(
        workflows=tuple(workflows),
        statuses=tuple(statuses),
        tag=tag or None,
        first_day=first_day,
        last_day=last_day,
        simulated=simulated,
        min_cost=low_cost.number_input("Cost from ($)", min_value=0.0, value=None, format="%.4f"),
        max_cost=high_cost.number_input("Cost to ($)", min_value=0.0, value=None, format="%.4f"),
        min_seconds=low_time.number_input("Duration from (s)", min_value=0.0, value=None),
        max_seconds=high_time.number_input("Duration to (s)", min_value=0.0, value=None),
    )


def _period(days: Any) -> tuple[date | None, date | None]:
    """The date input's value, whether the user has picked none, one or both ends yet."""
    picked = list(days) if isinstance(days, list | tuple) else [days]
    picked = [d for d in picked if d is not None]
    if not picked:
        return None, None
    return picked[0], picked[-1]


def explorer() -> None:
    st.title("🔎 Runs")
    st.caption(
        "Every recorded run, newest first. Filters run in the database; open a run from the "
        "table (or paste its address, `runs?run=<run_id>`) to see what each node did."
    )
    version = data_version()
    filters = _filters(_choices(version))
    if st.session_state.get("runs_filters") != filters:
        st.session_state["runs_filters"] = filters
        st.session_state[CURSORS] = []
    cursors = st.session_state.setdefault(CURSORS, [])
    offset = len(cursors) * PAGE_SIZE
    try:
        found = _search(version, filters, cursors[-1] if cursors else None)
    except SearchError as exc:
        st.error(f"**Check the filters:** {exc}", icon="🚫")
        return
    if not found.total:
        st.info("No run matches these filters.")
        return
    last = min(offset + len(found.rows), found.total)
    st.caption(f"**{found.total:,}** runs match · showing {offset + 1:,}–{last:,}")
    table = runs_table(found.rows)
    picked = st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key="runs_table",
        column_order=[c for c in table.columns if c != "run_id"],
        column_config={
            "run": st.column_config.LinkColumn(
                "run", display_text=r"run=(.{12})", help="Opens the run (a stable address)"
            ),
            "duration (s)": st.column_config.NumberColumn(format="%.2f"),
            "tokens": st.column_config.NumberColumn(format="localized"),
            "error": st.column_config.TextColumn(width="large"),
        },
    )
    rows = picked.selection.rows if picked else []
    if rows:
        _open(table.iloc[rows[0]]["run_id"])
        st.rerun()
    previous, following, jump = st.columns([1, 1, 4], vertical_alignment="bottom")
    if previous.button("← Newer", disabled=not cursors):
        cursors.pop()
        st.rerun()
    if following.button("Older →", disabled=last >= found.total):
        cursors.append(found.cursor)
        st.rerun()
    wanted = jump.text_input("Open a run by id", placeholder="a run id, or its first characters")
    if wanted:
        _open(wanted.strip())
        st.rerun()


def show_run(run_id: str) -> None:
    st.button("← All runs", on_click=_close)
    try:
        detail = run_detail(run_id)
    except RunNotFound as exc:
        st.error(f"**Cannot open this run:** {exc}", icon="🚫")
        return
    mode = "simulated" if detail.simulated else "real"
    st.title(f"🔎 {detail.workflow_name} · {detail.status.replace('_', ' ')}")
    st.caption(
        f"Run `{detail.run_id}` · {mode} · started "
        f"{detail.started_at:%Y-%m-%d %H:%M:%S} UTC · address `{run_link(detail.run_id)}`"
        if detail.started_at
        else f"Run `{detail.run_id}` · {mode}"
    )
    _summary(detail)
    if detail.error:
        st.error(f"**Error:** {detail.error}", icon="❌")
    if detail.workflow is None:
        st.warning(
            "The workflow version this run used is not recorded: no DAG or timeline.", icon="⚠️"
        )
    else:
        graph, timeline = st.columns([2, 3])
        with graph:
            st.markdown("##### DAG")
            with st.container(height=box_height(detail.workflow.graph, GRAPH_MAX_PX), border=False):
                st.altair_chart(
                    dag_chart(
                        detail.workflow.graph,
                        run_marks(detail.workflow, detail.nodes),
                        STATE_COLOURS,
                        "state",
                    ),
                    width="content",
                    key=GRAPH_KEY,
                    on_select=_pick_node,
                    selection_mode=SELECTION,
                )
            st.caption("Click a node to see what it sent and received.")
        with timeline:
            st.markdown("##### Timeline")
            if detail.nodes:
                chart = gantt_chart(detail.workflow, detail.nodes, detail.started_at)
                st.altair_chart(chart, width="stretch")
    order = list(detail.workflow.graph.order) if detail.workflow else list(detail.nodes)
    st.markdown("##### Nodes")
    st.dataframe(
        node_table(order, detail.nodes),
        hide_index=True,
        placeholder="–",
        column_config={
            "duration (s)": st.column_config.NumberColumn(format="%.3f"),
            "error": st.column_config.TextColumn(width="large"),
        },
    )
    _outputs(detail)
    if detail.inputs:
        with st.expander("Inputs of this run"):
            st.json(detail.inputs)
    _node_content(detail, order)


def _summary(detail: RunDetail) -> None:
    duration, cost, tokens, nodes = st.columns(4)
    duration.metric(
        "Duration",
        duration_text(detail.duration_ms) if detail.duration_ms is not None else "–",
        border=True,
    )
    cost.metric(
        "Cost" + (" (simulated)" if detail.simulated else ""),
        money(detail.cost_usd),
        help="Simulated runs pay nothing: this is what the same calls would cost.",
        border=True,
    )
    tokens.metric(
        "Tokens",
        count(detail.input_tokens + detail.output_tokens),
        help=f"{count(detail.input_tokens)} input + {count(detail.output_tokens)} output",
        border=True,
    )
    done = sum(node.ok for node in detail.nodes.values())
    total = len(detail.workflow.nodes) if detail.workflow else len(detail.nodes)
    nodes.metric("Nodes done", f"{done} / {total}", border=True)
    if detail.tags:
        st.caption("Tags: " + " · ".join(f"`{k}={v}`" for k, v in detail.tags.items()))


def _outputs(detail: RunDetail) -> None:
    st.markdown("##### Outputs")
    if not detail.content_stored:
        st.caption(NOT_STORED)
        return
    outputs = detail.outputs
    if not outputs:
        st.caption("No outputs: the run stopped before its output nodes finished.")
        return
    for tab, value in zip(st.tabs(list(outputs)), outputs.values(), strict=True):
        with tab:
            if isinstance(value, dict | list):
                st.json(value)
            else:
                st.code(str(value), language=None, wrap_lines=True)


@st.fragment
def _node_content(detail: RunDetail, order: list[str]) -> None:
    """A fragment: picking another node redraws only this part, without reading the run
    again."""
    st.markdown("##### Node details")
    ran = [name for name in order if name in detail.nodes]
    if not ran:
        st.caption("No node of this run finished.")
        return
    if st.session_state.get(NODE_KEY) not in ran:
        st.session_state.pop(NODE_KEY, None)
    name = st.selectbox("Node", ran, key=NODE_KEY)
    node = detail.nodes[name]
    stored = detail.content.get(name)
    tokens, cost, attempts, cache = st.columns(4)
    tokens.metric("Tokens", f"{node.input_tokens:,} in · {node.output_tokens:,} out")
    cost.metric("Cost", "$0 · cache hit" if node.cache_hit else money(node.cost_usd))
    attempts.metric("Attempts", node.attempts)
    cache.metric("Cache", "hit" if node.cache_hit else ("miss" if node.cache_enabled else "off"))
    if node.error:
        st.error(node.error, icon="❌")
    if stored is None:
        st.info(NOT_STORED, icon="🔒")
        if node.request_hash:
            st.caption(f"Request hash `{node.request_hash}`")
        return
    if stored.cache_key:
        st.caption(f"Cache key `{stored.cache_key}`")
    for label, text in (
        ("System text sent", stored.system),
        ("Prompt sent", stored.prompt),
        ("Response received" if node.node_type == "llm" else "Result", stored.response),
    ):
        if text is not None:
            st.markdown(f"**{label}**")
            st.code(text, language=None, wrap_lines=True)


wanted_run = st.query_params.get("run")
if wanted_run:
    show_run(wanted_run)
else:
    explorer()

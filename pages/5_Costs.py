"""Costs: the spend review. Totals and their change against the previous period, spend over
time by provider, model, workflow or node, the nodes and models that cost most, cache
savings, unpriced calls and the one change that would save most; real and simulated spend
in separate tabs, never added together; a CSV and a shareable HTML export."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from core.analytics.cost import CostReport, CostSection, cost_report
from core.analytics.cost_render import to_csv
from core.analytics.spend import STACK_DIMENSIONS, Choices, SpendSeries, choices, spend_over_time
from core.app import charts, widgets
from core.app.html_export import cost_review_html
from core.app.inputs_form import preset_model, workflow_file
from core.app.page import data_version, home, setup

setup("Costs", "💰")

PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "Custom": None}
ALL_WORKFLOWS = "All workflows"
TABS = {False: "💵 Real spend", True: "🧪 Simulated spend"}


@dataclass(frozen=True)
class Filters:
    """cost_report's and spend_over_time's keyword arguments, hashable for st.cache_data."""

    days: int = 7
    start: date | None = None
    end: date | None = None
    workflow: str | None = None
    providers: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@st.cache_data(show_spinner=False)
def _choices(folder: str, version: str) -> Choices:
    return choices(folder)


@st.cache_data(show_spinner=False, max_entries=64)
def _report(folder: str, version: str, filters: Filters) -> CostReport:
    return cost_report(folder, **asdict(filters))


@st.cache_data(show_spinner=False, max_entries=64)
def _series(folder: str, version: str, filters: Filters, dimension: str) -> SpendSeries:
    return spend_over_time(folder, dimension=dimension, **asdict(filters))


@st.cache_data(show_spinner=False, max_entries=16)
def _review(
    folder: str,
    version: str,
    filters: Filters,
    stacks: tuple[tuple[bool, str], ...],
) -> bytes:
    """The HTML export, as bytes handed to its button with the page. Built on click instead
    (a deferred download), it failed whenever a rerun had replaced the file id the browser
    still held; cached per data version, filters and stacking, it is built once per view
    (its "generated" time is when its figures were read)."""
    report = _report(folder, version, filters)
    series = {kind: _series(folder, version, filters, stack) for kind, stack in stacks}
    return cost_review_html(report, series).encode()


def pick_filters(known: Choices) -> Filters:
    """The period on a row of its own: beside three filters it was clipped at 1024 px."""
    period = st.segmented_control(
        "Period",
        list(PERIODS),
        default="7 days",
        required=True,
        key="costs_period",
        help="Whole UTC days, today included; deltas compare with the same number of days "
        "just before.",
    )
    start, end = _dates(period, known)
    workflow_col, provider_col, model_col = st.columns(3)
    workflow = workflow_col.selectbox("Workflow", [ALL_WORKFLOWS, *known.workflows])
    providers = provider_col.multiselect("Providers", known.providers, placeholder="All providers")
    offered = [m for p, m in known.models if not providers or p in providers]
    models = model_col.multiselect("Models", list(dict.fromkeys(offered)), placeholder="All models")
    return Filters(
        days=PERIODS[period] or 7,
        start=start,
        end=end,
        workflow=None if workflow == ALL_WORKFLOWS else workflow,
        providers=tuple(providers),
        models=tuple(models),
    )


def _dates(period: str, known: Choices) -> tuple[date | None, date | None]:
    """A custom range from the date picker; (None, None) for the last N days."""
    if PERIODS[period] is not None:
        return None, None
    last = known.last_day or date.today()
    picked = st.date_input(
        "Dates",
        value=(max(last - timedelta(days=13), known.first_day or last), last),
        min_value=known.first_day,
        max_value=last,
        key="costs_dates",
    )
    # While the user is between the two clicks of a range, the picker holds one date.
    days = list(picked) if isinstance(picked, tuple | list) else [picked]
    return days[0], days[-1]


def draw_section(
    section: CostSection | None, simulated: bool, report: CostReport, filters: Filters
) -> SpendSeries | None:
    """One kind of spend; returns the series it drew, for the HTML export to redraw."""
    kind = "simulated" if simulated else "real"
    if simulated:
        st.caption(charts.SIMULATED_NOTE)
    if section is None or section.empty:
        st.info(charts.no_runs(report, kind), icon="🗓️")
        return None
    widgets.show_metrics(charts.section_metrics(section, charts.versus(report)))
    if link := charts.costliest_run_link(section):
        st.caption(link)
    if note := charts.thin_note(section, report):
        st.warning(note, icon="⚠️")
    if note := charts.unpriced_note(section):
        st.warning(note, icon="⚠️")
    if note := charts.recommendation_note(section):
        st.success(f"**Recommendation:** {note}", icon="💡")
        offer_switch(section, simulated)

    # The title above its control: side by side, "Stack by" was clipped at 1024 px.
    title = st.empty()
    dimension = st.segmented_control(
        "Stack by",
        STACK_DIMENSIONS,
        default="model",
        required=True,
        format_func=str.capitalize,
        key=f"costs_stack_{kind}",
    )
    series = _series(str(home()), data_version(), filters, dimension)
    title.subheader(f"Spend per {series.grain} by {dimension}")
    if series.rows["simulated"].eq(simulated).any():
        st.altair_chart(charts.spend_chart(series, simulated), width="stretch")
    else:
        st.caption("No LLM calls in this period.")

    # One above the other: in half-width columns the tables and bar labels were cut off on
    # the right at 1024 px.
    for heading, items, name in [
        ("Top nodes", section.by_node, "node"),
        ("Top models", section.by_model, "model"),
    ]:
        st.subheader(heading)
        st.altair_chart(charts.breakdown_chart(items, name), width="stretch")
        table(charts.breakdown_table(items, name))
    with st.expander("By provider and by workflow"):
        table(charts.breakdown_table(section.by_provider, "provider"))
        table(charts.breakdown_table(section.by_workflow, "workflow"))
    return series


def offer_switch(section: CostSection, simulated: bool) -> None:
    """A model-switch recommendation opens on the Estimate page with the switch picked, to
    see its diff and apply it to the workflow file (or run it once)."""
    advice = section.recommendation
    if advice is None or advice.kind != "switch_model" or not advice.to_model:
        return
    path = workflow_file(advice.workflow)
    if path is None:
        return
    label = f"Apply: {advice.node} → {advice.to_model} (in Estimate)"
    if st.button(label, key=f"costs_apply_{simulated}", icon="🛠️"):
        if preset_model(path, advice.node, advice.to_model):
            st.switch_page("pages/2_Estimate.py")
        st.warning(f"{advice.to_model} is not offered for {advice.node}: pick it in Estimate.")


def table(frame: pd.DataFrame) -> None:
    st.dataframe(frame, hide_index=True, width="stretch", column_config=widgets.columns(frame))


st.title("💰 Costs")
known = _choices(str(home()), data_version())
if not known.workflows:
    st.info(
        "No runs recorded yet, so there is no spend to review. Run a workflow on the **Run** "
        "page (or `configurable-agents run FILE --simulate`), or fill weeks of simulated "
        "history with `configurable-agents demo`.",
        icon="🗂️",
    )
    st.stop()

filters = pick_filters(known)
report = _report(str(home()), data_version(), filters)
scope = filters.workflow or "all workflows"
st.caption(
    f"**{report.span.title}** · {scope} · deltas against the {charts.versus(report)} "
    f"({report.span.previous.dates})"
)
if report.empty:
    st.info(f"{charts.no_runs(report)} Widen the period or clear a filter.", icon="🗓️")
    st.stop()

exports = st.container(horizontal=True)
shown = TABS[True] if report.real is None or report.real.empty else TABS[False]
drawn: dict[bool, SpendSeries] = {}
for simulated, tab in zip(TABS, st.tabs(list(TABS.values()), default=shown), strict=True):
    with tab:
        section = report.simulated if simulated else report.real
        series = draw_section(section, simulated, report, filters)
        if series is not None:
            drawn[simulated] = series

stamp = f"{report.start:%Y%m%d}-{report.end - timedelta(days=1):%Y%m%d}"
with exports:
    st.download_button(
        "Download CSV",
        to_csv(report),
        file_name=f"costs-{stamp}.csv",
        mime="text/csv",
        icon="📄",
        on_click="ignore",
        help="Every breakdown of both kinds of spend as one flat table.",
    )
    st.download_button(
        "Export HTML report",
        _review(
            str(home()),
            data_version(),
            filters,
            tuple((kind, series.dimension) for kind, series in drawn.items()),
        ),
        file_name=f"cost-review-{stamp}.html",
        mime="text/html",
        icon="🖨️",
        on_click="ignore",
        help="This page's figures, charts and tables as one file that opens offline.",
    )

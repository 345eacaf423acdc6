"""Experiments: run variants of a workflow over a dataset and see whether a cheaper or faster
one is as good, with the statistics to back the decision.

Choose or edit an experiment file (checked as you type, every problem located), estimate it,
run it in the background (progress, spend and ETA live; picked up after a reload; cancel and
resume), then read the verdicts, the variant table with intervals, cost and latency against
score with the Pareto frontier, the differences against the baseline, and the items where
variants disagree. Export as CSV or a self-contained HTML file.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from core.app import experiment_charts as charts
from core.app import experiment_runs
from core.app.experiment_files import check, experiment_files
from core.app.experiment_html import experiment_html
from core.app.page import data_version, home, setup, simulate
from core.engine import arun_workflow
from core.experiments.errors import ExperimentError
from core.experiments.estimate import estimate_experiment
from core.experiments.loader import load_experiment
from core.experiments.records import ExperimentSummary, list_experiments, stored_source
from core.experiments.report import ExperimentReport, experiment_report
from core.experiments.report_render import primary_output, to_csv
from core.formatting import money
from core.resources import EXAMPLE_EXPERIMENTS
from core.settings import EXPERIMENTS_DIR

setup("Experiments", "🧪")

SHOWN = "experiment_shown"  # the experiment id the results section shows
JOB = "experiment_job"  # the key of the background experiment this session launched last
ADOPTED = "experiment_job_shown"  # the launch whose experiment the results were moved to
POLL_SECONDS = 1.0
ITEMS_ON_PAGE = 200  # the per-item view: the items where variants disagree most
RESUMABLE = ("interrupted", "cancelled", "budget_exceeded", "failed")
STATUS_ICONS = {"finished": "✅", "running": "⏳", "budget_exceeded": "💸", "cancelled": "⏹️"}


@st.cache_data(show_spinner=False, max_entries=16)
def _report(folder: str, experiment_id: str, version: str) -> ExperimentReport:
    return experiment_report(experiment_id, folder, items_shown=ITEMS_ON_PAGE)


@st.cache_data(show_spinner=False, max_entries=16)
def _review(folder: str, experiment_id: str, version: str) -> bytes:
    """The HTML report, as bytes handed to its button with the page. Built on click instead
    (a deferred download), it failed under load ("Download.path: canceled") whenever a rerun
    replaced the file id the browser still held; cached per data version, it is built once
    per experiment shown."""
    return experiment_html(_report(folder, experiment_id, version)).encode()


@st.cache_data(show_spinner=False)
def _experiments(folder: str, version: str) -> list[ExperimentSummary]:
    return list_experiments(Path(folder))


def _file_label(path: Path) -> str:
    return f"{path.stem} · {'example' if path.parent == EXAMPLE_EXPERIMENTS else 'yours'}"


# ---------------------------------------------------------------------------- define


def define() -> None:
    st.subheader("Experiment file")
    files = experiment_files(home())
    if not files:
        folder = home() / EXPERIMENTS_DIR
        st.info(f"No experiment files: write one (docs/experiments.md) into `{folder}`.")
        return
    path = st.selectbox("Experiment file", files, format_func=_file_label)
    text = st.text_area(
        "Experiment YAML",
        value=path.read_text(encoding="utf-8"),
        key=f"experiment_text:{path}",
        height=360,
        help="Edits apply to what you estimate and run here; paths inside resolve from the "
        "file's folder. Download keeps them.",
    )
    experiment, problems = check(path, text)
    if problems:
        count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
        items = "\n".join(f"- `{p.format()}`" for p in problems)
        st.error(f"**{count}**\n\n{items}", icon="🛑")
        return
    assert experiment is not None
    st.success(
        f"Valid: {len(experiment.variants)} variants × {len(experiment.items):,} items × "
        f"{experiment.spec.repeats} repeats = **{experiment.cells:,} cells**, baseline "
        f"`{experiment.baseline}`.",
        icon="✅",
    )
    for warning in experiment.warnings:
        st.warning(warning, icon="⚠️")
    estimate_col, run_col, download_col = st.columns(3)
    if estimate_col.button("Estimate cost", icon="🧮", width="stretch"):
        found = estimate_experiment(experiment, simulate=simulate(), run=arun_workflow, home=home())
        st.dataframe(charts.estimate_table(found), hide_index=True)
        st.markdown(
            f"**Estimated total {money(found.total.cost_usd)}** (range "
            f"{money(found.total.low)}..{money(found.total.high)}), from {found.estimated_items}"
            " items" + (" · simulated: what the calls would cost" if found.simulated else "")
        )
        for warning in found.warnings:
            st.warning(warning, icon="⚠️")
    if run_col.button("Run experiment", icon="▶️", type="primary", width="stretch"):
        job = experiment_runs.start(experiment, simulate=simulate(), home=home())
        st.session_state[JOB] = job.key
    download_col.download_button(
        "Download YAML",
        data=text,
        file_name=path.name,
        mime="application/x-yaml",
        icon="⬇️",
        on_click="ignore",
        width="stretch",
    )


# ---------------------------------------------------------------------------- running


@st.fragment(run_every=POLL_SECONDS)
def live() -> None:
    """Redraws itself while experiments of this server run; a full rerun once they end."""
    jobs = [job for job in experiment_runs.recent() if not job.done]
    if not jobs:
        if st.session_state.get("experiments_were_running"):
            st.session_state["experiments_were_running"] = False
            st.rerun()
        return
    st.session_state["experiments_were_running"] = True
    for job in jobs:
        progress = job.progress
        total = job.experiment.cells
        done = job.cells_done
        spend = money(progress.cost_usd) if progress else "$0"
        eta = progress.eta_seconds if progress else None
        pace = f" · ETA {eta:,.0f} s" if eta is not None else ""
        mode = " simulated" if job.simulate else ""
        st.progress(
            done / max(total, 1),
            text=f"⏳ **{job.experiment.name}** {job.experiment_id or ''}: {done:,} of {total:,}"
            f" cells · spend {spend}{mode} · {time.time() - job.started:,.0f} s{pace}",
        )
        st.button("Cancel", icon="⏹️", key=f"cancel:{job.key}", on_click=job.cancel)


def launched() -> None:
    """This session's last launch: shown in the results once it has an id; a refusal or an
    error said once it ends."""
    job = experiment_runs.get(st.session_state.get(JOB) or "")
    if job is None:
        return
    if job.experiment_id and st.session_state.get(ADOPTED) != job.key:
        st.session_state[SHOWN] = job.experiment_id
        st.session_state[ADOPTED] = job.key
    if job.done and job.error and not job.error.startswith("cancelled"):
        st.error(f"**The experiment could not run:** {job.error}", icon="🚫")
        if not job.simulate:
            st.info("To try it without a key, turn on **Simulated provider** in the sidebar.")


# ---------------------------------------------------------------------------- results


def _summary_label(summary: ExperimentSummary) -> str:
    icon = STATUS_ICONS.get(summary.status, "⚠️")
    mode = " · simulated" if summary.simulated else ""
    return (
        f"{icon} {summary.experiment_id} · {summary.cells_done:,}/{summary.cells:,} cells · "
        f"{summary.created_at:%d %b %H:%M}{mode}"
    )


def results() -> None:
    st.subheader("Results")
    found = _experiments(str(home()), data_version())
    if not found:
        st.info(
            "No experiment recorded yet: run one above, or fill the demo history with "
            "`configurable-agents demo`.",
            icon="🗂️",
        )
        return
    ids = [summary.experiment_id for summary in found]
    if st.session_state.get(SHOWN) not in ids:
        st.session_state[SHOWN] = ids[0]
    by_id = {summary.experiment_id: summary for summary in found}
    chosen = st.selectbox(
        "Experiment", ids, key=SHOWN, format_func=lambda i: _summary_label(by_id[i])
    )
    report = _report(str(home()), chosen, data_version())
    show_report(report)


def show_report(report: ExperimentReport) -> None:
    record = report.record
    mode = "simulated" if record.simulated else "real calls"
    spend = money(report.cost_usd) + (" simulated, nothing paid" if record.simulated else "")
    st.caption(
        f"`{record.workflow}` · {mode} · **{record.status}** · {report.cells_done:,} of "
        f"{record.cells:,} cells · {record.items:,} items × {len(record.variants)} variants × "
        f"{record.repeats} repeats · spend {spend} · margin {record.margin:g}"
    )
    for note in report.notes:
        st.info(note, icon="🧪" if record.simulated else "ℹ️")
    if record.status in RESUMABLE:
        st.warning(f"**{record.status.replace('_', ' ')}**: {record.error or ''}", icon="⚠️")
        st.button("Resume", icon="⏯️", on_click=resume, args=(record.file, record.experiment_id))
    if not report.cells_done:
        return
    st.markdown("##### Verdicts")
    for variant in report.variants:
        st.markdown(f"{charts.decision_icon(variant.decision)} {variant.verdict}")
    st.markdown("##### Variants")
    st.dataframe(
        charts.variant_table(report),
        hide_index=True,
        column_config={
            "p50 latency (ms)": st.column_config.NumberColumn(format="%.0f"),
            "p95 latency (ms)": st.column_config.NumberColumn(format="%.0f"),
        },
    )
    st.caption(
        "Scores: mean over items (95 % cluster-bootstrap interval) · paired difference against "
        "the baseline, * significant after Holm's correction. pass^k and pass@k are in the CSV."
    )
    axis = st.segmented_control(
        "Against score", ["cost", "latency"], default="cost", required=True, key="frontier_axis"
    )
    left, right = st.columns(2)
    with left:
        st.markdown(f"##### {axis.capitalize()} against {report.primary}")
        st.altair_chart(charts.frontier_chart(report, axis), width="stretch")
    with right:
        st.markdown("##### Differences against the baseline")
        st.altair_chart(charts.difference_chart(report), width="stretch")
    items(report)
    exports(report)


def items(report: ExperimentReport) -> None:
    st.markdown("##### Items")
    only = st.toggle("Only items where variants disagree", value=True)
    table = charts.item_table(report, disagreements_only=only)
    if table.empty:
        st.caption("Every variant agrees on every item shown.")
        return
    st.dataframe(table, hide_index=True)
    st.caption(
        f"{len(table)} items, where variants disagree most first (of "
        f"{report.items_total:,}); ✓/✗ per repeat on {report.primary}."
    )
    views = {view.item: view for view in report.items}
    item = st.selectbox("Expected vs actual for item", list(table["item"]), key="diff_item")
    view = views[item]
    target = next(s["node"] for s in report.record.scorers if s["name"] == report.primary)
    expected = ", ".join(str(v) for v in view.expected.values())
    for variant, cells in view.outputs.items():
        with st.expander(f"{variant}", expanded=variant == report.baseline):
            for cell in cells:
                output = primary_output(cell["output"], target)
                st.caption(f"repeat {cell['repeat']} · {cell['status']}")
                st.code(charts.expected_vs_actual(expected, output), language="diff")


def exports(report: ExperimentReport) -> None:
    record = report.record
    csv_col, html_col, _ = st.columns([1, 1, 2])
    csv_col.download_button(
        "Download CSV",
        data=to_csv(report),
        file_name=f"{record.experiment_id}.csv",
        mime="text/csv",
        icon="📄",
        on_click="ignore",
    )
    html_col.download_button(
        "Download HTML report",
        data=_review(str(home()), record.experiment_id, data_version()),
        file_name=f"{record.experiment_id}.html",
        mime="text/html",
        icon="🌐",
        on_click="ignore",
    )


def resume(file: str, experiment_id: str) -> None:
    """From the text it ran with (edits made here included), its paths from its file's
    folder."""
    try:
        experiment = load_experiment(file, text=stored_source(home(), experiment_id))
    except ExperimentError as exc:
        st.session_state["experiment_resume_error"] = str(exc)
        return
    job = experiment_runs.start(experiment, simulate=simulate(), home=home(), resume=experiment_id)
    st.session_state[JOB] = job.key


st.title("🧪 Experiments")
st.caption(
    "Run variants of a workflow over a dataset — other models, other prompts — and find out, "
    "with confidence intervals, whether a cheaper or faster one is as good before anyone "
    "switches. Every cell is an ordinary run: all other pages see it."
)
define()
live()
launched()
if error := st.session_state.pop("experiment_resume_error", None):
    st.error(f"**Cannot resume:** {error}", icon="🚫")
st.divider()
results()

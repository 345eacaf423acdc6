"""Compare: two sets of runs side by side (variants, workflow versions, tags or periods), with
the difference in cost per run, p50/p95 latency and success rate, each with its bootstrap
95 % interval, and a plain statement of which differences are real."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from core.analytics.compare import Comparison, RunSet, compare, parse_tag
from core.analytics.spend import Choices, RunGroups, Variant, Version, choices, run_groups
from core.app import charts
from core.app.page import data_version, home, setup

setup("Compare", "⚖️")

KINDS = {"All runs": None, "Real": False, "Simulated": True}
ALL_WORKFLOWS = "All workflows"
VARIANT, VERSION, TAG, PERIOD = "Variant", "Version", "Tag", "Period"
FEW_RUNS = 30  # below this a set's interval is wide enough to hide a real difference


@st.cache_data(show_spinner=False)
def _choices(folder: str, version: str) -> Choices:
    return choices(folder)


@st.cache_data(show_spinner=False, max_entries=32)
def _groups(folder: str, version: str, workflow: str | None, simulated: bool | None) -> RunGroups:
    return run_groups(folder, workflow, simulated)


@st.cache_data(show_spinner=False, max_entries=32)
def _compare(folder: str, version: str, a: RunSet, b: RunSet) -> Comparison:
    return compare(a, b, folder)


def default_workflow(known: Choices, groups: RunGroups) -> int:
    """The workflow of the first A/B experiment, if any: that is what this page is for."""
    if groups.variants:
        return 1 + known.workflows.index(groups.variants[0].workflow)
    return 1 if known.workflows else 0


def modes(groups: RunGroups) -> tuple[list[str], str]:
    """Ways to pick runs, and the one to start with: the first that can tell two sets apart
    on its own (it has two choices or more), else a period, which always can."""
    sizes = {VARIANT: len(groups.variants), VERSION: len(groups.versions), TAG: len(groups.tags)}
    default = next((mode for mode, size in sizes.items() if size >= 2), PERIOD)
    return [*(mode for mode, size in sizes.items() if size), PERIOD], default


def pick_set(
    side: str, column: DeltaGenerator, groups: RunGroups, workflow: str | None, kind: bool | None
) -> RunSet:
    """One side's runs. Each list offers the same choices to both sides; B starts on the
    second (the newest version for versions, listed newest first, and A on the one before)."""
    second = side == "B"
    with column:
        st.markdown(f"#### {side}")
        offered, default = modes(groups)
        # A list, not buttons: four buttons overflow a half-width column at 1024 px.
        mode = _choose(st.selectbox, "Runs by", offered, default, f"mode_{side}")
        base = RunSet(side, workflow=workflow, simulated=kind)
        if mode == VARIANT:
            variants = {(v.workflow, v.experiment, v.variant): v for v in groups.variants}
            key = _pick("Variant", variants, _variant_label, second, side)
            return replace(base, variant=key[2], experiment=key[1])
        if mode == VERSION:
            versions = {v.workflow_hash: v for v in groups.versions}
            key = _pick("Version", versions, _version_label, not second, side)
            return replace(base, workflow_hash=key)
        if mode == TAG:
            tags = dict(groups.tags)
            key = _pick("Tag", tags, lambda tag, runs: f"{tag} · {runs:,} runs", second, side)
            return replace(base, tag=parse_tag(key))
        start, end = _period(groups, second, side)
        return replace(base, start=start, end=end)


def _choose(
    widget: Callable[..., Any], label: str, options: list, default: Any, key: str, **extra: Any
) -> Any:
    """`widget` with its value held in session state rather than passed as a default, so
    that Swap can exchange the two sides' values; a value the options no longer hold (the
    workflow changed) falls back to `default`."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    return widget(label, options, key=key, **extra)


def _pick(label: str, found: dict, describe: Callable[..., str], second: bool, side: str) -> Any:
    """A key of `found`, shown as `describe(key, value)`."""
    options = list(found)
    default = options[1 if second and len(options) > 1 else 0]
    return _choose(
        st.selectbox,
        label,
        options,
        default,
        f"{label}_{side}",
        format_func=lambda option: describe(option, found[option]),
    )


def _variant_label(key: tuple[str, str | None, str], variant: Variant) -> str:
    experiment = f" · {variant.experiment}" if variant.experiment else ""
    return f"{variant.variant}{experiment} · {variant.workflow} · {variant.runs:,} runs"


def _version_label(key: str, version: Version) -> str:
    return f"{key[:8]} · {version.runs:,} runs · {version.first:%d %b} – {version.last:%d %b}"


def _period(groups: RunGroups, second: bool, side: str) -> tuple[datetime, datetime]:
    """B starts on the last 7 days with runs, A on the 7 days before them."""
    last = groups.last_day or date.today()
    first = groups.first_day or last
    key = f"dates_{side}"
    held = st.session_state.get(key)
    if not held or not all(first <= day <= last for day in held):
        end = last if second else last - timedelta(days=7)
        st.session_state[key] = (max(end - timedelta(days=6), first), max(end, first))
    picked = st.date_input("Dates", min_value=first, max_value=last, key=key)
    # Between the two clicks of a range the picker holds one date.
    days = list(picked) if isinstance(picked, tuple | list) else [picked]
    return datetime.combine(days[0], time()), datetime.combine(days[-1], time()) + timedelta(1)


def swap() -> None:
    """Exchanges everything A and B hold, so B becomes the baseline."""
    state = st.session_state
    for name in ("mode", "Variant", "Version", "Tag", "dates"):
        a, b = f"{name}_A", f"{name}_B"
        held_a, held_b = state.get(a), state.get(b)
        for key, value in ((a, held_b), (b, held_a)):
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value


def show_result(result: Comparison) -> None:
    if result.refusal:
        st.error(result.refusal, icon="🚫")
        return
    runs_a, runs_b, *_ = st.columns(4)
    runs_a.metric("Runs in A", f"{result.runs_a:,}", border=True)
    runs_b.metric("Runs in B", f"{result.runs_b:,}", border=True)
    for side, runs in (("A", result.runs_a), ("B", result.runs_b)):
        if runs < FEW_RUNS:
            st.warning(
                f"Set {side} has only {runs} run{'s' * (runs != 1)}: its intervals are wide, "
                f"so a real difference may not show as significant. Aim for {FEW_RUNS} or more.",
                icon="⚠️",
            )
    for note in result.notes:
        st.warning(note, icon="⚠️")
    if not result.metrics:
        return
    st.subheader("What differs")
    readings = [charts.verdict(metric) for metric in result.metrics]
    for kind, sentence in sorted(readings, key=lambda r: r[0] == "same"):
        icon = {"better": "✅", "worse": "❌", "same": "➖"}[kind]
        st.markdown(f"{icon} {sentence}")
    st.subheader("Differences with their 95 % intervals")
    st.caption(
        "Dot: B − A as observed. Bar: where the difference lies 95 % of the time when both sets "
        "are resampled (2,000 bootstrap draws). A bar that does not cross the dashed zero line "
        "is a significant difference; green is better for B, red is worse, grey is neither."
    )
    for panel in charts.delta_panels(result):
        st.altair_chart(panel, width="stretch")
    st.dataframe(charts.comparison_table(result), hide_index=True, width="stretch")


st.title("⚖️ Compare")
known = _choices(str(home()), data_version())
if not known.workflows:
    st.info(
        "No runs recorded yet, so there is nothing to compare. Run a workflow on the **Run** "
        "page (or `configurable-agents run FILE --simulate --tag variant=a`), or fill weeks of "
        "simulated history, A/B experiment included, with `configurable-agents demo`.",
        icon="🗂️",
    )
    st.stop()

every = _groups(str(home()), data_version(), None, None)
# Two columns, the swap below them: with it on their row "Kind" was clipped at 1024 px.
workflow_col, kind_col = st.columns(2, vertical_alignment="bottom")
choice = workflow_col.selectbox(
    "Workflow", [ALL_WORKFLOWS, *known.workflows], index=default_workflow(known, every)
)
kind = KINDS[kind_col.segmented_control("Kind", list(KINDS), default="All runs", required=True)]
st.button("⇄ Swap A and B", on_click=swap)
workflow = None if choice == ALL_WORKFLOWS else choice
groups = _groups(str(home()), data_version(), workflow, kind)

left, right = st.columns(2, border=True)
set_a = pick_set("A", left, groups, workflow, kind)
set_b = pick_set("B", right, groups, workflow, kind)
if set_a == replace(set_b, label="A"):
    st.info("A and B are the same runs: pick a different variant, version, tag or period.")
    st.stop()
show_result(_compare(str(home()), data_version(), set_a, set_b))

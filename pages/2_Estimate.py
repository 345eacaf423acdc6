"""Estimate: what a run will cost and how many tokens it will use, before spending anything,
and what it would cost with other models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from core.analytics.estimate import MIN_HISTORY, Estimate, estimate
from core.app import background
from core.app.editor_files import PATH_KEY, TEXT_KEY
from core.app.estimate_chart import cost_chart, node_table
from core.app.inputs_form import (
    CHOICE_KEY,
    EDITOR,
    choose_workflow,
    inputs_form,
    model_picker,
    reset_models,
    show_workflow_error,
)
from core.app.page import data_version, home, setup, simulate
from core.app.whatif_apply import Change, copy_problem, prepare, save
from core.errors import InputError, WorkflowError
from core.formatting import count, money, share
from core.workflow import Workflow, parse_workflow, with_models

setup("Estimate", "🧮")

# The estimator words its budget warnings this way; the budget panel shows them with figures.
BUDGET_WARNING_PREFIX = "the high estimate of"


@st.cache_data(show_spinner=False, max_entries=256)
def _estimate(
    source: str,
    filename: str,
    inputs: tuple[tuple[str, Any], ...],
    swaps: tuple[tuple[str, tuple[str, str]], ...],
    simulated: bool,
    folder: str,
    version: str,
) -> Estimate:
    """Cached per workflow text, inputs, models, data folder and telemetry version: flipping
    a what-if model back and forth costs nothing, and new runs (new history) refresh it."""
    workflow = with_models(parse_workflow(source, filename), dict(swaps))
    return estimate(workflow, dict(inputs), simulate=simulated, home=folder, inputs_from_text=True)


def run_estimate(
    workflow: Workflow, inputs: dict[str, Any], swaps: dict[str, tuple[str, str]]
) -> Estimate | None:
    try:
        return _estimate(
            workflow.source,
            workflow.filename,
            tuple(sorted(inputs.items())),
            tuple(sorted(swaps.items())),
            simulate(),
            str(home()),
            data_version(),
        )
    except InputError as exc:
        st.error(f"**Inputs:** {exc}", icon="🚫")
        return None


def cost_value(result: Estimate) -> str:
    """Unpriced nodes make the total a floor, and it says so; with none priced, unknown."""
    if result.cost_usd is not None and result.unpriced:
        return f"≥ {money(result.cost_usd)}"
    return money(result.cost_usd)


def change(now: float | None, before: float | None, fmt: Callable[[float], str]) -> dict[str, Any]:
    """A what-if delta for st.metric: green when it saves, red when it costs more."""
    if now is None or before is None or now == before:
        return {}
    sign = "+" if now > before else "-"
    return {
        "delta": f"{sign}{fmt(abs(now - before))} ({sign}{share(abs(now - before), before)})",
        "delta_description": "vs file",
        "delta_color": "inverse",
    }


def summary_cards(workflow: Workflow, result: Estimate, baseline: Estimate | None) -> None:
    cost, tokens, budget, calibration = st.columns(4)
    with cost.container(border=True, height="stretch"):
        st.metric(
            "Expected cost per run",
            cost_value(result),
            help="Mean over likely output lengths; input tokens are counted exactly.",
            **(change(result.cost_usd, baseline.cost_usd, money) if baseline else {}),
        )
        if result.cost_usd is not None:
            st.caption(f"Likely {money(result.cost_low)} – {money(result.cost_high)} (95 %)")
        else:
            st.caption("No node's model has a known price: add prices under `pricing:`.")
    with tokens.container(border=True, height="stretch"):
        st.metric(
            "Expected tokens",
            count(result.tokens),
            **(change(result.tokens, baseline.tokens, count) if baseline else {}),
        )
        st.caption(
            f"Likely {count(result.tokens_low)} – {count(result.tokens_high)} · "
            f"{count(result.input_tokens)} in + {count(result.output_tokens)} out"
        )
    with budget.container(border=True, height="stretch"):
        budget_fit(workflow, result)
    with calibration.container(border=True, height="stretch"):
        calibrated = sum(n.cached or n.history_runs >= MIN_HISTORY for n in result.nodes)
        st.metric("Nodes calibrated on past runs", f"{calibrated} of {len(result.nodes)}")
        st.caption(
            "Output lengths come from this node's history."
            if calibrated == len(result.nodes)
            else f"The others assume a wide default: {MIN_HISTORY} runs of a node narrow its range."
        )


def budget_fit(workflow: Workflow, result: Estimate) -> None:
    """Budgets are checked against the high estimate: the run stops at the budget, so the
    question is whether an unlucky run still fits."""
    settings = workflow.spec.workflow
    checks: list[tuple[bool | None, str]] = []
    if settings.max_tokens is not None:
        checks.append(
            (
                result.tokens_high <= settings.max_tokens,
                f"{count(result.tokens_high)} of max_tokens {count(settings.max_tokens)} "
                f"({share(result.tokens_high, settings.max_tokens)})",
            )
        )
    if settings.max_cost is not None:
        if result.unpriced or result.cost_high is None:
            checks.append((None, f"cost unknown: {len(result.unpriced)} node(s) unpriced"))
        else:
            checks.append(
                (
                    result.cost_high <= settings.max_cost,
                    f"{money(result.cost_high)} of max_cost {money(settings.max_cost)} "
                    f"({share(result.cost_high, settings.max_cost)})",
                )
            )
    help_text = "The high estimate compared with the workflow's max_tokens and max_cost."
    if not checks:
        st.metric("Budget fit", "No budget", help=help_text)
        st.caption("Set `max_tokens` or `max_cost` under `workflow:` to cap a run.")
        return
    if any(fits is False for fits, _ in checks):
        verdict, colour = "May exceed", "orange"
    elif any(fits is None for fits, _ in checks):
        verdict, colour = "Unknown", "gray"
    else:
        verdict, colour = "Fits", "green"
    st.metric(
        "Budget fit",
        verdict,
        delta="high estimate" if verdict != "Unknown" else "unpriced nodes",
        delta_color=colour,
        delta_arrow="off",
        help=help_text,
    )
    marks = {True: "✓", False: "⚠", None: "?"}
    st.caption("  \n".join(f"{marks[fits]} {text}" for fits, text in checks))


def callouts(result: Estimate) -> None:
    if result.unpriced:
        st.warning(
            f"**No known price for {', '.join(result.unpriced)}**: not included in the total, "
            "which is therefore a lower bound. Add the model under `pricing:` in the workflow.",
            icon="💲",
        )
    for warning in result.warnings:
        if not warning.startswith(BUDGET_WARNING_PREFIX):
            st.warning(warning, icon="⚠️")


def apply_panel(workflow: Workflow, swaps: dict[str, tuple[str, str]], inputs: dict) -> None:
    """The what-if as a change to the file: its diff, then save it (in place, or as a copy
    of an example) or run it once as it is, unsaved."""
    try:
        change = prepare(workflow, swaps)
    except WorkflowError as exc:
        show_workflow_error(exc)
        return
    st.markdown("##### Apply to the workflow")
    st.code(change.diff(), language="diff")
    save_column, run_column = st.columns(2, vertical_alignment="bottom")
    with save_column:
        if change.in_place:
            st.button(
                f"Save to {change.path.name}",
                on_click=_save,
                args=(workflow, change, None),
                icon="💾",
                type="primary",
            )
        else:
            stem = change.path.stem if change.path else workflow.name
            name = st.text_input("Save as a copy named", value=f"{stem}_whatif", key="whatif_copy")
            problem = copy_problem(name)
            if problem:
                st.caption(f":red[{problem}]")
            st.button(
                "Save as a copy",
                on_click=_save,
                args=(workflow, change, name),
                disabled=problem is not None,
                icon="💾",
                type="primary",
            )
    run_column.button(
        "Run once with these models",
        on_click=_run_once,
        args=(workflow, change, inputs),
        icon="▶️",
        help="Runs the changed workflow now without saving it; follow it on the Run page.",
    )


def _save(workflow: Workflow, change: Change, copy_name: str | None) -> None:
    """Writes the file and opens it in the Editor (and here), with the picker back on the
    file's models: they now are the what-if."""
    try:
        target = save(change, copy_name)
    except (WorkflowError, OSError) as exc:
        st.session_state["whatif_done"] = ("error", f"Not saved: {exc}")
        return
    st.session_state[TEXT_KEY] = target.read_text(encoding="utf-8")
    st.session_state[PATH_KEY] = str(target)
    st.session_state[CHOICE_KEY] = EDITOR
    reset_models(workflow)
    st.session_state["whatif_done"] = ("success", f"Saved to `{target}`.")


def _run_once(workflow: Workflow, change: Change, inputs: dict) -> None:
    changed = parse_workflow(change.text, workflow.filename)
    background.start(changed, inputs, simulate=simulate(), home=home())
    st.session_state["whatif_done"] = (
        "info",
        f"Started a run of {workflow.name} with these models (not saved): follow it on the "
        "**Run** page.",
    )


def details(result: Estimate, baseline: Estimate | None) -> None:
    st.dataframe(
        node_table(result, baseline),
        hide_index=True,
        column_config={
            "node": st.column_config.TextColumn(width="small", pinned=True),
            "model": st.column_config.TextColumn(width="medium"),
            "output length from": st.column_config.TextColumn(width="large"),
            "input tokens": st.column_config.NumberColumn(format="localized"),
            "output tokens": st.column_config.NumberColumn(
                format="localized", help="Expected output length"
            ),
            "cached": st.column_config.CheckboxColumn(
                help="The cache already holds this exact call: it would cost $0"
            ),
        },
    )


st.title("🧮 Estimate")
st.caption(
    "What a run will cost before you start it: input tokens counted exactly on the rendered "
    "prompts, output lengths from past runs of the same node (or a wide default without "
    "history), priced from LiteLLM's price map. Nothing is sent to a model."
)

workflow = choose_workflow()
if workflow is None:
    st.stop()
if workflow.spec.workflow.description:
    st.caption(workflow.spec.workflow.description)

with st.expander("Inputs", expanded=bool(workflow.spec.inputs)):
    inputs = inputs_form(workflow)

original = run_estimate(workflow, inputs, {})
if original is None:
    st.stop()
if not original.nodes:
    st.info("This workflow has no LLM nodes: running it calls no model and costs nothing.")
    st.stop()

summary = st.container()
chart_column, whatif_column = st.columns(2, gap="large")
with whatif_column, st.container(border=True):
    st.markdown("##### What if… another model")
    st.caption(
        "Pick another model for a node to re-price the run at once. Prices are USD per "
        "million tokens, input / output."
    )
    swaps = model_picker(workflow)
    st.button(
        "Reset to the file's models",
        on_click=reset_models,
        args=(workflow,),
        disabled=not swaps,
        icon="↩️",
    )
    if done := st.session_state.pop("whatif_done", None):
        getattr(st, done[0])(done[1])
    if swaps:
        apply_panel(workflow, swaps, inputs)

scenario = run_estimate(workflow, inputs, swaps) if swaps else original
if scenario is None:
    st.stop()
baseline = original if swaps else None

with summary:
    summary_cards(workflow, scenario, baseline)
    callouts(scenario)
with chart_column:
    st.markdown("##### Cost per node")
    st.caption(
        "Bars: expected cost · whiskers: likely range"
        + (" · black tick: the same node with the file's model" if baseline else "")
    )
    st.altair_chart(cost_chart(scenario, baseline), width="stretch")
st.markdown("##### Per node")
details(scenario, baseline)

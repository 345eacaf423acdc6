"""The Profile, Costs and Compare pages, driven through Streamlit's AppTest, and the queries,
charts and HTML export behind them.

History comes from the engine itself: simulated runs of a small fan-out workflow (zero
latency) in two variants, and real runs of the same DAG against a scripted OpenAI-compatible
server, one node on a model without a price.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from helpers import downloaded
from openai_server import OpenAIServer, Reply
from streamlit.testing.v1 import AppTest

from core import run_workflow
from core.analytics.compare import Comparison, MetricDelta, RunSet
from core.analytics.cost import cost_report
from core.analytics.cost_render import to_csv
from core.analytics.profile import profile
from core.analytics.runs import recent_runs
from core.analytics.spend import (
    STACK_DIMENSIONS,
    choices,
    node_latency,
    spend_over_time,
)
from core.app import charts
from core.app.html_export import cost_review_html
from core.formatting import money
from core.settings import DB_FILE
from core.telemetry import get_store
from core.workflow import parse_workflow

ROOT = Path(__file__).resolve().parents[1]
PROFILE = str(ROOT / "pages" / "4_Profile.py")
COSTS = str(ROOT / "pages" / "5_Costs.py")
COMPARE = str(ROOT / "pages" / "6_Compare.py")
PAGES = (PROFILE, COSTS, COMPARE)
SIMULATED_RUNS = 8  # four per variant
REAL_RUNS = 3

DAG = """\
inputs:
  topic: {type: string, required: true}
nodes:
  - name: plan
    prompt: "Plan a note about {inputs.topic}."
  - name: facts
    prompt: "Facts for: {plan}"
  - name: story
    prompt: "A story for: {plan}"
    llm: {model: STORY_MODEL}
  - name: merge
    prompt: "Merge {facts} and {story}"
edges:
  - {from: plan, to: facts}
  - {from: plan, to: story}
  - {from: facts, to: merge}
  - {from: story, to: merge}
"""
SIMULATED = (
    "workflow:\n  name: fanout\n"
    "  llm: {provider: openai, model: gpt-4o-mini, simulate: {latency_ms: 0}}\n"
) + DAG.replace("STORY_MODEL", "gpt-4o")
REAL = (
    "workflow:\n  name: fanout_live\n"
    '  llm: {provider: openai, model: gpt-4o-mini, api_base: "BASE"}\n'
) + DAG.replace("STORY_MODEL", "in-house-llm")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder with the history, made once; tests get a copy (see `history`)."""
    folder = tmp_path_factory.mktemp("analytics")
    simulated = parse_workflow(SIMULATED, "fanout.yaml")
    for i in range(SIMULATED_RUNS):
        variant = "a" if i % 2 else "b"
        run_workflow(
            simulated,
            {"topic": f"topic {i}"},
            simulate=True,
            home=folder,
            experiment="exp",
            variant=variant,
            tags={"team": "search"},
        )
    with OpenAIServer() as server:
        server.script(then=Reply.ok("An answer.", prompt_tokens=1000, completion_tokens=400))
        real = parse_workflow(REAL.replace("BASE", server.base_url), "fanout_live.yaml")
        for i in range(REAL_RUNS):
            assert run_workflow(real, {"topic": f"live {i}"}, home=folder).status == "success"
    get_store(folder).flush()
    return folder


@pytest.fixture
def history(recorded: Path, home: Path) -> Path:
    """`home` (the folder the pages read) holding a copy of the recorded history."""
    shutil.copy(recorded / DB_FILE, home / DB_FILE)
    return home


def page(path: str) -> AppTest:
    app = AppTest.from_file(path, default_timeout=60).run()
    assert not app.exception, app.exception[0].message if app.exception else ""
    return app


def charts_on(app: AppTest) -> list[object]:
    return list(app.get("arrow_vega_lite_chart")) + list(app.get("vega_lite_chart"))


def texts(app: AppTest) -> str:
    elements = [*app.info, *app.warning, *app.success, *app.caption, *app.markdown]
    return "\n".join(str(element.value) for element in elements)


# ----------------------------------------------------------------------------- empty


@pytest.mark.parametrize("path", PAGES)
def test_an_empty_database_gets_a_helpful_message(home: Path, path: str) -> None:
    app = page(path)
    message = next(i.value for i in app.info if "No runs recorded yet" in i.value)
    assert "configurable-agents demo" in message
    assert not charts_on(app)


# ----------------------------------------------------------------------------- costs


def test_costs_shows_real_and_simulated_spend_apart(history: Path) -> None:
    app = page(COSTS)
    report = cost_report(history, days=7)
    assert [tab.label for tab in app.tabs] == ["💵 Real spend", "🧪 Simulated spend"]
    real, simulated = ({metric.label: metric.value for metric in tab.metric} for tab in app.tabs)
    assert real["Total spend"] == money(report.real.runs.total_cost_usd)
    assert simulated["Total spend"] == money(report.simulated.runs.total_cost_usd)
    assert real["Runs"] == str(REAL_RUNS) and simulated["Runs"] == str(SIMULATED_RUNS)
    assert "What the simulated calls would have cost" in texts(app.tabs[1])
    # One node of the real workflow runs on a model with no price: called out, not $0.
    warning = "\n".join(w.value for w in app.tabs[0].warning)
    assert f"{REAL_RUNS} calls could not be priced (openai/in-house-llm)" in warning
    assert not app.tabs[1].warning
    assert "Recommendation" in "\n".join(s.value for s in app.tabs[0].success)
    # Spend over time, top nodes and top models in each tab.
    assert len(charts_on(app.tabs[0])) == 3 and len(charts_on(app.tabs[1])) == 3


def test_costs_filters_change_the_figures(history: Path) -> None:
    app = page(COSTS)
    models = next(box for box in app.multiselect if box.label == "Models")
    assert {"gpt-4o-mini", "gpt-4o", "in-house-llm"} <= set(models.options)
    models.select("gpt-4o").run()
    assert not app.exception
    report = cost_report(history, days=7, models=["gpt-4o"])
    simulated = {metric.label: metric.value for metric in app.tabs[1].metric}
    assert simulated["Total spend"] == money(report.simulated.runs.total_cost_usd)
    assert "No real runs" in app.tabs[0].info[0].value  # the real runs never used gpt-4o

    # The live workflow never called gpt-4o either: nothing at all to show, and it says so.
    workflow = next(box for box in app.selectbox if box.label == "Workflow")
    workflow.select("fanout_live").run()
    assert not app.exception and "fanout_live" in app.caption[0].value
    assert "No runs in the last 7 days. Widen the period or clear a filter." in texts(app)
    assert not app.tabs and not app.get("download_button")


def test_costs_custom_period_and_stacking(history: Path) -> None:
    app = page(COSTS)
    period = next(control for control in app.segmented_control if control.label == "Period")
    period.set_value("Custom").run()
    assert not app.exception
    assert any(picker.label == "Dates" for picker in app.date_input)
    stack = next(c for c in app.tabs[1].segmented_control if c.label == "Stack by")
    assert list(stack.options) == [d.capitalize() for d in STACK_DIMENSIONS]
    stack.set_value("node").run()
    assert not app.exception
    assert any("Spend per day by node" in str(h.value) for h in app.tabs[1].subheader)


def test_costs_csv_download_holds_the_report(history: Path, media: list) -> None:
    app = page(COSTS)
    button = next(b for b in app.get("download_button") if "CSV" in b.proto.label)
    assert downloaded(media, button) == to_csv(cost_report(history, days=7))


def test_costs_html_export_is_the_page_in_one_offline_file(history: Path, media: list) -> None:
    app = page(COSTS)
    button = next(b for b in app.get("download_button") if "HTML" in b.proto.label)
    document = downloaded(media, button)
    report = cost_report(history, days=7)
    assert document.startswith("<!DOCTYPE html>")
    assert "Real spend" in document and "Simulated spend" in document
    assert money(report.real.runs.total_cost_usd) in document
    assert money(report.simulated.runs.total_cost_usd) in document
    assert "could not be priced (openai/in-house-llm)" in document
    # Both kinds of spend: over time, top nodes and top models, drawn as inline SVG.
    assert document.count("<svg") == 6
    assert "<script" not in document and "http" not in document.split("<svg")[0]
    assert "fanout/merge" not in document  # one workflow per kind: nodes keep short names
    assert "<td>merge</td>" in document


# ----------------------------------------------------------------------------- profile


def test_profile_shows_nodes_latency_path_and_advice(history: Path) -> None:
    app = page(PROFILE)
    result = profile(history, workflow="fanout_live", last=20)  # the latest run's workflow
    assert app.selectbox[0].value == "fanout_live"
    table = app.dataframe[0].value
    assert list(table["Node"]) == ["plan", "facts", "story", "merge"]
    assert set(table["Status"]) <= set(charts.STATUS_BADGES.values())
    assert list(table["p95 ms"]) == [round(n.p95_ms) for n in result.nodes]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Runs profiled"] == str(REAL_RUNS)
    assert " → ".join(result.critical_path) in texts(app)
    assert len(charts_on(app)) == 2  # latency boxes, critical path and slack
    assert any(h.value == "Recommendations" for h in app.subheader)


def test_profile_one_run_and_other_workflow(history: Path) -> None:
    app = page(PROFILE)
    app.selectbox[0].select("fanout").run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Runs profiled"] == str(SIMULATED_RUNS)
    mode = next(c for c in app.segmented_control if c.label == "Profile")
    mode.set_value("One run").run()
    assert not app.exception
    latest = recent_runs(history, "fanout")[0]
    run = next(box for box in app.selectbox if box.label == "Run")
    assert run.value == latest.run_id
    assert {m.label: m.value for m in app.metric}["Runs profiled"] == "1"
    kind = next(c for c in app.segmented_control if c.label == "Runs")
    kind.set_value("Real").run()
    assert not app.exception
    assert "Nothing to profile" in texts(app)  # fanout only ran simulated


# ----------------------------------------------------------------------------- compare


def test_compare_defaults_to_the_experiments_variants(history: Path) -> None:
    app = page(COMPARE)
    assert next(b for b in app.selectbox if b.label == "Workflow").value == "fanout"
    assert [b.value[2] for b in app.selectbox if b.label == "Variant"] == ["a", "b"]
    table = app.dataframe[0].value
    assert list(table["Metric"]) == ["cost per run", "p50 latency", "p95 latency", "success rate"]
    warnings = "\n".join(w.value for w in app.warning)
    assert "Set A has only 4 runs" in warnings and "Set B has only 4 runs" in warnings
    assert len(charts_on(app)) == 4  # one difference chart per metric
    assert "No significant difference in success rate" in texts(app)


def test_compare_swap_and_other_ways_to_pick(history: Path) -> None:
    app = page(COMPARE)
    next(b for b in app.button if "Swap" in b.label).click().run()
    assert not app.exception
    assert [b.value[2] for b in app.selectbox if b.label == "Variant"] == ["b", "a"]
    mode = app.selectbox(key="mode_B")
    mode.select("Period").run()
    assert not app.exception
    assert any(picker.label == "Dates" for picker in app.date_input)
    workflow = next(b for b in app.selectbox if b.label == "Workflow")
    workflow.select("fanout_live").run()  # one version, one tag: only periods tell apart
    assert not app.exception
    modes = {side: app.selectbox(key=side).value for side in ("mode_A", "mode_B")}
    assert modes == {"mode_A": "Period", "mode_B": "Period"}
    # All of the history is from today, so both default periods are today: said, not compared.
    assert "A and B are the same runs" in texts(app)


# ----------------------------------------------------------------------------- core


def test_spend_over_time_adds_up_to_the_cost_report(history: Path) -> None:
    report = cost_report(history, days=7)
    for dimension in STACK_DIMENSIONS:
        series = spend_over_time(history, dimension=dimension, days=7)
        for section in report.sections:
            rows = series.rows[series.rows["simulated"] == section.simulated]
            by_key = rows.groupby("key")["cost_usd"].sum()
            expected = {b.key: b.cost_usd or 0 for b in getattr(section, f"by_{dimension}")}
            assert by_key.to_dict() == pytest.approx(expected)
            days = rows.groupby(rows["period"].dt.date.astype(str))["cost_usd"].sum()
            assert days.to_dict() == pytest.approx({b.key: b.cost_usd for b in section.by_day})


def test_spend_over_time_folds_small_keys_into_other(history: Path) -> None:
    series = spend_over_time(history, dimension="node", days=7, simulated=True, top=2)
    keys = set(series.rows["key"])
    assert len(keys) == 3 and "2 other nodes" in keys
    assert series.rows.loc[series.rows["key"] == "2 other nodes", "other"].all()
    assert series.grain == "day"
    assert spend_over_time(history, dimension="model", days=200).grain == "week"
    with pytest.raises(ValueError, match="dimension"):
        spend_over_time(history, dimension="colour")


def test_pickers_and_latency_quantiles(history: Path) -> None:
    known = choices(history)
    assert known.workflows == ["fanout_live", "fanout"]  # latest run first
    assert known.providers == ["openai"]
    assert {model for _, model in known.models} == {"gpt-4o", "gpt-4o-mini", "in-house-llm"}
    assert known.first_day == known.last_day == datetime.now(UTC).date()
    runs = [r.run_id for r in recent_runs(history, "fanout")]
    assert len(runs) == SIMULATED_RUNS
    quantiles = node_latency(history, "fanout", runs).set_index("node")
    result = profile(history, workflow="fanout", last=SIMULATED_RUNS)
    for node in result.nodes:
        row = quantiles.loc[node.name]
        assert row["calls"] == SIMULATED_RUNS
        assert row["min"] <= row["p25"] <= row["p50"] <= row["p75"] <= row["p95"] <= row["max"]
        assert row["p50"] == pytest.approx(node.p50_ms) and row["p95"] == pytest.approx(node.p95_ms)


def test_spend_chart_stacks_largest_first(history: Path) -> None:
    series = spend_over_time(history, dimension="node", days=7)
    chart = charts.spend_chart(series, simulated=True)
    data = chart.data
    assert len(data) < 5000
    for _, day in data.groupby("period"):
        assert day["bottom"].iloc[0] == 0
        assert list(day["top"]) == pytest.approx(list(day["cost_usd"].cumsum()))
    assert (
        chart.to_dict()["encoding"]["color"]["sort"][0]
        == data.groupby("key")["cost_usd"].sum().idxmax()
    )


@pytest.mark.parametrize(
    ("metric", "verdict"),
    [
        (MetricDelta("cost per run", "usd", 0.2, 0.1, -0.1, -0.12, -0.08), "better"),
        (MetricDelta("p95 latency", "ms", 900, 1200, 300, 100, 500), "worse"),
        (MetricDelta("success rate", "share", 0.9, 0.97, 0.07, 0.02, 0.12), "better"),
        (MetricDelta("p50 latency", "ms", 900, 920, 20, -40, 80), "same"),
    ],
)
def test_verdicts_know_which_way_is_better(metric: MetricDelta, verdict: str) -> None:
    kind, sentence = charts.verdict(metric)
    assert kind == verdict
    assert sentence.endswith("significant.") != (verdict == "same")
    comparison = Comparison(RunSet("A"), RunSet("B"), 50, 50, [metric])
    assert charts.comparison_table(comparison)["Verdict"][0].startswith(
        {"better": "✅", "worse": "❌", "same": "➖"}[verdict]
    )
    assert len(charts.delta_panels(comparison)) == 1


def test_html_export_escapes_and_stands_alone(history: Path) -> None:
    report = cost_report(history, days=7, models=["in-house-llm"])
    moment = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    document = cost_review_html(report, {}, generated=moment)
    assert "Generated by configurable-agents on 2026-01-02 03:04 UTC" in document
    assert "models: in-house-llm" in document
    assert "unpriced" in document  # every call of that model: no spend figure, not $0
    assert "<svg" in document  # top nodes and models, even without a series

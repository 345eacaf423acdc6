"""The Estimate and Run pages, driven through Streamlit's AppTest as a user would drive them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.analytics.estimate import estimate
from core.app.estimate_chart import chart_rows
from core.app.gantt import OFF_PATH, ON_PATH, schedule, timeline_rows
from core.engine.results import NodeResult
from core.workflow import parse_workflow

ROOT = Path(__file__).resolve().parents[1]
ESTIMATE = str(ROOT / "pages" / "2_Estimate.py")
RUN = str(ROOT / "pages" / "3_Run.py")

FAST = """\
workflow:
  name: fast_fanout
  llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0}}
inputs:
  topic: {type: string, required: true, description: What to write about}
nodes:
  - name: plan
    prompt: "Plan a note about {inputs.topic}."
  - name: facts
    prompt: "Facts for: {plan}"
    output: json
    schema: {facts: string, count: integer}
  - name: story
    prompt: "A story for: {plan}"
  - name: merge
    prompt: "Merge {facts.facts} and {story}"
edges:
  - {from: plan, to: facts}
  - {from: plan, to: story}
  - {from: facts, to: merge}
  - {from: story, to: merge}
outputs: [facts, merge]
"""

BROKEN = """\
workflow:
  name: broken
nodes:
  - name: a
    promt: "typo in the key"
"""


def page(path: str, workflow_text: str | None = None, **state: object) -> AppTest:
    app = AppTest.from_file(path, default_timeout=60)
    if workflow_text is not None:
        app.session_state["workflow_text"] = workflow_text
    for key, value in state.items():
        app.session_state[key] = value
    return app.run()


def errors(app: AppTest) -> str:
    return "\n".join(str(element.value) for element in app.error)


def charts(app: AppTest) -> list[object]:
    return list(app.get("vega_lite_chart"))


def dag_rows(app: AppTest) -> bytes:
    """The Arrow data of the DAG chart (the one with a node selection): names and states."""
    graph = next(c.proto for c in app.get("vega_lite_chart") if '"name": "node"' in c.proto.spec)
    return b"".join(d.data.data for d in graph.datasets)


def run_until_done(app: AppTest, seconds: float = 20) -> AppTest:
    """The run goes on in a thread of this process; rerun the page as the browser would."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not app.get("progress"):
            return app
        time.sleep(0.1)
        app.run()
    raise AssertionError("the run did not finish in time")


def metric(app: AppTest, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


# --- Estimate ---------------------------------------------------------------------------


def test_estimate_page_renders_the_default_workflow(home: Path) -> None:
    app = page(ESTIMATE)
    assert not app.exception
    assert app.selectbox(key="workflow_choice").value.endswith("article_writer.yaml")
    assert [t.label for t in app.text_input][:2] == ["topic :red[*]", "audience"]
    assert app.number_input[0].value == 600
    assert charts(app), "the per-node cost chart is drawn"


def test_estimate_shows_metrics_and_a_row_per_node(home: Path) -> None:
    app = page(ESTIMATE)
    app.text_input[0].input("tidal energy").run()
    assert not app.exception and not app.error
    assert metric(app, "Expected cost per run").startswith("$")
    assert metric(app, "Budget fit") == "No budget"
    table = app.dataframe[0].value
    assert list(table["node"]) == ["outline", "draft", "polish", "headline"]
    assert list(table["model"])[1] == "openai/gpt-4o"
    assert {"cost", "cost range", "input tokens", "output tokens", "cached"} <= set(table)


def test_changing_a_node_model_re_estimates_against_the_file(home: Path) -> None:
    app = page(ESTIMATE)
    app.text_input[0].input("tidal energy").run()
    before = metric(app, "Expected cost per run")
    app.selectbox(key="whatif:article_writer:draft:openai:model").select("gpt-4o-mini").run()
    assert not app.exception
    after = next(m for m in app.metric if m.label == "Expected cost per run")
    assert after.value != before
    assert after.delta.startswith("-"), "gpt-4o-mini is cheaper than gpt-4o"
    table = app.dataframe[0].value
    assert table["model"][1] == "openai/gpt-4o-mini"
    assert "vs gpt-4o" in table["change vs file"][1]


def test_estimate_budget_fit_uses_the_high_estimate(home: Path) -> None:
    app = page(ESTIMATE)
    app.selectbox(key="workflow_choice").select(
        next(o for o in app.selectbox(key="workflow_choice").options if "budgeted" in o)
    ).run()
    assert metric(app, "Budget fit") in {"Fits", "May exceed"}
    assert any("max_tokens 6,000" in c.value for c in app.caption)


def test_estimate_reports_a_broken_workflow_with_its_location(home: Path) -> None:
    app = page(ESTIMATE, BROKEN)
    assert not app.exception
    assert "**5:5**" in errors(app) and "promt" in errors(app)


# --- Run ----------------------------------------------------------------------------------


def test_run_page_renders_the_default_workflow(home: Path) -> None:
    app = page(RUN)
    assert not app.exception
    assert app.button(key="run").label == "Run"
    assert app.checkbox[0].label == "Use the response cache"
    assert app.text_input[0].label == "topic :red[*]"


def test_a_simulated_run_completes_and_shows_its_results(home: Path) -> None:
    app = page(RUN, FAST)
    app.text_input[0].input("tides")
    app.button(key="run").click().run()
    run_until_done(app)
    assert not app.exception and not app.error
    assert "Succeeded" in app.success[0].value
    assert [tab.label for tab in app.tabs] == ["facts", "merge"]
    facts = json.loads(app.tabs[0].json[0].value)
    assert set(facts) == {"facts", "count"}, "a json output is shown as JSON"
    nodes = app.dataframe[0].value
    assert list(nodes["node"]) == ["plan", "facts", "story", "merge"]
    assert all(status.endswith("success") for status in nodes["status"])
    assert charts(app), "the Gantt timeline is drawn"
    assert any("Critical path: **plan →" in c.value for c in app.caption)
    assert metric(app, "Nodes done") == "4 / 4"


def test_a_missing_required_input_is_an_error_message(home: Path) -> None:
    app = page(RUN, FAST)
    app.button(key="run").click().run()
    assert not app.exception
    assert "missing required input 'topic'" in errors(app)
    assert not app.get("progress"), "no run was started"


def test_a_missing_api_key_names_the_variable(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A key named by api_key_env is checked without importing LiteLLM (seconds): same path.
    monkeypatch.setenv("CONFIGURABLE_AGENTS_KEY_VARIABLES", "CA_TEST_KEY")
    real = FAST.replace(
        "provider: simulated",
        "provider: openai, api_base: 'http://127.0.0.1:9/v1', api_key_env: CA_TEST_KEY",
    )
    app = page(RUN, real, simulate=False)
    app.text_input[0].input("tides")
    app.button(key="run").click().run()
    run_until_done(app)
    assert not app.exception
    assert "CA_TEST_KEY is not set" in errors(app)
    assert any("Simulated provider" in i.value for i in app.info)


def test_a_reloaded_page_picks_up_the_run_and_can_cancel_it(home: Path) -> None:
    slow = FAST.replace("latency_ms: 0", "latency_ms: 3000")
    app = page(RUN, slow)
    app.text_input[0].input("tides")
    app.button(key="run").click().run()
    assert app.get("progress"), "live progress while the run goes"
    states = app.dataframe[0].value
    assert states["state"][0] in {"waiting", "running"}  # the thread may not be there yet
    assert list(states["state"][1:]) == ["waiting"] * 3
    assert b"pending" in dag_rows(app) and b"ok \xc2\xb7" not in dag_rows(app)  # the live DAG

    reloaded = page(RUN)  # a new session, as after a browser reload
    assert reloaded.selectbox(key="run_shown").value == app.selectbox(key="run_shown").value
    assert reloaded.get("progress")
    next(b for b in reloaded.button if b.label == "Cancel run").click().run()
    run_until_done(reloaded, seconds=10)
    assert "Cancelled" in reloaded.warning[0].value


def test_run_page_reports_a_broken_workflow_with_its_location(home: Path) -> None:
    app = page(RUN, BROKEN)
    assert not app.exception
    assert "**5:5**" in errors(app)


# --- chart data ---------------------------------------------------------------------------


def _node(name: str, start: float, seconds: float) -> NodeResult:
    origin = datetime(2025, 1, 1, tzinfo=UTC)
    return NodeResult(
        name=name,
        node_type="llm",
        status="success",
        started_at=origin + timedelta(seconds=start),
        finished_at=origin + timedelta(seconds=start + seconds),
        duration_ms=seconds * 1000,
        provider="openai",
        model="gpt-4o-mini",
    )


def test_timeline_marks_the_longest_branch_as_critical() -> None:
    workflow = parse_workflow(FAST)
    nodes = {
        "plan": _node("plan", 0, 1),
        "facts": _node("facts", 1, 3),
        "story": _node("story", 1, 1),
        "merge": _node("merge", 4, 1),
    }
    rows = timeline_rows(workflow, nodes, schedule(workflow, nodes))
    assert list(rows["node"]) == ["plan", "facts", "story", "merge"]
    assert dict(zip(rows["node"], rows["path"], strict=True)) == {
        "plan": ON_PATH,
        "facts": ON_PATH,
        "story": OFF_PATH,
        "merge": ON_PATH,
    }
    assert list(rows["start"]) == [0, 1, 1, 4]
    assert rows["slack"][2] == "2.00 s"


def test_cost_chart_labels_unpriced_nodes_instead_of_zero(home: Path) -> None:
    workflow = parse_workflow(FAST.replace("model: gpt-4o-mini", "model: my-own-model"))
    rows = chart_rows(estimate(workflow, {"topic": "x"}, home=home))
    assert set(rows["label"]) == {"unpriced"}
    assert rows["cost"].isna().all()

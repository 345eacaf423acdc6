"""The Runs page: its filters as SQL (each alone, pages, bad values), and the page through
Streamlit's AppTest: the list and a filter change, a bad filter, /runs?run=ID opening a run
with its stored prompts and responses, a run that stored none, and an id nobody has.

Rows are written through the real bulk path or by real runs of the engine (simulated
provider) into a real DuckDB file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers import D1, D2, ROOT, make_node, make_run, write_rows
from streamlit.testing.v1 import AppTest

from core import load_workflow, run_workflow
from core.analytics.run_detail import RunNotFound, run_detail
from core.analytics.run_search import RunFilters, SearchError, filter_choices, search_runs

PAGE = str(ROOT / "pages" / "8_runs.py")
WORKFLOW = """
workflow:
  name: explained
  llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0}}
  SETTINGS
inputs:
  topic: {type: string, required: true}
nodes:
  - name: facts
    system: You are concise.
    prompt: "List facts about {inputs.topic}."
  - name: summary
    prompt: "Summarise: {facts}"
"""


def _history(home: Path) -> None:
    """Six runs: two workflows, every status kind, tags, real and simulated, on two days."""
    runs = [
        make_run("a1", D1, 0.010, tags='{"team": "search"}', duration_ms=2000.0),
        make_run("a2", D1, 0.020, status="failed", error="node 'x' failed: boom"),
        make_run("a3", D2, 0.030, simulated=True, tags='{"team": "support"}'),
        make_run("b1", D2, 0.500, workflow="other", duration_ms=9000.0),
        make_run("b2", D1 + timedelta(hours=1), None, workflow="other", status="budget_exceeded"),
        make_run("b3", D2 - timedelta(days=3), 0.001, workflow="other", simulated=True),
    ]
    write_rows(home, runs=runs, nodes=[make_node("a1", "x", D1)])


def _ids(filters: RunFilters, **options: int) -> list[str]:
    return [row.run_id for row in search_runs(filters, **options).rows]


def test_each_filter_is_applied_in_the_database(home: Path) -> None:
    _history(home)
    assert _ids(RunFilters()) == ["b2", "a1", "a2", "a3", "b1", "b3"]
    assert _ids(RunFilters(workflows=("other",))) == ["b2", "b1", "b3"]
    assert _ids(RunFilters(statuses=("failed", "budget_exceeded"))) == ["b2", "a2"]
    assert _ids(RunFilters(tag="team=search")) == ["a1"]
    assert _ids(RunFilters(tag="team")) == ["a1", "a3"]
    assert _ids(RunFilters(first_day=D1.date(), last_day=D1.date())) == ["b2", "a1", "a2"]
    assert _ids(RunFilters(simulated=True)) == ["a3", "b3"]
    assert _ids(RunFilters(min_cost=0.015, max_cost=0.5)) == ["a2", "a3", "b1"]
    assert _ids(RunFilters(min_seconds=1.5, max_seconds=9)) == ["a1", "b1"]
    first = search_runs(RunFilters(), limit=2)
    page = search_runs(RunFilters(), after=first.cursor, limit=3)
    assert [r.run_id for r in page.rows] == ["a2", "a3", "b1"] and page.total == 6
    tied = search_runs(RunFilters(), after=(D1, "a1"), limit=1)  # a1 and a2 start together
    assert [r.run_id for r in tied.rows] == ["a2"]
    choices = filter_choices()
    assert choices.workflows == ["digest", "other"]
    assert choices.tags == ["team=search", "team=support"]


def test_filters_that_cannot_hold_name_themselves(home: Path) -> None:
    _history(home)
    with pytest.raises(SearchError, match="cost: the minimum 2 is above the maximum 1"):
        search_runs(RunFilters(min_cost=2, max_cost=1))
    with pytest.raises(SearchError, match="period:"):
        search_runs(RunFilters(first_day=D1.date(), last_day=D2.date()))
    with pytest.raises(SearchError, match="tag:"):
        search_runs(RunFilters(tag="=x"))


def _page(query: dict[str, str] | None = None) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.query_params.update(query or {})
    app.run()
    assert not app.exception, app.exception[0].message if app.exception else ""
    return app


def _captions(app: AppTest) -> str:
    return "\n".join(c.value for c in app.caption)


def test_the_list_filters_and_refuses_a_bad_range(home: Path) -> None:
    _history(home)
    app = _page()
    assert "**6** runs match" in _captions(app)
    app.multiselect[0].select("other").run()
    assert "**3** runs match" in _captions(app)
    assert list(app.dataframe[0].value["run_id"]) == ["b2", "b1", "b3"]
    low, high = app.number_input[0], app.number_input[1]
    low.set_value(2.0)
    high.set_value(1.0).run()
    assert "cost: the minimum 2 is above the maximum 1" in app.error[0].value


def test_the_list_pages_through_the_runs(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _history(home)
    monkeypatch.setattr("core.analytics.run_search.PAGE_SIZE", 4)
    app = _page()
    assert list(app.dataframe[0].value["run_id"]) == ["b2", "a1", "a2", "a3"]
    app.button[1].click().run()  # Older →
    assert list(app.dataframe[0].value["run_id"]) == ["b1", "b3"]
    assert "showing 5–6" in _captions(app)
    app.button[0].click().run()  # ← Newer
    assert "showing 1–4" in _captions(app)


def test_a_run_opens_at_its_address_with_what_each_node_sent_and_received(home: Path) -> None:
    workflow = load_workflow(WORKFLOW.replace("SETTINGS", ""))
    result = run_workflow(workflow, {"topic": "tides"}, home=home)
    app = _page({"run": result.run_id})
    assert app.title[0].value == "🔎 explained · success"
    assert f"runs?run={result.run_id}" in _captions(app)
    shown = [block.value for block in app.code]
    assert "List facts about tides." in shown and "You are concise." in shown
    assert result.nodes["facts"].output in shown
    assert any(c.value.startswith("Cache key `") for c in app.caption)
    assert {t.label for t in app.tabs} == {"summary"}  # the output, from the stored response
    graph = next(c.proto for c in app.get("vega_lite_chart") if '"name": "node"' in c.proto.spec)
    rows = b"".join(d.data.data for d in graph.datasets)  # the DAG's nodes and edges, as Arrow
    assert b"facts" in rows and b"summary" in rows and b"ok \xc2\xb7" in rows  # state · time
    app.selectbox(key="runs_node").set_value("summary").run()
    assert f"Summarise: {result.nodes['facts'].output}" in [block.value for block in app.code]


def test_a_run_without_stored_content_says_so(home: Path) -> None:
    workflow = load_workflow(WORKFLOW.replace("SETTINGS", "telemetry: {store_content: false}"))
    result = run_workflow(workflow, {"topic": "tides"}, home=home)
    app = _page({"run": result.run_id[:10]})  # a prefix is enough
    assert app.title[0].value == "🔎 explained · success"
    assert any("store_content is off" in i.value for i in app.info)
    assert not app.code
    assert app.dataframe[0].value["node"].tolist() == ["facts", "summary"]


def test_an_unknown_run_is_a_clear_error(home: Path) -> None:
    _history(home)
    app = _page({"run": "feedfacefeed"})
    assert "no run has the id 'feedfacefeed'" in app.error[0].value
    with pytest.raises(RunNotFound, match="at least 6 characters"):
        run_detail("a1")

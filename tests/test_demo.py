"""Demo history: the right amount, marked simulated, and consistent with the engine's rules
(prices, prompts, DAG timing, budgets, cache) so the pages built on it tell the truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from helpers import litellm_cost

from core.catalog.tokens import count_message_tokens
from core.cli import app_command as app_launcher
from core.cli import main
from core.demo import experiment as demo_experiment
from core.demo import history as demo
from core.engine.llm_node import build_request
from core.telemetry import get_store
from core.workflow import load_workflow
from core.workflow.templates import TemplateValues

NOW = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)

PRICED_AND_UNPRICED = """
workflow:
  name: mixed_prices
  llm: {provider: openai, model: gpt-4o-mini, max_output_tokens: 300}
inputs:
  topic: {type: string, required: true}
nodes:
  - name: draft
    prompt: "Write about {inputs.topic}."
  - name: local
    prompt: "Critique: {draft}"
    llm: {model: in-house-llm}
  - name: tuned
    prompt: "Rewrite {draft} using {local}"
    llm: {model: my-finetune}
pricing:
  my-finetune: {input_per_million: 0.30, output_per_million: 1.20}
"""


@pytest.fixture(scope="module")
def examples() -> list:
    return demo.example_workflows()


@pytest.fixture(scope="module")
def history(examples: list) -> dict[str, pd.DataFrame]:
    """Two weeks of demo history as DataFrames, generated once for the read-only checks."""
    tables = demo.generate(examples, days=14, runs_per_day=40, seed=11, now=NOW)
    return {name: table.to_pandas() for name, table in tables.items()}


def _utc(moment: datetime) -> pd.Timestamp:
    return pd.Timestamp(moment.astimezone(UTC).replace(tzinfo=None))


def test_fills_the_requested_runs_over_the_requested_days(home: Path) -> None:
    now = datetime.now(UTC)
    summary = demo.seed_demo(home, days=3, runs_per_day=25, seed=1, now=now)
    assert summary.runs == 75
    runs = get_store(home).query_df("SELECT * FROM runs")
    nodes = get_store(home).query_df("SELECT * FROM node_runs")
    assert len(runs) == 75 and len(nodes) == summary.node_rows
    assert runs.started_at.min() >= _utc(now - timedelta(days=3))
    assert runs.finished_at.max() <= _utc(now)  # no run is still going
    assert runs.started_at.dt.date.nunique() >= 3  # spread over the days, not bunched up
    assert runs.simulated.all() and nodes.simulated.all()
    assert all(json.loads(tags)["source"] == "demo" for tags in runs.tags)
    assert set(nodes.run_id) <= set(runs.run_id)
    assert runs.run_id.is_unique


def test_every_example_workflow_is_recorded_with_its_version(home: Path, examples: list) -> None:
    demo.seed_demo(home, days=2, runs_per_day=40, seed=1, now=NOW)
    versions = get_store(home).query_df("SELECT * FROM workflows")
    assert sorted(versions.workflow) == sorted(w.name for w in examples)
    for workflow in examples:
        row = versions[versions.workflow == workflow.name].iloc[0]
        assert row.workflow_hash == workflow.hash and row.source == workflow.source


def test_costs_are_litellms_price_of_the_tokens(
    history: dict[str, pd.DataFrame], examples: list
) -> None:
    nodes = history["node_runs"]
    for workflow in examples:
        overrides = workflow.spec.pricing
        called = nodes[
            (nodes.workflow == workflow.name)
            & (nodes.node_type == "llm")
            & (nodes.status == "success")
            & ~nodes.cache_hit
        ]
        for row in called.itertuples():
            if row.model in overrides:
                price = overrides[row.model]
                expected = (
                    row.input_tokens * price.input_per_million
                    + row.output_tokens * price.output_per_million
                ) / 1e6
            else:
                expected = litellm_cost(
                    row.provider, row.model, row.input_tokens, row.output_tokens
                )
            assert row.cost_usd == pytest.approx(expected, rel=1e-12)


def test_unpriced_models_cost_null_and_runs_count_them(home: Path) -> None:
    workflow = load_workflow(PRICED_AND_UNPRICED)
    tables = demo.generate([workflow], days=1, runs_per_day=30, seed=2, now=NOW)
    nodes = tables["node_runs"].to_pandas()
    runs = tables["runs"].to_pandas()
    ok = nodes[nodes.status == "success"]
    assert ok[ok.model == "in-house-llm"].cost_usd.isna().all()
    finetune = ok[ok.model == "my-finetune"]
    assert not finetune.empty
    expected = finetune.input_tokens * 0.30e-6 + finetune.output_tokens * 1.20e-6
    assert finetune.cost_usd.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-12)
    for run in runs.itertuples():
        own = nodes[nodes.run_id == run.run_id]
        called = own[own.attempts > 0]
        assert run.unpriced_calls == called.cost_usd.isna().sum()
        assert run.cost_usd == pytest.approx(called.cost_usd.sum(skipna=True))
        assert run.input_tokens == own.input_tokens.sum()


def test_input_tokens_come_from_the_rendered_prompt(
    history: dict[str, pd.DataFrame], examples: list
) -> None:
    """A root node's input is its prompt with the run's inputs, counted with the model's
    tokenizer; a downstream node adds the lengths of the outputs it quotes."""
    runs, nodes = history["runs"], history["node_runs"]
    article = next(w for w in examples if w.name == "article_writer")
    outline, draft = article.nodes["outline"], article.nodes["draft"]
    checked = 0
    for run in runs[runs.workflow == "article_writer"].head(40).itertuples():
        inputs = json.loads(run.inputs)
        own = nodes[(nodes.run_id == run.run_id) & (nodes.status == "success")].set_index("node")
        if "draft" not in own.index:
            continue
        values = TemplateValues(inputs, {"outline": ""}, {})
        for node, quoted in ((outline, 0), (draft, own.loc["outline", "output_tokens"])):
            request = build_request(article, node, values, True)
            literal = count_message_tokens(request.provider, request.model, request.messages)
            assert own.loc[node.name, "input_tokens"] == literal + quoted
        checked += 1
    assert checked > 20


def test_node_start_times_follow_the_dag(history: dict[str, pd.DataFrame], examples: list) -> None:
    runs, nodes = history["runs"].set_index("run_id"), history["node_runs"]
    graphs = {w.name: w.graph for w in examples}
    for run_id, own in nodes.groupby("run_id"):
        run = runs.loc[run_id]
        graph = graphs[run.workflow]
        rows = own.set_index("node")
        for name, row in rows.iterrows():
            parents = graph.parents[name]
            expected = max((rows.loc[p, "finished_at"] for p in parents), default=run.started_at)
            assert row.started_at == expected, (run_id, name)
            assert row.finished_at - row.started_at == pd.Timedelta(
                microseconds=round(row.duration_ms * 1000)
            )
        assert run.finished_at >= rows.finished_at.max()


def test_a_failure_stops_the_run_like_the_scheduler(
    history: dict[str, pd.DataFrame], examples: list
) -> None:
    """Nothing starts after a node fails (its descendants never run); the run is failed and
    names the node."""
    runs, nodes = history["runs"], history["node_runs"]
    graphs = {w.name: w.graph for w in examples}
    failed = runs[runs.status != "success"]
    assert (failed.status == "failed").any() and (failed.status == "budget_exceeded").any()
    for run in failed.itertuples():
        own = nodes[nodes.run_id == run.run_id]
        bad = own[own.status != "success"].sort_values("finished_at").iloc[0]
        assert run.error.startswith(f"node '{bad.node}' {bad.status}: ")
        assert (own.started_at <= bad.finished_at).all()
        graph = graphs[run.workflow]
        descendants = {n for n in graph.order if bad.node in graph.ancestors_of(n)}
        assert not descendants & set(own.node)


def test_budgets_hold(history: dict[str, pd.DataFrame], examples: list) -> None:
    runs = history["runs"]
    for workflow in examples:
        limit = workflow.spec.workflow.max_tokens
        if limit is not None:
            own = runs[runs.workflow == workflow.name]
            assert (own.input_tokens + own.output_tokens <= limit).all()


def test_cache_hits_cost_nothing_and_save_an_earlier_calls_cost(
    history: dict[str, pd.DataFrame],
) -> None:
    nodes = history["node_runs"]
    hits = nodes[nodes.cache_hit]
    assert len(hits) > 50
    assert (hits.cost_usd == 0).all() and (hits.input_tokens == 0).all()
    assert hits.cache_enabled.all()
    misses = nodes[~nodes.cache_hit & nodes.cache_enabled & (nodes.status == "success")]
    calls = dict(tuple(misses.sort_values("finished_at").groupby("request_hash")))
    for hit in hits.itertuples():
        earlier = calls[hit.request_hash]
        origin = earlier[earlier.finished_at <= hit.started_at].iloc[-1]  # the live entry
        assert hit.saved_cost_usd == pytest.approx(origin.cost_usd)


def test_retries_variants_and_teams_give_the_pages_something_to_show(
    history: dict[str, pd.DataFrame],
) -> None:
    runs, nodes = history["runs"], history["node_runs"]
    assert (nodes.attempts == 2).any()
    variants = runs[runs.experiment == demo.EXPERIMENT.name]
    assert set(variants.variant) == {label for label, _ in demo.EXPERIMENT.variants}
    synthesis = nodes[nodes.run_id.isin(variants.run_id) & (nodes.node == "synthesis")]
    assert set(synthesis.model) == {"gpt-4o", "gpt-4.1-mini"}
    teams = {json.loads(tags).get("team") for tags in runs.tags}
    assert teams == {"search", "support"}
    hours = runs.started_at.dt.hour
    assert hours.between(9, 18).mean() > 0.6  # business hours


def test_same_seed_same_history(examples: list) -> None:
    def tables(seed: int) -> dict[str, pa.Table]:
        return demo.generate(examples, days=2, runs_per_day=30, seed=seed, now=NOW)

    first, again, other = tables(5), tables(5), tables(6)
    assert all(first[name].equals(again[name]) for name in first)
    assert not first["runs"].equals(other["runs"])


def test_refuses_a_second_set_unless_forced(home: Path) -> None:
    demo.seed_demo(home, days=1, runs_per_day=10, seed=1)
    with pytest.raises(demo.DemoExists):
        demo.seed_demo(home, days=1, runs_per_day=10, seed=1)
    demo.seed_demo(home, days=1, runs_per_day=10, seed=1, force=True)
    ids = get_store(home).query_df("SELECT run_id FROM runs").run_id
    assert len(ids) == 20 and ids.is_unique


def test_cli_prints_a_summary_and_refuses_twice(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--days", "2", "--runs-per-day", "10"]) == 0
    out = capsys.readouterr().out
    assert "20 simulated runs" in out and "over the last 2 days" in out and "$" in out
    assert main(["demo", "--days", "2", "--runs-per-day", "10"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["demo", "--days", "0"]) == 2


def test_the_demo_adds_a_finished_example_experiment_once(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--days", "1", "--runs-per-day", "5"]) == 0
    out = capsys.readouterr().out
    ((experiment_id, status, cells),) = get_store(home).query(
        "SELECT experiment_id, status, cells FROM experiments"
    )
    assert status == "finished" and f"experiment report {experiment_id}" in out
    store = get_store(home)
    assert store.query("SELECT count(*) FROM experiment_cells") == [(cells,)]
    tags = store.query("SELECT DISTINCT json_extract_string(tags, '$.source') FROM runs")
    assert tags == [("demo",)]  # the experiment's runs are demo runs too
    assert demo_experiment.seed_demo_experiment(home) is None  # never a second one


def test_app_seeds_only_an_empty_database(home: Path) -> None:
    assert app_launcher.should_seed(home, no_demo=False)
    assert not app_launcher.should_seed(home, no_demo=True)
    demo.seed_demo(home, days=1, runs_per_day=5)
    assert not app_launcher.should_seed(home, no_demo=False)


def test_app_never_seeds_over_real_runs(home: Path) -> None:
    get_store(home).bulk_load(
        {"runs": pa.table({"run_id": ["real-1"], "workflow": ["echo"], "simulated": [False]})}
    )
    assert not app_launcher.should_seed(home, no_demo=False)


def test_app_starts_streamlit_on_the_app_file() -> None:
    command = app_launcher.streamlit_command(8600)
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == Path(__file__).resolve().parent.parent / "app.py"
    assert command[command.index("--server.port") + 1] == "8600"
    assert command[command.index("--server.headless") + 1] == "true"

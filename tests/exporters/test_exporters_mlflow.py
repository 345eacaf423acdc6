"""MLflow export: runs, params, metrics and traces read back through MlflowClient and compared
with DuckDB; exporting again adds nothing."""

from __future__ import annotations

import sys

import pytest
from exporter_helpers import FANOUT_PARENTS, History, MlflowServer

from core.exporters.extras import MissingExtra
from core.exporters.mlflow_runs import export_mlflow
from core.exporters.spans import epoch_ns
from core.telemetry import get_store

mlflow = pytest.importorskip("mlflow", reason="pip install 'configurable-agents[mlflow]'")


def _experiment_name(server: MlflowServer, label: str) -> str:
    experiment_id = server.new_experiment(label)
    return server.client().get_experiment(experiment_id).name


def _runs(server: MlflowServer, name: str) -> dict[str, object]:
    client = server.client()
    experiment = client.get_experiment_by_name(name)
    found = client.search_runs([experiment.experiment_id])
    return {run.data.tags["configurable_agents.run_id"]: run for run in found}


def test_each_run_becomes_an_mlflow_run_with_its_trace(
    mlflow_server: MlflowServer, history: History
) -> None:
    name = _experiment_name(mlflow_server, "runs")
    uri_before = mlflow.get_tracking_uri()

    summary = export_mlflow(history.home, experiment=name, tracking_uri=mlflow_server.url)

    assert (summary.runs, summary.spans, summary.skipped, summary.error) == (2, 9, 0, None)
    assert mlflow.get_tracking_uri() == uri_before  # the process-wide URI is put back
    runs = _runs(mlflow_server, name)
    assert sorted(runs) == sorted([history.fanout, history.failed])
    store = get_store(history.home)
    ((started, finished, duration, cost, tokens_in, tokens_out),) = store.query(
        "SELECT started_at, finished_at, duration_ms, cost_usd, input_tokens, output_tokens"
        " FROM runs WHERE run_id = ?",
        [history.fanout],
    )

    run = runs[history.fanout]
    assert run.info.run_name == f"export_fanout {history.fanout[:8]}"
    assert run.info.status == "FINISHED"
    assert (run.info.start_time, run.info.end_time) == (
        epoch_ns(started) // 1_000_000,
        epoch_ns(finished) // 1_000_000,
    )
    assert run.data.params == {
        "workflow": "export_fanout",
        "workflow_hash": run.data.params["workflow_hash"],
        "model.plan": "openai/gpt-4o-mini",
        "model.econ": "google/gemini-2.5-flash",
        "model.risks": "anthropic/claude-haiku-4-5",
        "model.mystery": "openai/my-unknown-model",
        "model.merge": "openai/gpt-4o-mini",
        "tag.team": "t1",
    }
    assert len(run.data.params["workflow_hash"]) == 16
    metrics = run.data.metrics
    assert (metrics["duration_ms"], metrics["cost_usd"]) == (duration, cost)
    assert (metrics["input_tokens"], metrics["output_tokens"]) == (tokens_in, tokens_out)
    assert (metrics["unpriced_calls"], metrics["cache_hits"]) == (1, 0)
    node_rows = store.query(
        "SELECT node, duration_ms, cost_usd FROM node_runs WHERE run_id = ?", [history.fanout]
    )
    for node, node_duration, node_cost in node_rows:
        assert metrics[f"node.{node}.duration_ms"] == node_duration
        assert metrics.get(f"node.{node}.cost_usd") == node_cost  # absent when unpriced
    assert "node.mystery.cost_usd" not in metrics
    assert {k: v for k, v in run.data.tags.items() if k.startswith("configurable_agents.")} == {
        "configurable_agents.run_id": history.fanout,
        "configurable_agents.status": "success",
        "configurable_agents.simulated": "true",
    }
    failed = runs[history.failed]
    assert failed.info.status == "FAILED"
    assert failed.data.tags["configurable_agents.status"] == "failed"
    assert "cost_usd" in failed.data.metrics

    client = mlflow_server.client()
    experiment_id = run.info.experiment_id
    (trace,) = client.search_traces(locations=[experiment_id], run_id=run.info.run_id)
    spans = trace.data.spans
    root = next(s for s in spans if s.parent_id is None)
    assert (root.name, root.span_type) == ("invoke_workflow export_fanout", "CHAIN")
    assert (root.start_time_ns, root.end_time_ns) == (epoch_ns(started), epoch_ns(finished))
    by_node = {s.attributes["configurable_agents.node"]: s for s in spans if s is not root}
    assert sorted(by_node) == sorted(FANOUT_PARENTS)
    assert {n: s.span_type for n, s in by_node.items()} == {
        "plan": "CHAT_MODEL",
        "econ": "CHAT_MODEL",
        "risks": "CHAT_MODEL",
        "mystery": "CHAT_MODEL",
        "count": "TOOL",
        "merge": "CHAT_MODEL",
    }
    assert {s.parent_id for s in by_node.values()} == {root.span_id}
    assert {n: sorted(link.span_id for link in s.links) for n, s in by_node.items()} == {
        n: sorted(by_node[p].span_id for p in parents) for n, parents in FANOUT_PARENTS.items()
    }
    times = store.query(
        "SELECT node, started_at, finished_at FROM node_runs WHERE run_id = ?", [history.fanout]
    )
    for node, node_start, node_end in times:
        span = by_node[node]
        assert (span.start_time_ns, span.end_time_ns) == (epoch_ns(node_start), epoch_ns(node_end))
    econ = by_node["econ"].attributes
    assert econ["gen_ai.provider.name"] == "gcp.gemini"
    assert econ["gen_ai.request.model"] == "gemini-2.5-flash"
    assert econ["configurable_agents.cost_usd"] == metrics["node.econ.cost_usd"]
    assert "configurable_agents.cost_usd" not in by_node["mystery"].attributes

    (failed_trace,) = client.search_traces(locations=[experiment_id], run_id=failed.info.run_id)
    failed_root = next(s for s in failed_trace.data.spans if s.parent_id is None)
    assert failed_root.status.status_code == "ERROR"
    assert failed_root.status.description.startswith("node 'only' failed: simulated provider")


def test_exporting_again_skips_what_is_there(mlflow_server: MlflowServer, history: History) -> None:
    name = _experiment_name(mlflow_server, "twice")

    first = export_mlflow(history.home, experiment=name, tracking_uri=mlflow_server.url)
    second = export_mlflow(history.home, experiment=name, tracking_uri=mlflow_server.url)

    assert (first.runs, first.skipped) == (2, 0)
    assert (second.runs, second.spans, second.skipped, second.error) == (0, 0, 2, None)
    client = mlflow_server.client()
    experiment_id = client.get_experiment_by_name(name).experiment_id
    assert len(client.search_runs([experiment_id])) == 2
    assert len(client.search_traces(locations=[experiment_id])) == 2


def test_a_run_left_unfinished_by_an_interrupted_export_is_redone(
    mlflow_server: MlflowServer, history: History
) -> None:
    name = _experiment_name(mlflow_server, "interrupted")
    client = mlflow_server.client()
    experiment_id = client.get_experiment_by_name(name).experiment_id
    leftover = client.create_run(
        experiment_id, tags={"configurable_agents.run_id": history.fanout}, run_name="cut short"
    )

    summary = export_mlflow(history.home, experiment=name, tracking_uri=mlflow_server.url)

    assert (summary.runs, summary.skipped) == (2, 0)
    runs = _runs(mlflow_server, name)
    assert len(runs) == 2
    assert runs[history.fanout].info.run_id != leftover.info.run_id
    assert runs[history.fanout].info.status == "FINISHED"
    assert client.get_run(leftover.info.run_id).info.lifecycle_stage == "deleted"


def test_days_and_workflow_filter_what_is_exported(
    mlflow_server: MlflowServer, history: History
) -> None:
    name = _experiment_name(mlflow_server, "filtered")

    summary = export_mlflow(
        history.home,
        experiment=name,
        tracking_uri=mlflow_server.url,
        days=1,
        workflow="export_fails",
    )

    assert (summary.runs, summary.spans) == (1, 2)
    assert list(_runs(mlflow_server, name)) == [history.failed]


def test_without_the_extra_the_error_says_what_to_install(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)

    with pytest.raises(MissingExtra, match=r"pip install 'configurable-agents\[mlflow\]'"):
        export_mlflow(history.home)

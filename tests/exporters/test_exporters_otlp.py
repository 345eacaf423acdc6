"""After-the-fact OTLP export of recorded runs, read back from a real MLflow server."""

from __future__ import annotations

import logging
import sys

import pytest
from exporter_helpers import FANOUT_PARENTS, History, MlflowServer, closed_port_url

from core.exporters.extras import MissingExtra
from core.exporters.otlp import OTLPConfigError, export_otlp, otlp_endpoint
from core.exporters.spans import epoch_ns, span_id_for
from core.telemetry import get_store

pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http", reason="pip install 'configurable-agents[otel]'"
)

EXPERIMENT_HEADER = "x-mlflow-experiment-id"


def _traces(server: MlflowServer, experiment_id: str) -> dict[str, object]:
    found = server.client().search_traces(locations=[experiment_id], max_results=100)
    return {trace.info.trace_id: trace for trace in found}


def test_recorded_runs_arrive_as_genai_traces(
    mlflow_server: MlflowServer, history: History
) -> None:
    experiment = mlflow_server.new_experiment("otlp")

    summary = export_otlp(
        history.home, endpoint=mlflow_server.otlp, headers={EXPERIMENT_HEADER: experiment}
    )

    assert (summary.runs, summary.spans, summary.failed, summary.error) == (2, 9, 0, None)
    traces = _traces(mlflow_server, experiment)
    assert sorted(traces) == sorted([f"tr-{history.fanout}", f"tr-{history.failed}"])
    assert traces[f"tr-{history.fanout}"].info.tags["service.name"] == "configurable-agents"
    spans = {span.name: span for span in traces[f"tr-{history.fanout}"].data.spans}
    assert sorted(spans) == [
        "chat claude-haiku-4-5",
        "chat gemini-2.5-flash",
        "chat gpt-4o-mini",  # plan and merge share a name: one key, two spans
        "chat my-unknown-model",
        "execute_tool count",
        "invoke_workflow export_fanout",
    ]
    trace_spans = traces[f"tr-{history.fanout}"].data.spans
    assert len(trace_spans) == 7
    root = spans["invoke_workflow export_fanout"]
    assert root.parent_id is None
    assert root.span_id == f"{span_id_for(history.fanout, None):016x}"
    by_node = {s.attributes["configurable_agents.node"]: s for s in trace_spans if s is not root}
    assert {node: s.parent_id for node, s in by_node.items()} == dict.fromkeys(
        FANOUT_PARENTS, root.span_id
    )
    # Each node links to the spans of its DAG parents: the execution graph.
    assert {node: sorted(link.span_id for link in s.links) for node, s in by_node.items()} == {
        node: sorted(by_node[p].span_id for p in parents)
        for node, parents in FANOUT_PARENTS.items()
    }

    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.workflow.name"] == "export_fanout"
    assert root.attributes["configurable_agents.tag.team"] == "t1"
    assert root.attributes["configurable_agents.unpriced_calls"] == 1
    econ = by_node["econ"].attributes
    assert econ["gen_ai.operation.name"] == "chat"
    assert econ["gen_ai.provider.name"] == "gcp.gemini"
    assert econ["gen_ai.request.model"] == econ["gen_ai.response.model"] == "gemini-2.5-flash"
    assert econ["configurable_agents.run_id"] == history.fanout
    assert by_node["risks"].attributes["gen_ai.provider.name"] == "anthropic"
    assert by_node["count"].attributes["gen_ai.tool.name"] == "count"
    assert by_node["count"].span_type == "TOOL"  # MLflow maps execute_tool
    assert by_node["econ"].span_type == "CHAT_MODEL"  # and chat

    rows = get_store(history.home).query(
        "SELECT node, started_at, finished_at, input_tokens, output_tokens, cost_usd"
        " FROM node_runs WHERE run_id = ?",
        [history.fanout],
    )
    for node, started, finished, tokens_in, tokens_out, cost in rows:
        span = by_node[node]
        assert (span.start_time_ns, span.end_time_ns) == (epoch_ns(started), epoch_ns(finished))
        if node != "count":
            assert span.attributes["gen_ai.usage.input_tokens"] == tokens_in
            assert span.attributes["gen_ai.usage.output_tokens"] == tokens_out
        assert span.attributes.get("configurable_agents.cost_usd") == cost
    assert "configurable_agents.cost_usd" not in by_node["mystery"].attributes  # unpriced

    (failed_root, failed_node) = sorted(
        traces[f"tr-{history.failed}"].data.spans, key=lambda s: s.parent_id is not None
    )
    assert failed_root.status.status_code == "ERROR"
    assert failed_root.attributes["error.type"] == "failed"
    assert failed_node.status.status_code == "ERROR"
    assert failed_node.status.description == "simulated provider error (503 Service Unavailable)"
    assert failed_node.attributes["error.type"] == "failed"


def test_exporting_twice_sends_the_same_ids_and_mlflow_keeps_one_copy(
    mlflow_server: MlflowServer, history: History
) -> None:
    experiment = mlflow_server.new_experiment("otlp-twice")
    headers = {EXPERIMENT_HEADER: experiment}

    first = export_otlp(history.home, endpoint=mlflow_server.otlp, headers=headers)
    before = _traces(mlflow_server, experiment)
    second = export_otlp(history.home, endpoint=mlflow_server.otlp, headers=headers)
    after = _traces(mlflow_server, experiment)

    assert (first.spans, second.spans) == (9, 9)

    def ids(traces: dict) -> dict[str, list[str]]:
        return {tid: sorted(s.span_id for s in t.data.spans) for tid, t in traces.items()}

    assert ids(after) == ids(before)  # MLflow upserts spans by (trace id, span id)
    assert sum(len(t.data.spans) for t in after.values()) == 9


def test_endpoint_and_headers_come_from_the_standard_variables(
    mlflow_server: MlflowServer, history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = mlflow_server.new_experiment("otlp-env")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", mlflow_server.url)  # base URL
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"{EXPERIMENT_HEADER}={experiment}")

    summary = export_otlp(history.home, workflow="export_fails")

    assert summary.destination == f"{mlflow_server.url}/v1/traces"
    assert (summary.runs, summary.spans) == (1, 2)
    assert list(_traces(mlflow_server, experiment)) == [f"tr-{history.failed}"]


def test_unreachable_endpoint_is_named_and_nothing_is_claimed(
    mlflow_server: MlflowServer,
    history: History,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")
    dead = closed_port_url()

    with caplog.at_level(logging.WARNING):
        summary = export_otlp(history.home, endpoint=dead)

    assert (summary.runs, summary.spans, summary.failed) == (0, 0, 2)
    assert summary.error.startswith(f"could not send traces to {dead}: ")
    assert "Connection refused" in summary.error
    # The SDK's own per-batch errors are kept quiet: the summary is the one report.
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []

    experiment = mlflow_server.new_experiment("otlp-retry")
    retry = export_otlp(
        history.home, endpoint=mlflow_server.otlp, headers={EXPERIMENT_HEADER: experiment}
    )
    assert (retry.runs, retry.error) == (2, None)


def test_grpc_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")

    with pytest.raises(OTLPConfigError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supp"):
        otlp_endpoint()
    assert otlp_endpoint("http://collector:4318/v1/traces") == "http://collector:4318/v1/traces"


def test_endpoint_resolution_follows_the_otel_specification(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    assert otlp_endpoint() == "http://localhost:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert otlp_endpoint() == "http://collector:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://tempo:4318/custom")
    assert otlp_endpoint() == "http://tempo:4318/custom"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")  # the traces-specific one wins
    assert otlp_endpoint() == "http://tempo:4318/custom"


def test_without_the_extra_the_error_says_what_to_install(
    history: History, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # makes the import fail

    with pytest.raises(MissingExtra, match=r"pip install 'configurable-agents\[otel\]'"):
        export_otlp(history.home, endpoint="http://127.0.0.1:9/v1/traces")

"""The engine's end-of-run hook: runs reach a real MLflow server live, over OTLP and through
MLflow's tracking API, as configured by the environment and the workflow; content only on
opt-in; a backend that is down, failing or hanging never harms a run."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from exporter_helpers import (
    FANOUT,
    FANOUT_PARENTS,
    MlflowServer,
    Receiver,
    closed_port_url,
)
from helpers import cli

from core import run_workflow
from core.exporters.live import live_exporter_from_env
from core.exporters.mlflow_live import live_mlflow_from_env
from core.exporters.sinks import live_exporters
from core.exporters.spans import epoch_ns
from core.telemetry import get_store
from core.workflow.models import TelemetrySettings

pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http", reason="pip install 'configurable-agents[otel]'"
)
pytest.importorskip("mlflow", reason="pip install 'configurable-agents[mlflow]'")

CONTENT = """\
workflow:
  name: export_content
  llm: {provider: openai, model: gpt-4o-mini, max_output_tokens: 30, simulate: {latency_ms: 5}}
  telemetry: {export_content: true}
inputs:
  topic: {type: string, required: true}
nodes:
  - name: note
    system: Be brief.
    prompt: "Previous: {memory.note}. Now: {inputs.topic}"
    memory: {enabled: true, namespace: export_content}
  - name: count
    type: code
    code: |
      result = {"n": len(nodes["note"])}
"""
CONTENT_KEYS = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.result")
# Every variable that turns a live exporter on, unset unless a test sets it.
LIVE_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "MLFLOW_TRACKING_URI",
    "CONFIGURABLE_AGENTS_MLFLOW",
)


@pytest.fixture(autouse=True)
def _no_live_export(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LIVE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _off(**env: str) -> dict[str, str]:
    """The environment of a CLI run: the given variables, every other live switch off."""
    return {**dict.fromkeys(LIVE_VARIABLES, ""), **env}


def _workflow(tmp_path: Path, text: str, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def _run_cli(path: Path, home: Path, env: dict[str, str], topic: str = "tides") -> str:
    done = cli(
        "run", str(path), "--simulate", "--json", "--input", f"topic={topic}",
        home=home, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)["run_id"]


def _parsed(value: Any) -> Any:
    """MLflow hands JSON attributes back parsed or as text, depending on the path."""
    return json.loads(value) if isinstance(value, str) else value


def test_a_run_made_with_the_otlp_variables_set_arrives_as_its_trace(
    mlflow_server: MlflowServer, home: Path, tmp_path: Path
) -> None:
    experiment = mlflow_server.new_experiment("hook-otlp")
    env = _off(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=mlflow_server.otlp,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"x-mlflow-experiment-id={experiment}",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="60",
        CONFIGURABLE_AGENTS_EXPORT_EXIT_TIMEOUT="120",
    )

    run_id = _run_cli(_workflow(tmp_path, FANOUT, "export_fanout"), home, env)

    trace = mlflow_server.client().get_trace(f"tr-{run_id}")
    root = next(s for s in trace.data.spans if s.parent_id is None)
    by_node = {s.attributes["configurable_agents.node"]: s for s in trace.data.spans if s != root}
    assert root.name == "invoke_workflow export_fanout"
    assert {n: s.parent_id for n, s in by_node.items()} == dict.fromkeys(
        FANOUT_PARENTS, root.span_id
    )
    assert {n: sorted(link.span_id for link in s.links) for n, s in by_node.items()} == {
        n: sorted(by_node[p].span_id for p in parents) for n, parents in FANOUT_PARENTS.items()
    }
    rows = get_store(home).query(
        "SELECT node, started_at, finished_at, input_tokens, cost_usd FROM node_runs"
        " WHERE run_id = ?",
        [run_id],
    )
    assert sorted(node for node, *_ in rows) == sorted(by_node)
    for node, started, finished, tokens_in, cost in rows:
        span = by_node[node]
        assert (span.start_time_ns, span.end_time_ns) == (epoch_ns(started), epoch_ns(finished))
        assert span.attributes.get("configurable_agents.cost_usd") == cost
        if node != "count":
            assert span.attributes["gen_ai.usage.input_tokens"] == tokens_in
        assert not any(key in span.attributes for key in CONTENT_KEYS)  # no opt-in


def test_content_is_exported_when_the_workflow_opts_in(
    mlflow_server: MlflowServer, home: Path, tmp_path: Path
) -> None:
    experiment = mlflow_server.new_experiment("hook-content")
    env = _off(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=mlflow_server.otlp,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"x-mlflow-experiment-id={experiment}",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="60",
        CONFIGURABLE_AGENTS_EXPORT_EXIT_TIMEOUT="120",
    )
    path = _workflow(tmp_path, CONTENT, "export_content")

    first = _run_cli(path, home, env, topic="tides")
    second = _run_cli(path, home, env, topic="waves")

    def spans(run_id: str) -> dict[str, Any]:
        trace = mlflow_server.client().get_trace(f"tr-{run_id}")
        return {s.attributes.get("configurable_agents.node", "run"): s for s in trace.data.spans}

    earlier, later = spans(first), spans(second)
    (reply,) = _parsed(earlier["note"].attributes["gen_ai.output.messages"])
    first_note = reply["parts"][0]["content"]
    assert reply["role"] == "assistant"
    # The prompt the second run sent: its memory held the first run's note, not its own.
    assert _parsed(later["note"].attributes["gen_ai.input.messages"]) == [
        {
            "role": "user",
            "parts": [{"type": "text", "content": f"Previous: {first_note}. Now: waves"}],
        }
    ]
    assert _parsed(later["note"].attributes["gen_ai.system_instructions"])[0]["content"] == (
        "Be brief."
    )
    (later_reply,) = _parsed(later["note"].attributes["gen_ai.output.messages"])
    assert _parsed(later["count"].attributes["gen_ai.tool.call.result"]) == {
        "n": len(later_reply["parts"][0]["content"])
    }
    assert _parsed(later["run"].attributes["configurable_agents.inputs"]) == {"topic": "waves"}


def test_mlflow_live_logs_each_run_beside_the_otlp_traces(
    mlflow_server: MlflowServer, home: Path, tmp_path: Path
) -> None:
    traces_experiment = mlflow_server.new_experiment("hook-both-otlp")
    runs_experiment = f"hook-both-runs-{tmp_path.name}"
    env = _off(
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=mlflow_server.otlp,
        OTEL_EXPORTER_OTLP_TRACES_HEADERS=f"x-mlflow-experiment-id={traces_experiment}",
        OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="60",
        MLFLOW_TRACKING_URI=mlflow_server.url,
        MLFLOW_EXPERIMENT_NAME=runs_experiment,
        CONFIGURABLE_AGENTS_MLFLOW="true",
        CONFIGURABLE_AGENTS_EXPORT_EXIT_TIMEOUT="120",
    )

    run_id = _run_cli(_workflow(tmp_path, FANOUT, "export_fanout"), home, env)

    client = mlflow_server.client()
    experiment_id = client.get_experiment_by_name(runs_experiment).experiment_id
    (run,) = client.search_runs([experiment_id])
    assert run.data.tags["configurable_agents.run_id"] == run_id
    assert run.info.status == "FINISHED"
    ((duration, tokens_in),) = get_store(home).query(
        "SELECT duration_ms, input_tokens FROM runs WHERE run_id = ?", [run_id]
    )
    assert (run.data.metrics["duration_ms"], run.data.metrics["input_tokens"]) == (
        duration,
        tokens_in,
    )
    assert "node.mystery.cost_usd" not in run.data.metrics  # unpriced: no figure, not 0
    # Its trace is stored in MLflow, though the OTLP variables point at a collector too.
    (trace,) = client.search_traces(locations=[experiment_id], run_id=run.info.run_id)
    assert len(trace.data.spans) == len(FANOUT_PARENTS) + 1
    assert client.get_trace(f"tr-{run_id}").info.experiment_id == traces_experiment


def test_mlflow_live_follows_the_workflow_or_the_switch(
    mlflow_server: MlflowServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"hook-opt-in-{tmp_path.name}"
    assert live_exporters(TelemetrySettings(mlflow=True)) == []  # no tracking URI: nothing

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", name)
    assert live_exporters(TelemetrySettings()) == []  # nobody asked
    opted_in = FANOUT.replace(
        "  name: export_fanout\n", "  name: export_fanout\n  telemetry: {mlflow: true}\n"
    )
    result = run_workflow(
        _workflow(tmp_path, opted_in, "opted_in"), {"topic": "x"}, simulate=True, home=home
    )
    monkeypatch.setenv("CONFIGURABLE_AGENTS_MLFLOW", "true")
    assert live_exporters(TelemetrySettings()) == [live_mlflow_from_env(True)]

    exporter = live_mlflow_from_env(True)
    assert exporter is not None and exporter.flush(timeout=120)
    client = mlflow_server.client()
    (run,) = client.search_runs([client.get_experiment_by_name(name).experiment_id])
    assert run.data.tags["configurable_agents.run_id"] == result.run_id


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def _run_twice(home: Path, tmp_path: Path) -> None:
    path = _workflow(tmp_path, FANOUT, "export_fanout")
    for topic in ("one", "two"):
        result = run_workflow(path, {"topic": topic}, simulate=True, home=home)
        assert result.status == "success"
    ((runs,),) = get_store(home).query("SELECT count(*) FROM runs WHERE status = 'success'")
    assert runs == 2  # recorded as ever


def _backend(kind: str, receiver: Receiver, path: str) -> str:
    if kind == "unreachable":
        return closed_port_url().removesuffix("/v1/traces") + path
    receiver.status = 500
    if kind == "hanging":
        receiver.hold = threading.Event()  # answers only when the test ends
    return receiver.url + path


@pytest.mark.parametrize("kind", ["unreachable", "status 500", "hanging"])
def test_a_failing_otlp_backend_never_harms_a_run(
    kind: str,
    receiver: Receiver,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = _backend(kind, receiver, "/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")

    with caplog.at_level(logging.WARNING):
        _run_twice(home, tmp_path)
        exporter = live_exporter_from_env()
        assert exporter is not None and exporter.flush(timeout=30)

    (warning,) = _warnings(caplog)
    assert endpoint in warning
    assert "configurable-agents export otlp" in warning
    if kind == "hanging":
        assert not receiver.hold.is_set()  # both runs ended while it never answered
    exporter.shutdown(timeout=5)


@pytest.mark.parametrize("kind", ["unreachable", "status 500", "hanging"])
def test_a_failing_mlflow_server_never_harms_a_run(
    kind: str,
    receiver: Receiver,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    uri = _backend(kind, receiver, "")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("CONFIGURABLE_AGENTS_MLFLOW", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")

    with caplog.at_level(logging.WARNING):
        _run_twice(home, tmp_path)
        exporter = live_mlflow_from_env(False)
        assert exporter is not None
        if kind == "hanging":
            assert not exporter.flush(timeout=1)
            exporter.shutdown(timeout=0)  # what process exit does once its wait is over
        else:
            assert exporter.flush(timeout=60)

    ours = [r for r in caplog.records if r.name == "core.exporters"]
    assert len(ours) == 1, _warnings(caplog)
    assert uri in ours[0].getMessage()
    assert "configurable-agents export mlflow" in ours[0].getMessage()

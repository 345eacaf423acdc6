"""The live exporter: runs queued as they end, sent in the background, harmless when the
backend is down, failing or hanging."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest
from exporter_helpers import (
    FANOUT,
    FANOUT_PARENTS,
    MlflowServer,
    Receiver,
    closed_port_url,
)

from core import run_workflow
from core.exporters.live import LiveTraceExporter, live_exporter_from_env
from core.telemetry import NODE_RUNS_COLUMNS, RUNS_COLUMNS, get_store

pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http", reason="pip install 'configurable-agents[otel]'"
)


def _run_and_export(home: Path, tmp_path: Path, exporter: LiveTraceExporter) -> str:
    """What the engine's end-of-run hook will do: run, then hand the run's rows over."""
    workflow = tmp_path / "export_fanout.yaml"
    workflow.write_text(FANOUT)
    result = run_workflow(workflow, {"topic": "live"}, simulate=True, home=home)
    assert result.status == "success"
    store = get_store(home)
    (run,) = store.query(
        f"SELECT {', '.join(RUNS_COLUMNS)} FROM runs WHERE run_id = ?", [result.run_id]
    )
    nodes = store.query(
        f"SELECT {', '.join(NODE_RUNS_COLUMNS)} FROM node_runs WHERE run_id = ?", [result.run_id]
    )
    exporter.export_run(
        dict(zip(RUNS_COLUMNS, run, strict=True)),
        [dict(zip(NODE_RUNS_COLUMNS, row, strict=True)) for row in nodes],
        FANOUT_PARENTS,
    )
    return result.run_id


def _our_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith(("core.exporters", "opentelemetry"))
    ]


def test_live_exporter_from_env_sends_a_finished_run(
    mlflow_server: MlflowServer, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment = mlflow_server.new_experiment("live")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", mlflow_server.otlp)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", f"x-mlflow-experiment-id={experiment}")

    exporter = live_exporter_from_env()
    assert exporter is not None
    assert live_exporter_from_env() is exporter  # one per process and endpoint
    run_id = _run_and_export(home, tmp_path, exporter)
    assert exporter.flush(timeout=60)

    trace = mlflow_server.client().get_trace(f"tr-{run_id}")
    names = sorted(span.name for span in trace.data.spans)
    assert names == [
        "chat claude-haiku-4-5",
        "chat gemini-2.5-flash",
        "chat gpt-4o-mini",
        "chat gpt-4o-mini",
        "chat my-unknown-model",
        "execute_tool count",
        "invoke_workflow export_fanout",
    ]
    merge = next(
        s for s in trace.data.spans if s.attributes.get("configurable_agents.node") == "merge"
    )
    assert len(merge.links) == 3


def test_no_endpoint_variable_means_no_live_export(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)

    assert live_exporter_from_env() is None


def test_grpc_setting_turns_live_export_off_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")

    with caplog.at_level(logging.WARNING):
        assert live_exporter_from_env() is None
        assert live_exporter_from_env() is None

    (warning,) = _our_warnings(caplog)
    assert warning.startswith(
        "OpenTelemetry live export is off: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc is not supp"
    )


def test_missing_extra_turns_live_export_off_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    # Headers of its own, so no exporter an earlier test created for the endpoint is reused.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x-test=missing-extra")
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)

    with caplog.at_level(logging.WARNING):
        assert live_exporter_from_env() is None
        assert live_exporter_from_env() is None

    (warning,) = _our_warnings(caplog)
    assert "pip install 'configurable-agents[otel]'" in warning


@pytest.mark.parametrize("backend", ["unreachable", "status 500", "hanging"])
def test_a_failing_backend_costs_one_warning_and_never_the_run(
    backend: str,
    receiver: Receiver,
    home: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if backend == "unreachable":
        endpoint = closed_port_url()
    else:
        endpoint = f"{receiver.url}/v1/traces"
        receiver.status = 500
        if backend == "hanging":
            receiver.hold = threading.Event()  # answers only when the test ends
    # The worker never wakes by itself here: each flush sends exactly one batch, one run.
    exporter = LiveTraceExporter(endpoint, timeout=1, schedule_delay_ms=600_000)

    with caplog.at_level(logging.WARNING):
        _run_and_export(home, tmp_path, exporter)
        assert exporter.flush(timeout=30)
        _run_and_export(home, tmp_path, exporter)  # a second run, after the first failure
        assert exporter.flush(timeout=30)

    warnings = _our_warnings(caplog)
    assert len(warnings) == 1
    assert endpoint in warnings[0]
    assert {"unreachable": "Connection refused", "status 500": "HTTP 500", "hanging": "no answer"}[
        backend
    ] in warnings[0]
    if backend != "unreachable":
        assert len(receiver.bodies) == 2  # both runs were offered, each once
    if backend == "hanging":
        assert not receiver.hold.is_set()  # both runs ended while the backend never answered
    exporter.shutdown(timeout=5)

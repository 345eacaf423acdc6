"""`configurable-agents export otlp|mlflow` run as a user runs them, against a real MLflow
server (its OTLP endpoint and its tracking API), then read back and compared with DuckDB."""

from __future__ import annotations

import pytest
from exporter_helpers import History, MlflowServer, closed_port_url
from helpers import cli

from core.telemetry import get_store

pytest.importorskip(
    "opentelemetry.exporter.otlp.proto.http", reason="pip install 'configurable-agents[otel]'"
)
pytest.importorskip("mlflow", reason="pip install 'configurable-agents[mlflow]'")

NO_ENDPOINTS = {
    "OTEL_EXPORTER_OTLP_ENDPOINT": "",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "",
    "MLFLOW_TRACKING_URI": "",
}


def _node_counts(history: History) -> dict[str, int]:
    rows = get_store(history.home).query("SELECT run_id, count(*) FROM node_runs GROUP BY run_id")
    return dict(rows)


def test_export_otlp_sends_recorded_runs_as_traces(
    mlflow_server: MlflowServer, history: History
) -> None:
    experiment = mlflow_server.new_experiment("cli-otlp")
    env = {
        **NO_ENDPOINTS,
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-mlflow-experiment-id={experiment}",
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "60",
    }

    done = cli("export", "otlp", "--endpoint", mlflow_server.otlp, home=history.home, env=env)

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"2 runs (9 spans) exported to {mlflow_server.otlp}\n"
    traces = mlflow_server.client().search_traces(locations=[experiment])
    counts = _node_counts(history)
    assert {t.info.trace_id: len(t.data.spans) for t in traces} == {
        f"tr-{run_id}": nodes + 1 for run_id, nodes in counts.items()
    }


def test_a_failed_export_says_why_and_the_same_command_retries_it(
    mlflow_server: MlflowServer, history: History
) -> None:
    dead = closed_port_url()

    failed = cli("export", "otlp", "--endpoint", dead, home=history.home, env=NO_ENDPOINTS)

    assert failed.returncode == 1
    assert failed.stdout == ""
    assert f"could not send traces to {dead}: ConnectionError" in failed.stderr
    assert "Connection refused" in failed.stderr
    assert "run the same command again to retry" in failed.stderr
    assert "Traceback" not in failed.stderr

    experiment = mlflow_server.new_experiment("cli-retry")
    env = {**NO_ENDPOINTS, "OTEL_EXPORTER_OTLP_HEADERS": f"x-mlflow-experiment-id={experiment}"}
    retried = cli(
        "export", "otlp", "--endpoint", mlflow_server.otlp, "-w", "export_fails",
        home=history.home, env=env,
    )  # fmt: skip
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith("1 runs (2 spans) exported to ")


def test_a_backend_refusing_says_what_it_answered(
    mlflow_server: MlflowServer, history: History
) -> None:
    # MLflow's OTLP endpoint needs an experiment header: its own words reach the user.
    done = cli("export", "otlp", "--endpoint", mlflow_server.otlp, home=history.home)

    assert done.returncode == 1
    assert "HTTP 422" in done.stderr
    assert "x-mlflow-experiment-id" in done.stderr


def test_export_mlflow_logs_runs_once(mlflow_server: MlflowServer, history: History) -> None:
    name = f"cli-mlflow-{history.fanout[:8]}"
    args = ("export", "mlflow", "--tracking-uri", mlflow_server.url, "--experiment", name)

    first = cli(*args, home=history.home, env=NO_ENDPOINTS, timeout=240)
    again = cli(*args, home=history.home, env=NO_ENDPOINTS, timeout=240)

    destination = f"MLflow {mlflow_server.url}, experiment '{name}'"
    assert first.returncode == 0, first.stderr
    assert first.stdout == f"2 runs (9 spans) exported to {destination}\n"
    assert again.stdout == f"0 runs (0 spans) exported to {destination}, 2 already there\n"
    client = mlflow_server.client()
    experiment = client.get_experiment_by_name(name)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.data.tags["configurable_agents.run_id"] for r in runs) == sorted(
        [history.fanout, history.failed]
    )


def test_export_mlflow_follows_the_tracking_uri_variable_and_filters(
    mlflow_server: MlflowServer, history: History
) -> None:
    name = f"cli-env-{history.fanout[:8]}"
    env = {**NO_ENDPOINTS, "MLFLOW_TRACKING_URI": mlflow_server.url}

    real_only = cli(
        "export", "mlflow", "--experiment", name, "--simulated", "exclude",
        home=history.home, env=env, timeout=240,
    )  # fmt: skip
    one = cli(
        "export", "mlflow", "--experiment", name, "--workflow", "export_fails", "--days", "1",
        home=history.home, env=env, timeout=240,
    )  # fmt: skip

    assert real_only.stdout.startswith("0 runs (0 spans)")  # every recorded run is simulated
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("1 runs (2 spans) exported to MLflow")


def test_export_mlflow_without_a_server_says_how_to_name_one(history: History) -> None:
    done = cli("export", "mlflow", home=history.home, env=NO_ENDPOINTS)

    assert done.returncode == 2
    assert "set MLFLOW_TRACKING_URI" in done.stderr
    assert "--tracking-uri" in done.stderr


def test_export_mlflow_to_an_unreachable_server_fails_cleanly(history: History) -> None:
    dead = closed_port_url().removesuffix("/v1/traces")
    env = {**NO_ENDPOINTS, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}

    done = cli("export", "mlflow", "--tracking-uri", dead, home=history.home, env=env)

    assert done.returncode == 1
    assert f"could not export to MLflow {dead}" in done.stderr
    assert "2 not sent" in done.stderr
    assert "Traceback" not in done.stderr

"""Fixtures for the exporter tests: a real MLflow tracking server, recorded history made with
the simulated provider, and a tiny local HTTP server that answers however a test needs."""

from __future__ import annotations

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from exporter_helpers import (
    FAILING,
    FANOUT,
    History,
    MlflowServer,
    Receiver,
    free_port,
    wait_for,
)

from core import run_workflow

SERVER_START_TIMEOUT = 180.0  # a cold start (database migrations) took ~30 s here


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` (SQLite store) on a free port, for the whole session."""
    pytest.importorskip(
        "mlflow", reason="mlflow is not installed: pip install 'configurable-agents[mlflow]'"
    )
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
            "--default-artifact-root", str(folder / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        # MLflow prices spans with LiteLLM, which would try to download its price map on
        # the first trace (10 s of retries without a network): use the bundled one. Its
        # job runner (a dozen processes for scorers) is not needed and would load the
        # machine for the rest of the session.
        env={
            **os.environ,
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        },
        start_new_session=True,  # its own process group: the workers go with it
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            tail = (folder / "server.log").read_text()[-2000:]
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{tail}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        wait_for(healthy, SERVER_START_TIMEOUT, "the MLflow server to answer /health")
        _warm_up(url)
        yield MlflowServer(url, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _warm_up(url: str) -> None:
    """Sends one span first: a fresh server takes ~16 s over its first trace here (it loads
    its span translation and pricing then), longer than an exporter's 10 s timeout."""
    span = {
        "traceId": "0" * 31 + "1",
        "spanId": "0" * 15 + "1",
        "name": "warm-up",
        "kind": 3,
        "startTimeUnixNano": "1000",
        "endTimeUnixNano": "2000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o-mini"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1"}},
        ],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "warm-up"}, "spans": [span]}]}]}
    request = urllib.request.Request(
        f"{url}/v1/traces",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "x-mlflow-experiment-id": "0"},
    )
    with urllib.request.urlopen(request, timeout=SERVER_START_TIMEOUT) as response:
        assert response.status == 200


@pytest.fixture
def history(home: Path, tmp_path: Path) -> History:
    """A successful fan-out run (with an unpriced model and a code node) and a failed run."""
    fanout_file = tmp_path / "export_fanout.yaml"
    fanout_file.write_text(FANOUT)
    failing_file = tmp_path / "export_fails.yaml"
    failing_file.write_text(FAILING)
    tags = {"team": "t1"}
    ok = run_workflow(fanout_file, {"topic": "tides"}, simulate=True, home=home, tags=tags)
    bad = run_workflow(failing_file, {}, simulate=True, home=home)
    assert (ok.status, bad.status) == ("success", "failed")
    return History(home, ok.run_id, bad.run_id, fanout_file)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.bodies.append(body)
            state.paths.append(self.path)
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            if state.hold is not None:
                state.hold.wait(30)
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        do_GET = do_POST  # MLflow's client reads before it writes

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        if state.hold is not None:
            state.hold.set()
        server.shutdown()
        server.server_close()

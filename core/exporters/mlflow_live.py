"""Live MLflow export: each finished run logged as an MLflow run with its trace, in the
background.

MLflow's client is synchronous (a handful of HTTP requests per run) and slow to import, so
the engine only queues the run and one worker thread per tracking server and experiment
does the rest. A server that is down, refuses or hangs costs one warning naming it, never
the run; the runs it could not take stay in the telemetry tables, and `configurable-agents
export mlflow` sends them later (it skips runs already there and redoes one left
half-written).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from core.exporters import handoff
from core.exporters.history import RecordedRun
from core.exporters.live import EXIT_TIMEOUT, at_exit, warn_once
from core.exporters.mlflow_runs import (
    DEFAULT_EXPERIMENT,
    experiment_id_for,
    log_run,
    mlflow_client,
    mlflow_environment,
    one_line,
)
from core.exporters.spans import RunContent

log = logging.getLogger("core.exporters")

TRACKING_VARIABLE = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"
SWITCH_VARIABLE = "CONFIGURABLE_AGENTS_MLFLOW"  # live MLflow for every workflow
MAX_QUEUED_RUNS = 1000

_live: dict[tuple[str, str], LiveMlflowExporter | None] = {}  # None: cannot export
_live_lock = threading.Lock()


class LiveMlflowExporter:
    """Logs finished runs to one MLflow tracking server and experiment, one at a time, on a
    thread of its own."""

    def __init__(self, tracking_uri: str, experiment: str = DEFAULT_EXPERIMENT) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._queue: queue.Queue[tuple[RecordedRun, RunContent | None] | None] = queue.Queue(
            MAX_QUEUED_RUNS
        )
        self._pending = 0  # queued or being logged
        self._idle = threading.Condition()
        self._client: Any = None
        self._experiment_id: str | None = None
        self._closed = False
        threading.Thread(target=self._work, name="mlflow-live", daemon=True).start()
        at_exit(self.shutdown)

    def export_run(
        self,
        run: Mapping[str, Any],
        nodes: Sequence[Mapping[str, Any]],
        parents: Mapping[str, Sequence[str]] | None = None,
        content: RunContent | None = None,
    ) -> None:
        """Queues one finished run (rows as the engine records them). Never raises or waits."""
        if self._closed:
            return
        record = RecordedRun(dict(run), [dict(row) for row in nodes], dict(parents or {}))
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((record, content))
        except queue.Full:
            self._done()
            self._warn(
                "MLflow: runs are dropped, %s takes them slower than they end (%d waiting); "
                "`configurable-agents export mlflow` sends them later. Shown once.",
                self.tracking_uri,
                MAX_QUEUED_RUNS,
            )

    def flush(self, timeout: float = EXIT_TIMEOUT) -> bool:
        """Waits until every queued run (and every run the engine handed over) is logged or
        failed; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        if not handoff.drain(timeout):
            return False
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self._idle.wait(left):
                    return self._pending == 0
        return True

    def shutdown(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Logs what is queued, waiting at most `timeout` seconds, then stops the worker."""
        if self._closed:
            return
        self._closed = True
        if not self.flush(timeout):
            self._warn(
                "MLflow: %d runs were not logged to %s before exit (it is slow or "
                "unreachable); `configurable-agents export mlflow` sends them later.",
                self._pending,
                self.tracking_uri,
            )
        with contextlib.suppress(queue.Full):  # else the daemon worker ends with the process
            self._queue.put_nowait(None)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            record, content = item
            try:
                self._log(record, content)
            except Exception as exc:
                self._warn(
                    "MLflow: could not log run %s to %s (%s); runs go on, and "
                    "`configurable-agents export mlflow` sends the ones missing later. "
                    "Shown once.",
                    record.run_id,
                    self.tracking_uri,
                    one_line(exc),
                )
            finally:
                self._done()

    def _log(self, record: RecordedRun, content: RunContent | None) -> None:
        with mlflow_environment():
            if self._client is None:
                client = mlflow_client(self.tracking_uri)
                self._experiment_id = experiment_id_for(client, self.experiment)
                self._client = client
            assert self._experiment_id is not None
            log_run(self._client, self._experiment_id, record, content)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if not self._pending:
                self._idle.notify_all()

    def _warn(self, message: str, *args: Any) -> None:
        warn_once(f"mlflow {self.tracking_uri}", message, *args)


def live_mlflow_from_env(workflow_asks: bool) -> LiveMlflowExporter | None:
    """The process's live MLflow exporter when MLFLOW_TRACKING_URI is set and the workflow
    (`telemetry: {mlflow: true}`) or CONFIGURABLE_AGENTS_MLFLOW=true asks for it, else None.
    The experiment is MLFLOW_EXPERIMENT_NAME, else 'configurable-agents'. Never raises."""
    switched_on = os.environ.get(SWITCH_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}
    if not (workflow_asks or switched_on):
        return None
    uri = os.environ.get(TRACKING_VARIABLE, "").strip()
    if not uri:
        warn_once(
            "mlflow: no tracking URI",
            "MLflow live logging is asked for (%s) but MLFLOW_TRACKING_URI is not set: runs "
            "are not logged to MLflow. Shown once.",
            "telemetry: {mlflow: true}" if workflow_asks else f"{SWITCH_VARIABLE}=true",
        )
        return None
    experiment = os.environ.get(EXPERIMENT_VARIABLE, "").strip() or DEFAULT_EXPERIMENT
    key = (uri, experiment)
    with _live_lock:
        if key not in _live:
            _live[key] = _start(uri, experiment)
        return _live[key]


def _start(uri: str, experiment: str) -> LiveMlflowExporter | None:
    if importlib.util.find_spec("mlflow") is None:
        warn_once(
            f"mlflow {uri}",
            "MLflow live logging is off: it needs the optional 'mlflow' dependencies: "
            "pip install 'configurable-agents[mlflow]'",
        )
        return None
    try:
        return LiveMlflowExporter(uri, experiment)
    except Exception as exc:  # a thread that cannot start, and the like
        warn_once(f"mlflow {uri}", "MLflow live logging is off: %s", exc)
    return None

"""Which live exporters a finished run goes to.

Decided again for every run from the environment and the workflow's `telemetry:` settings,
so a variable set in a long-lived process (the app) takes effect on its next run; with
nothing configured that costs a few environment lookups. Each exporter is created once per
process and destination, and only queues the run: the sending happens on its own thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from core.exporters.live import live_exporter_from_env
from core.exporters.mlflow_live import live_mlflow_from_env
from core.exporters.spans import RunContent
from core.workflow.models import TelemetrySettings


class RunExporter(Protocol):
    def export_run(
        self,
        run: Mapping[str, Any],
        nodes: Sequence[Mapping[str, Any]],
        parents: Mapping[str, Sequence[str]] | None = None,
        content: RunContent | None = None,
    ) -> None:
        """Queues one finished run; never raises, never waits for the destination."""


def live_exporters(settings: TelemetrySettings) -> list[RunExporter]:
    """OTLP traces when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set; MLflow when
    MLFLOW_TRACKING_URI is set and the workflow or CONFIGURABLE_AGENTS_MLFLOW asks."""
    found: list[RunExporter] = []
    traces = live_exporter_from_env()
    if traces is not None:
        found.append(traces)
    mlflow = live_mlflow_from_env(settings.mlflow)
    if mlflow is not None:
        found.append(mlflow)
    return found

"""Live export: each finished run's spans, queued for the SDK's background sender.

The engine hands over a run as it ends (`LiveTraceExporter.export_run`). That call only
builds the spans and appends them to the `BatchSpanProcessor`'s queue; encoding and HTTP
happen on the SDK's worker thread. Tracing is an observer and must never slow or fail a
run: every error is swallowed, and a backend that is down, refuses (500) or hangs costs
one warning per endpoint per process, not one per batch. Traces of runs that end while
the backend is unreachable are dropped; `export_otlp` (`configurable-agents export otlp`)
sends them later from the telemetry tables, with the same ids.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from core.exporters import handoff
from core.exporters.otlp import (
    ReportingExporter,
    SpanFactory,
    last_sdk_message,
    otlp_configured,
    otlp_endpoint,
    quiet,
)
from core.exporters.spans import RunContent

log = logging.getLogger("core.exporters")

EXIT_TIMEOUT = 10.0  # seconds process exit may wait for every live exporter, together
EXIT_TIMEOUT_VARIABLE = "CONFIGURABLE_AGENTS_EXPORT_EXIT_TIMEOUT"  # overrides it

_warned: set[str] = set()
_warned_lock = threading.Lock()
_exit_deadline: float | None = None
_live: dict[tuple[str, tuple[tuple[str, str], ...]], LiveTraceExporter] = {}
_live_lock = threading.Lock()


def at_exit(shutdown: Callable[[float], None]) -> None:
    """Registers `shutdown(timeout)` to run at process exit. Every live exporter shares one
    deadline, so two slow backends delay the exit by EXIT_TIMEOUT, not by twice that."""

    def run() -> None:
        global _exit_deadline
        if _exit_deadline is None:
            _exit_deadline = time.monotonic() + exit_timeout()
        shutdown(max(_exit_deadline - time.monotonic(), 0.0))

    atexit.register(run)


def warn_once(key: str, message: str, *args: Any) -> None:
    """Logs `message` the first time `key` (an endpoint) has trouble in this process."""
    with _warned_lock:
        if key in _warned:
            return
        _warned.add(key)
    log.warning(message, *args)


def exit_timeout() -> float:
    """CONFIGURABLE_AGENTS_EXPORT_EXIT_TIMEOUT seconds, else EXIT_TIMEOUT."""
    text = os.environ.get(EXIT_TIMEOUT_VARIABLE, "").strip()
    try:
        return max(float(text), 0.0) if text else EXIT_TIMEOUT
    except ValueError:
        warn_once(
            EXIT_TIMEOUT_VARIABLE,
            "%s=%s is not a number of seconds; using %g",
            EXIT_TIMEOUT_VARIABLE,
            text,
            EXIT_TIMEOUT,
        )
        return EXIT_TIMEOUT


class LiveTraceExporter:
    """Sends finished runs' traces to one OTLP endpoint in the background."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,
        schedule_delay_ms: float | None = None,
    ) -> None:
        """`timeout` bounds each HTTP request (default: OTEL_EXPORTER_OTLP_TIMEOUT or 10 s);
        `schedule_delay_ms` how long spans wait to be batched (default: OTEL_BSP_SCHEDULE_DELAY
        or 5 s). Raises MissingExtra without the `otel` extra."""
        self.endpoint = endpoint
        self._factory = SpanFactory()
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self._exporter = ReportingExporter(endpoint, headers, self._failed, timeout=timeout)
        self._processor = BatchSpanProcessor(
            self._exporter, schedule_delay_millis=schedule_delay_ms
        )
        self._closed = False
        at_exit(self.shutdown)

    def export_run(
        self,
        run: Mapping[str, Any],
        nodes: Sequence[Mapping[str, Any]],
        parents: Mapping[str, Sequence[str]] | None = None,
        content: RunContent | None = None,
    ) -> None:
        """Queues one finished run: its `runs` row and `node_runs` rows (dicts keyed by the
        column names, as the engine records them), the DAG parents of each node (the
        workflow's `graph.parents`) for the span links, and its prompts and responses when
        the workflow exports them. Never raises."""
        try:
            with quiet():  # the SDK's 'queue full' complaint is ours to report, once
                for span in self._factory.for_run(run, nodes, parents, content):
                    self._processor.on_end(span)
                dropped = last_sdk_message()
            if dropped:
                warn_once(
                    self.endpoint,
                    "OpenTelemetry: spans for %s are dropped (%s): runs end faster than it "
                    "takes them. Shown once.",
                    self.endpoint,
                    dropped,
                )
        except Exception as exc:
            warn_once(
                self.endpoint,
                "OpenTelemetry: could not turn run %s into spans for %s (%r); runs go on "
                "without live traces. Shown once.",
                run.get("run_id"),
                self.endpoint,
                exc,
            )

    def flush(self, timeout: float = EXIT_TIMEOUT) -> bool:
        """Sends what is queued, runs the engine handed over included; False if that took
        longer than `timeout` seconds (the sending goes on in the background)."""
        deadline = time.monotonic() + timeout
        drained = handoff.drain(timeout)
        left = max(deadline - time.monotonic(), 0.0)
        return self._bounded(self._processor.force_flush, left) and drained

    def shutdown(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Sends what is queued, waiting at most `timeout` seconds, and stops the sender."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + timeout
        handoff.drain(timeout)
        self._bounded(self._processor.shutdown, max(deadline - time.monotonic(), 0.0))

    @staticmethod
    def _bounded(action: Any, timeout: float) -> bool:
        # The SDK's flush and shutdown wait for a hanging backend as long as its request
        # timeout allows, per batch: run them aside, and stop waiting at our own deadline.
        done = threading.Event()

        def run() -> None:
            try:
                action()
            except Exception:
                log.debug("OpenTelemetry flush failed", exc_info=True)
            finally:
                done.set()

        threading.Thread(target=run, name="otel-live-flush", daemon=True).start()
        return done.wait(timeout)

    def _failed(self, reason: str) -> None:
        warn_once(
            self.endpoint,
            "OpenTelemetry: could not send run traces to %s (%s); runs go on, and their "
            "traces are dropped while it fails. `configurable-agents export otlp` sends them "
            "later from the telemetry tables. Shown once.",
            self.endpoint,
            reason,
        )


def live_exporter_from_env() -> LiveTraceExporter | None:
    """The process's live exporter when OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set, else
    None; one per endpoint and headers, created on first use. Never raises: a setting it
    cannot honour (gRPC, the `otel` extra missing) is one warning and no live export."""
    if not otlp_configured():
        return None
    try:
        endpoint = otlp_endpoint()
        key = (endpoint, tuple(sorted(_env_headers().items())))
        with _live_lock:
            if key not in _live:
                _live[key] = LiveTraceExporter(endpoint)
            return _live[key]
    except Exception as exc:  # OTLPConfigError, MissingExtra, or a bad setting for the SDK
        warn_once(f"config: {exc}", "OpenTelemetry live export is off: %s", exc)
    return None


def _env_headers() -> dict[str, str]:
    return {
        name: os.environ[name]
        for name in ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
        if name in os.environ
    }

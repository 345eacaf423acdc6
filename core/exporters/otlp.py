"""Recorded runs as OpenTelemetry traces, sent over OTLP (http/protobuf) with the SDK.

Spans are built from telemetry rows after the fact (`spans.run_spans`), turned into the
SDK's `ReadableSpan`s and handed to its `OTLPSpanExporter`, which does the encoding,
retries and the standard environment variables (headers, timeout, compression, TLS). The
endpoint is resolved here too, so that every message can name where it tried to send.

Environment, as in the OTel specification: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is)
or OTEL_EXPORTER_OTLP_ENDPOINT (a base URL, `/v1/traces` appended; default
http://localhost:4318), OTEL_EXPORTER_OTLP_(TRACES_)HEADERS, OTEL_EXPORTER_OTLP_(TRACES_)
TIMEOUT, and OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL, of which only `http/protobuf` is
supported. OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES set the resource.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.exporters.extras import missing_extra
from core.exporters.history import count_runs, recorded_runs
from core.exporters.spans import CLIENT, SEMCONV_VERSION, RunContent, SpanData, run_spans
from core.exporters.summary import ExportSummary

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan


SERVICE_NAME = "configurable-agents"
DEFAULT_BASE = "http://localhost:4318"
TRACES_PATH = "/v1/traces"
SUPPORTED_PROTOCOL = "http/protobuf"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# Loggers through which the SDK reports each failed export. While one of our exports runs
# they are silenced (on that thread only) and their message kept, so a dead backend costs
# one warning of ours instead of an error per batch.
SDK_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.common.http",
    "opentelemetry.sdk._shared_internal",
)


class OTLPConfigError(ValueError):
    """The OTLP settings ask for something this exporter cannot do (e.g. gRPC)."""


def otlp_endpoint(endpoint: str | None = None) -> str:
    """The traces URL: `endpoint` if given, else from the environment, else the default."""
    if endpoint:
        return endpoint
    for variable in PROTOCOL_VARIABLES:
        protocol = os.environ.get(variable, "").strip().lower()
        if protocol:
            if protocol != SUPPORTED_PROTOCOL:
                raise OTLPConfigError(
                    f"{variable}={protocol} is not supported: configurable-agents sends OTLP "
                    f"over {SUPPORTED_PROTOCOL} (a collector's port 4318, not gRPC's 4317); "
                    f"set {variable}={SUPPORTED_PROTOCOL}"
                )
            break
    traces, base = (os.environ.get(v, "").strip() for v in ENDPOINT_VARIABLES)
    if traces:
        return traces
    return (base or DEFAULT_BASE).rstrip("/") + TRACES_PATH


def otlp_configured() -> bool:
    """Whether the environment names an OTLP endpoint (what turns live export on)."""
    return any(os.environ.get(v, "").strip() for v in ENDPOINT_VARIABLES)


# ----------------------------------------------------------------------------- SDK spans


def _sdk() -> Any:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk import resources
        from opentelemetry.sdk import trace as sdk_trace
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    except ImportError as exc:
        raise missing_extra("otel", "Exporting OpenTelemetry traces") from exc
    return trace, resources, sdk_trace, InstrumentationScope


class SpanFactory:
    """Turns `SpanData` into the SDK's `ReadableSpan`, sharing one resource and scope."""

    def __init__(self) -> None:
        trace, resources, sdk_trace, scope = _sdk()
        self._trace = trace
        self._readable = sdk_trace.ReadableSpan
        # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win; the SDK's default name does not.
        resource: Resource = resources.Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(resources.Resource({"service.name": SERVICE_NAME}))
        self._resource = resource
        self._scope = scope(
            "configurable_agents.exporters",
            schema_url=f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}",
        )
        self._flags = trace.TraceFlags(trace.TraceFlags.SAMPLED)
        self._ok = trace.Status(trace.StatusCode.UNSET)
        self._kinds = {CLIENT: trace.SpanKind.CLIENT}

    def readable(self, span: SpanData) -> ReadableSpan:
        trace = self._trace

        def context(span_id: int) -> Any:
            return trace.SpanContext(span.trace_id, span_id, False, self._flags)

        return self._readable(
            name=span.name,
            context=context(span.span_id),
            parent=context(span.parent_id) if span.parent_id is not None else None,
            resource=self._resource,
            attributes=span.attributes,
            links=[trace.Link(context(link)) for link in span.links],
            kind=self._kinds.get(span.kind, trace.SpanKind.INTERNAL),
            status=(
                trace.Status(trace.StatusCode.ERROR, span.error)
                if span.error is not None
                else self._ok
            ),
            start_time=span.start_ns,
            end_time=span.end_ns,
            instrumentation_scope=self._scope,
        )

    def for_run(
        self,
        run: Mapping[str, Any],
        nodes: Sequence[Mapping[str, Any]],
        parents: Mapping[str, Sequence[str]] | None = None,
        content: RunContent | None = None,
    ) -> list[ReadableSpan]:
        return [self.readable(span) for span in run_spans(run, nodes, parents, content)]


# ----------------------------------------------------------------------------- sending


class _Quiet(logging.Filter):
    """Drops the SDK's export logs on threads inside `quiet()`, keeping what they said."""

    def __init__(self) -> None:
        super().__init__()
        self.local = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(self.local, "depth", 0):
            return True
        if record.levelno >= logging.WARNING:
            self.local.said.append(record.getMessage())
        return False


_quiet_filter = _Quiet()
for _name in SDK_LOGGERS:
    logging.getLogger(_name).addFilter(_quiet_filter)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silences the SDK's per-batch export logs on this thread."""
    local = _quiet_filter.local
    local.depth = getattr(local, "depth", 0) + 1
    local.said = []
    try:
        yield
    finally:
        local.depth -= 1


def last_sdk_message() -> str | None:
    """What the SDK said (and `quiet` swallowed) on this thread since `quiet` began: its
    first complaint, which names the cause, and its last, which says how it ended."""
    said: list[str] = getattr(_quiet_filter.local, "said", [])
    if not said:
        return None
    return said[0] if len(said) == 1 else f"{said[0]} ... {said[-1]}"


class ReportingExporter:
    """The SDK's OTLP/HTTP exporter for one endpoint, quiet, calling `on_failure(reason)`
    for each batch the backend did not accept (an exception counts as one). It has the
    SDK exporter's interface, so a `BatchSpanProcessor` can drive it."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None,
        on_failure: Callable[[str], None],
        timeout: float | None = None,
    ) -> None:
        try:
            import requests
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import SpanExportResult
        except ImportError as exc:
            raise missing_extra("otel", "Exporting OpenTelemetry traces") from exc

        class Session(requests.Session):
            """Remembers why the last request failed: the SDK keeps that to itself."""

            failure: str | None = None

            def request(self, *args: Any, **kwargs: Any) -> Any:
                try:
                    response = super().request(*args, **kwargs)
                except Exception as exc:
                    self.failure = _describe(exc)
                    raise
                if response.status_code >= 300:
                    self.failure = f"HTTP {response.status_code} {response.reason}"
                    said = " ".join(response.text.split())[:200]
                    if said:  # a backend's own words, e.g. which header it wants
                        self.failure += f": {said}"
                return response

        self._results = SpanExportResult
        self._on_failure = on_failure
        self._session = Session()
        self._inner = OTLPSpanExporter(
            endpoint=endpoint, headers=headers, timeout=timeout, session=self._session
        )

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        self._session.failure = None
        with quiet():
            try:
                result = self._inner.export(spans)
                reason = self._session.failure or last_sdk_message() or "not accepted"
            except Exception as exc:
                result, reason = self._results.FAILURE, repr(exc)
        if result is not self._results.SUCCESS:
            self._on_failure(reason)
        return result

    def shutdown(self) -> None:
        with quiet():
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _describe(exc: Exception) -> str:
    """A request's failure in a few words: the OS error when there is one."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] [^'\")]+", text)
    if found:
        return f"{type(exc).__name__}: {found.group(0)}"
    if "timed out" in text.lower() or "timeout" in type(exc).__name__.lower():
        return f"no answer in time ({type(exc).__name__})"
    return f"{type(exc).__name__}: {text[:200]}"


# ----------------------------------------------------------------------------- history


def export_otlp(
    home: str | os.PathLike[str] | None = None,
    *,
    days: int | None = None,
    workflow: str | None = None,
    simulated: bool | None = None,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Sends the finished runs recorded in `home` as traces to an OTLP endpoint.

    One request per batch of runs; a batch the backend refuses or cannot take stops the
    export with `error` set (naming the endpoint and the cause; nothing is logged, the
    caller reports it), and only acknowledged runs are counted.
    Ids are derived from run ids, so running it again resends the same traces rather than
    new ones: that is how to retry, and backends that upsert keep one copy. `simulated`
    None sends every run, True or False only simulated or only real ones;
    `on_progress(done, total)` follows each batch.

    Raises OTLPConfigError for an unsupported protocol and MissingExtra without the `otel`
    extra; never for an unreachable backend.
    """
    target = otlp_endpoint(endpoint)
    factory = SpanFactory()
    failures: list[str] = []
    exporter = ReportingExporter(target, headers, failures.append)
    summary = ExportSummary(destination=target)
    filters = {"days": days, "workflow": workflow, "simulated": simulated}
    total = count_runs(home, **filters)
    try:
        for batch in recorded_runs(home, **filters):
            spans = [s for rec in batch for s in factory.for_run(rec.run, rec.nodes, rec.parents)]
            exporter.export(spans)
            if failures:
                summary.error = f"could not send traces to {target}: {failures[0]}"
                summary.failed = max(total - summary.runs, len(batch))
                break
            summary.runs += len(batch)
            summary.spans += len(spans)
            if on_progress is not None:
                on_progress(summary.runs, total)
    finally:
        exporter.shutdown()
    return summary

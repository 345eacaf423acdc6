"""Recorded runs as MLflow runs, each with its trace, through MLflow's client APIs.

One MLflow run per workflow run, named `{workflow} {run_id[:8]}`, with the recorded start
and end times: params (workflow, version hash, `model.<node>` = provider/model, `tag.<k>`),
metrics (duration, cost when known, tokens, cache hits, unpriced calls, and per node
`node.<name>.duration_ms` / `node.<name>.cost_usd`), tags (`configurable_agents.run_id`,
`.status`, `.simulated`). Its trace has a CHAIN span for the run, a CHAT_MODEL span per LLM
node and a TOOL span per code node, with the recorded times, the attributes of the OTel
spans (`spans.run_spans`) and span links to each node's DAG parents.

Idempotent: a workflow run already exported to the experiment (found by its
`configurable_agents.run_id` tag) is skipped. The MLflow run is terminated only once its
trace is stored, so a run left RUNNING by an interrupted export is deleted and redone.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from core.exporters.extras import missing_extra
from core.exporters.history import RecordedRun, count_runs, recorded_runs
from core.exporters.spans import PREFIX, RunContent, SpanData, epoch_ns, run_spans, run_tags
from core.exporters.summary import ExportSummary

DEFAULT_EXPERIMENT = "configurable-agents"
RUN_ID_TAG = PREFIX + "run_id"
# Recorded run status -> MLflow run status.
RUN_STATUS = {"success": "FINISHED", "cancelled": "KILLED"}
SPAN_TYPES = {None: "CHAIN", "llm": "CHAT_MODEL", "code": "TOOL"}
QUIET_VARIABLE = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
# With an OTLP endpoint in the environment (our own live traces), MLflow's trace API would
# send the traces there instead of to the tracking server: ours must land in MLflow.
OTLP_SWITCH_VARIABLE = "MLFLOW_ENABLE_OTLP_EXPORTER"
# Each trace is checked right after it is logged; a background queue would only add a wait,
# and a "Flushing the async trace logging queue" line at every process exit.
ASYNC_VARIABLE = "MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"
# MLflow's log_batch limits per request.
MAX_PARAMS, MAX_METRICS = 100, 1000


@dataclass(frozen=True)
class _Prior:
    mlflow_run_id: str
    complete: bool  # terminated: its trace was stored


@dataclass
class _Pending:
    record: RecordedRun
    mlflow_run_id: str
    trace_id: str
    spans: int


def export_mlflow(
    home: str | os.PathLike[str] | None = None,
    *,
    days: int | None = None,
    workflow: str | None = None,
    simulated: bool | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Exports the finished runs recorded in `home` to an MLflow experiment (created if
    missing), skipping those already there. `tracking_uri` defaults to MLflow's own
    (MLFLOW_TRACKING_URI); `simulated` None exports every run, True or False only simulated
    or only real ones. `on_progress(done, total)` follows each run. Stops at the first error,
    with `error` set; only runs whose MLflow run and trace were both stored are counted.
    Raises MissingExtra without `mlflow`."""
    mlflow, client_class = _mlflow()
    uri = tracking_uri or mlflow.get_tracking_uri()
    summary = ExportSummary(destination=f"MLflow {uri}, experiment {experiment!r}")
    filters = {"days": days, "workflow": workflow, "simulated": simulated}
    total = count_runs(home, **filters)
    with _tracking_uri(mlflow, tracking_uri), mlflow_environment():
        client = client_class(uri)
        try:
            experiment_id = experiment_id_for(client, experiment)
            prior = _exported(client, experiment_id)
            for batch in recorded_runs(home, **filters):
                fresh = [rec for rec in batch if not _done(prior.get(rec.run_id))]
                summary.skipped += len(batch) - len(fresh)
                pending = []
                for rec in fresh:
                    if rec.run_id in prior:
                        _discard(client, experiment_id, prior[rec.run_id])
                    pending.append(_start(client, experiment_id, rec))
                mlflow.flush_trace_async_logging()
                for item in pending:
                    client.get_trace(item.trace_id)  # raises if the trace was not stored
                    _finish(client, item.record, item.mlflow_run_id)
                    summary.runs += 1
                    summary.spans += item.spans
                    if on_progress is not None:
                        on_progress(summary.runs + summary.skipped, total)
                if on_progress is not None and not pending:
                    on_progress(summary.runs + summary.skipped, total)
        except Exception as exc:
            summary.error = f"could not export to {summary.destination}: {one_line(exc)}"
            summary.failed = total - summary.runs - summary.skipped
    return summary


def log_run(
    client: Any, experiment_id: str, record: RecordedRun, content: RunContent | None = None
) -> None:
    """Logs one workflow run (as the engine hands it over live) as an MLflow run with its
    trace, inside `mlflow_environment()`. Raises what MLflow raises."""
    import mlflow

    pending = _start(client, experiment_id, record, content)
    mlflow.flush_trace_async_logging()
    client.get_trace(pending.trace_id)  # raises if the trace was not stored
    _finish(client, record, pending.mlflow_run_id)


def one_line(exc: Exception) -> str:
    """An MLflow error in one line: its REST errors carry the whole response otherwise."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}"


def mlflow_client(tracking_uri: str) -> Any:
    """An MlflowClient for `tracking_uri`; MissingExtra without the `mlflow` extra."""
    return _mlflow()[1](tracking_uri)


def _mlflow() -> tuple[Any, Any]:
    try:
        import mlflow
        from mlflow import MlflowClient
    except ImportError as exc:
        raise missing_extra("mlflow", "Exporting to MLflow") from exc
    return mlflow, MlflowClient


@contextlib.contextmanager
def mlflow_environment() -> Iterator[None]:
    """MLflow settings our exports need, unless the user set them: traces go to the tracking
    server even when OTLP variables are set (they configure our own live traces), are
    logged synchronously, and no terminated run prints two "View run" lines after one more
    request. MLflow reads the first two when its tracing starts, i.e. in our first export."""
    with (
        _environ(OTLP_SWITCH_VARIABLE, "false"),
        _environ(ASYNC_VARIABLE, "false"),
        _environ(QUIET_VARIABLE, "true"),
    ):
        yield


@contextlib.contextmanager
def _tracking_uri(mlflow: Any, uri: str | None) -> Iterator[None]:
    if uri is None or uri == mlflow.get_tracking_uri():
        yield
        return
    previous = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """Sets an environment variable the user has not set, for the duration."""
    if name in os.environ:
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


def experiment_id_for(client: Any, name: str) -> str:
    """The experiment's id, creating it if missing (another process may create it first)."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _exported(client: Any, experiment_id: str) -> dict[str, _Prior]:
    """Our runs already in the experiment, by workflow run id: one paged scan."""
    found: dict[str, _Prior] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{RUN_ID_TAG}` IS NOT NULL",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            prior = _Prior(run.info.run_id, run.info.status != "RUNNING")
            if not _done(found.get(run.data.tags[RUN_ID_TAG])):
                found[run.data.tags[RUN_ID_TAG]] = prior
        token = page.token
        if not token:
            return found


def _done(prior: _Prior | None) -> bool:
    return prior is not None and prior.complete


def _discard(client: Any, experiment_id: str, prior: _Prior) -> None:
    """Removes what an interrupted export left: the unfinished MLflow run and its traces."""
    traces = client.search_traces(
        locations=[experiment_id], run_id=prior.mlflow_run_id, include_spans=False
    )
    if traces:
        client.delete_traces(experiment_id, trace_ids=[t.info.trace_id for t in traces])
    client.delete_run(prior.mlflow_run_id)


def _start(
    client: Any, experiment_id: str, rec: RecordedRun, content: RunContent | None = None
) -> _Pending:
    """Creates the MLflow run with its params and metrics, and its trace; the run stays
    RUNNING until `_finish`, after the trace is known to be stored."""
    from mlflow.entities import Metric, Param

    run, spans = rec.run, run_spans(rec.run, rec.nodes, rec.parents, content)
    mlflow_run = client.create_run(
        experiment_id,
        start_time=spans[0].start_ns // 1_000_000,
        run_name=f"{run['workflow']} {run['run_id'][:8]}",
        tags=_tags(run),
    )
    run_id = mlflow_run.info.run_id
    at = spans[0].end_ns // 1_000_000
    params = [Param(k, v) for k, v in _params(rec).items()]
    metrics = [Metric(k, v, at, 0) for k, v in _metrics(rec).items()]
    while params or metrics:
        client.log_batch(run_id, metrics=metrics[:MAX_METRICS], params=params[:MAX_PARAMS])
        params, metrics = params[MAX_PARAMS:], metrics[MAX_METRICS:]
    trace_id = _trace(client, experiment_id, run_id, spans)
    return _Pending(rec, run_id, trace_id, len(spans))


def _finish(client: Any, rec: RecordedRun, mlflow_run_id: str) -> None:
    end = epoch_ns(rec.run.get("finished_at") or rec.run["started_at"]) // 1_000_000
    status = RUN_STATUS.get(rec.run.get("status"), "FAILED")
    client.set_terminated(mlflow_run_id, status=status, end_time=end)


def _tags(run: dict[str, Any]) -> dict[str, str]:
    tags = {
        RUN_ID_TAG: run["run_id"],
        PREFIX + "status": str(run.get("status")),
        PREFIX + "simulated": str(bool(run.get("simulated"))).lower(),
    }
    for key in ("experiment", "variant"):
        if run.get(key):
            tags[PREFIX + key] = str(run[key])
    return tags


def _params(rec: RecordedRun) -> dict[str, str]:
    params = {"workflow": str(rec.run["workflow"]), "workflow_hash": str(rec.run["workflow_hash"])}
    for row in rec.nodes:
        if row.get("node_type") != "code":
            params[f"model.{row['node']}"] = f"{row.get('provider')}/{row.get('model')}"
    for key, value in run_tags(rec.run).items():
        params[f"tag.{key}"] = value
    return params


def _metrics(rec: RecordedRun) -> dict[str, float]:
    run = rec.run
    figures = {
        key: run.get(key)
        for key in (
            "duration_ms",
            "cost_usd",
            "input_tokens",
            "output_tokens",
            "cache_hits",
            "unpriced_calls",
            "saved_cost_usd",
        )
    }
    for row in rec.nodes:
        figures[f"node.{row['node']}.duration_ms"] = row.get("duration_ms")
        figures[f"node.{row['node']}.cost_usd"] = row.get("cost_usd")
    # An unknown figure (a NULL cost: no price) is left out, never logged as 0.
    return {key: float(value) for key, value in figures.items() if value is not None}


def _trace(client: Any, experiment_id: str, mlflow_run_id: str, spans: list[SpanData]) -> str:
    """Logs the trace with the recorded times; returns its id."""
    from mlflow.entities import Link, SpanStatus, SpanStatusCode

    def status(span: SpanData) -> Any:
        if span.error is None:
            return SpanStatus(SpanStatusCode.OK)
        return SpanStatus(SpanStatusCode.ERROR, span.error)

    root, nodes = spans[0], spans[1:]
    started = client.start_trace(
        root.name,
        span_type=SPAN_TYPES[None],
        inputs=root.inputs,
        attributes=root.attributes,
        tags={RUN_ID_TAG: root.attributes[RUN_ID_TAG]},
        experiment_id=experiment_id,
        start_time_ns=root.start_ns,
        run_id=mlflow_run_id,
    )
    trace_id = started.trace_id
    ours = {root.span_id: started.span_id}  # our span id -> MLflow's
    for span in sorted(nodes, key=lambda s: s.start_ns):  # parents start before children
        child = client.start_span(
            span.name,
            trace_id=trace_id,
            parent_id=started.span_id,
            span_type=SPAN_TYPES[span.node_type],
            inputs=span.inputs,
            attributes=span.attributes,
            start_time_ns=span.start_ns,
            links=[Link(trace_id, ours[link]) for link in span.links if link in ours],
        )
        ours[span.span_id] = child.span_id
        client.end_span(
            trace_id,
            child.span_id,
            outputs=span.outputs,
            status=status(span),
            end_time_ns=span.end_ns,
        )
    client.end_trace(trace_id, outputs=root.outputs, status=status(root), end_time_ns=root.end_ns)
    return trace_id

"""`check`: a CI gate over the recorded runs of a window, metric by metric.

The metrics and thresholds are in docs/cli.md. A metric with nothing to judge is SKIP,
which never fails the gate: it judges what was recorded and cannot tell a quiet week from a
broken pipeline. Node figures come from the daily rollup (see `filters.node_days`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from core.analytics.filters import (
    FINISHED_RUN,
    Where,
    latest_workflows,
    node_days,
    simulated_choice,
)
from core.analytics.window import Window, window
from core.formatting import count
from core.settings import data_home
from core.telemetry import get_store
from core.workflow import Workflow
from core.workflow.models import Targets

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
MIN_SUCCESS_RATE = 0.95
MAX_ERROR_RATE = 0.05
MAX_TIMEOUT_RATE = 0.01
MIN_CACHE_HIT_RATE = 0.70
MAX_NODE_TIME_SHARE = 0.20
MAX_NODE_COST_SHARE = 0.50
EVEN_SHARE_FACTOR = 2.0


@dataclass
class Metric:
    name: str  # success_rate, error_rate, ..., run_cost_p95, run_latency_p95
    label: str
    status: str  # PASS | FAIL | SKIP
    value: float | None
    threshold: float | None
    operator: str  # how value must compare with threshold to pass: '>', '<' or '<='
    unit: str  # ratio | usd | ms
    workflow: str | None = None  # for per-workflow metrics
    node: str | None = None  # the node with the largest share, for node-share metrics
    detail: str = ""


@dataclass
class CheckReport:
    start: datetime
    end: datetime
    days: int | None
    label: str
    workflow: str | None
    runs: int
    node_executions: int
    metrics: list[Metric] = field(default_factory=list)
    result: str = PASS  # FAIL when any metric failed; SKIP never fails the gate
    simulated_runs: str = "include"  # include | exclude | only

    @property
    def failed(self) -> list[Metric]:
        return [m for m in self.metrics if m.status == FAIL]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass
class _RunFigures:
    runs: int
    succeeded: int
    cost_p95: float | None
    latency_p95: float | None


@dataclass
class _NodeFigures:
    executions: int = 0
    errors: int = 0
    timeouts: int = 0
    cache_enabled: int = 0
    cache_hits: int = 0
    time_ms: dict[str, float] = field(default_factory=dict)
    cost_usd: dict[str, float] = field(default_factory=dict)


def check(
    home: str | Path | None = None,
    *,
    workflow: str | None = None,
    days: int = 7,
    max_run_cost: float | None = None,
    max_run_latency_ms: float | None = None,
    simulated: bool | None = None,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
) -> CheckReport:
    """`simulated`: None judges every run, True or False only simulated or only real ones."""
    folder = data_home(home)
    span = window(days, start, end)
    runs = _run_figures(folder, span, workflow, simulated)
    nodes = _node_figures(folder, span, workflow, simulated)
    report = CheckReport(
        start=span.start,
        end=span.end,
        days=span.days,
        label=span.label,
        workflow=workflow,
        runs=sum(r.runs for r in runs.values()),
        node_executions=sum(n.executions for n in nodes.values()),
        simulated_runs=simulated_choice(simulated),
    )
    report.metrics += _rates(report, runs, nodes)
    several = len(runs) > 1
    needs_targets = max_run_cost is None or max_run_latency_ms is None
    definitions = latest_workflows(folder, sorted(runs)) if needs_targets else {}
    for name in sorted(runs):
        report.metrics += _node_shares(name, nodes.get(name, _NodeFigures()), several)
        limits = _limits(definitions.get(name), max_run_cost, max_run_latency_ms)
        report.metrics += _percentiles(name, runs[name], limits, several)
    report.result = FAIL if report.failed else PASS
    return report


# ----------------------------------------------------------------------------- queries


def _where(workflow: str | None, simulated: bool | None) -> Where:
    where = Where()
    if workflow:
        where.add("workflow = ?", workflow)
    if simulated is not None:
        where.add("coalesce(simulated, false) = ?", simulated)
    return where


def _run_figures(
    home: Path, span: Window, workflow: str | None, simulated: bool | None
) -> dict[str, _RunFigures]:
    where = _where(workflow, simulated).between("started_at", span).add(FINISHED_RUN)
    rows = get_store(home).query(
        f"""
        SELECT workflow, count(*), count_if(status = 'success'),
            quantile_cont(cost_usd, 0.95), quantile_cont(duration_ms, 0.95)
        FROM runs WHERE {where.sql}
        GROUP BY workflow
        """,
        where.params,
    )
    return {wf: _RunFigures(int(n), int(ok), cost, ms) for wf, n, ok, cost, ms in rows}


def _node_figures(
    home: Path, span: Window, workflow: str | None, simulated: bool | None
) -> dict[str, _NodeFigures]:
    relation, params = node_days(span, _where(workflow, simulated))
    rows = get_store(home).query(
        f"""
        SELECT workflow, node, sum(node_rows),
            coalesce(sum(node_rows) FILTER (WHERE status IN ('failed', 'timeout')), 0),
            coalesce(sum(node_rows) FILTER (WHERE status = 'timeout'), 0),
            coalesce(sum(node_rows) FILTER (WHERE cache_enabled), 0),
            coalesce(sum(node_rows) FILTER (WHERE cache_enabled AND cache_hit), 0),
            sum(duration_ms), sum(cost_usd)
        FROM {relation}
        GROUP BY ALL
        """,
        params,
    )
    found: dict[str, _NodeFigures] = {}
    for wf, node, executions, errors, timeouts, enabled, hits, time_ms, cost in rows:
        figures = found.setdefault(wf, _NodeFigures())
        figures.executions += executions
        figures.errors += errors
        figures.timeouts += timeouts
        figures.cache_enabled += enabled
        figures.cache_hits += hits
        figures.time_ms[node] = float(time_ms)
        figures.cost_usd[node] = float(cost)
    return found


Limit = tuple[float | None, str]  # the limit, and where it came from


def _limits(
    definition: Workflow | None, max_run_cost: float | None, max_run_latency_ms: float | None
) -> tuple[Limit, Limit]:
    """Cost and latency limits: the command line wins over the workflow's own targets."""
    cost: Limit = (max_run_cost, "--max-run-cost")
    latency: Limit = (max_run_latency_ms, "--max-run-latency-ms")
    if definition is None:
        return cost, latency
    settings = definition.spec.workflow
    targets = settings.targets or Targets()
    if max_run_cost is None:
        if targets.max_run_cost is not None:
            cost = (targets.max_run_cost, "targets.max_run_cost")
        else:
            cost = (settings.max_cost, "max_cost")
    if max_run_latency_ms is None:
        latency = (targets.max_run_latency_ms, "targets.max_run_latency_ms")
    return cost, latency


# ----------------------------------------------------------------------------- judging


def _judge(value: float | None, threshold: float | None, operator: str) -> str:
    if value is None or threshold is None:
        return SKIP
    passed = {"<": value < threshold, "<=": value <= threshold, ">": value > threshold}
    return PASS if passed[operator] else FAIL


@dataclass(frozen=True)
class _RateRule:
    name: str
    threshold: float
    operator: str
    what: str  # "<part> of <whole> <what>"
    empty: str  # why there is nothing to judge


_RATE_RULES = (
    _RateRule("success rate", MIN_SUCCESS_RATE, ">", "runs succeeded", "no finished runs"),
    _RateRule(
        "error rate", MAX_ERROR_RATE, "<", "node executions failed or timed out", "no nodes ran"
    ),
    _RateRule("timeout rate", MAX_TIMEOUT_RATE, "<", "node executions timed out", "no nodes ran"),
    _RateRule(
        "cache hit rate",
        MIN_CACHE_HIT_RATE,
        ">",
        "cache-enabled executions were hits",
        "no node ran with its cache enabled",
    ),
)


def _rates(
    report: CheckReport, runs: dict[str, _RunFigures], nodes: dict[str, _NodeFigures]
) -> list[Metric]:
    figures = nodes.values()
    counts = (
        (sum(r.succeeded for r in runs.values()), report.runs),
        (sum(n.errors for n in figures), report.node_executions),
        (sum(n.timeouts for n in figures), report.node_executions),
        (sum(n.cache_hits for n in figures), sum(n.cache_enabled for n in figures)),
    )
    metrics = []
    for rule, (part, whole) in zip(_RATE_RULES, counts, strict=True):
        value = part / whole if whole else None
        metrics.append(
            Metric(
                name=rule.name.replace(" ", "_"),
                label=rule.name,
                status=_judge(value, rule.threshold, rule.operator),
                value=value,
                threshold=rule.threshold,
                operator=rule.operator,
                unit="ratio",
                detail=f"{count(part)} of {count(whole)} {rule.what}" if whole else rule.empty,
            )
        )
    return metrics


def _node_shares(workflow: str, figures: _NodeFigures, several: bool) -> list[Metric]:
    suffix = f" [{workflow}]" if several else ""
    return [
        _share("node_time_share", workflow, figures.time_ms, MAX_NODE_TIME_SHARE, suffix),
        _share("node_cost_share", workflow, figures.cost_usd, MAX_NODE_COST_SHARE, suffix),
    ]


def _share(
    name: str, workflow: str, amounts: dict[str, float], threshold: float, suffix: str
) -> Metric:
    """The largest node's share of the workflow's total, against the threshold or twice an
    even share of the nodes that had any, whichever is larger."""
    metric = Metric(
        name=name,
        label=name.replace("_", " ") + suffix,
        status=SKIP,
        value=None,
        threshold=threshold,
        operator="<=",
        unit="ratio",
        workflow=workflow,
    )
    counted = {node: amount for node, amount in amounts.items() if amount > 0}
    whole = sum(counted.values())
    if not whole:
        metric.detail = f"no {name.removesuffix('_share').replace('_', ' ')} recorded"
        return metric
    metric.node = max(sorted(counted), key=lambda n: counted[n])
    metric.value = counted[metric.node] / whole
    if EVEN_SHARE_FACTOR / len(counted) >= 1:
        metric.detail = f"largest: {metric.node}; too few nodes to judge (fewer than 3)"
        return metric
    metric.threshold = max(threshold, EVEN_SHARE_FACTOR / len(counted))
    metric.status = _judge(metric.value, metric.threshold, "<=")
    metric.detail = f"largest: {metric.node}"
    if metric.threshold > threshold:
        metric.detail += (
            f" (limit is twice an even share of {len(counted)} nodes, "
            f"since {threshold:.0%} cannot be met by so few)"
        )
    return metric


def _percentiles(
    workflow: str, figures: _RunFigures, limits: tuple[Limit, Limit], several: bool
) -> list[Metric]:
    suffix = f" [{workflow}]" if several else ""
    cost, latency = limits
    return [
        _percentile("run_cost_p95", workflow, figures.cost_p95, cost, "usd", suffix),
        _percentile("run_latency_p95", workflow, figures.latency_p95, latency, "ms", suffix),
    ]


def _percentile(
    name: str, workflow: str, value: float | None, limit: Limit, unit: str, suffix: str
) -> Metric:
    threshold, source = limit
    if threshold is None:
        hint = (
            "--max-run-cost or targets.max_run_cost"
            if unit == "usd"
            else ("--max-run-latency-ms or targets.max_run_latency_ms")
        )
        detail = f"no limit: set {hint}"
    elif value is None:
        detail = "no priced runs to measure" if unit == "usd" else "no run durations"
    else:
        detail = f"limit from {source}"
    return Metric(
        name=name,
        label=("p95 run cost" if unit == "usd" else "p95 run latency") + suffix,
        status=_judge(value, threshold, "<="),
        value=value,
        threshold=threshold,
        operator="<=",
        unit=unit,
        workflow=workflow,
        detail=detail,
    )

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
    operator: str  # how value must compare with threshold to pass: '>', '>=', '<' or '<='
    unit: str  # ratio | usd | ms
    workflow: str | None = None  # for per-workflow metrics
    node: str | None = None  # the node with the largest share, for node-share metrics
    detail: str = ""
    source: str = ""  # the limit's origin: '--flag', 'targets.NAME', 'max_cost'; '' built in


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
    min_success_rate: float | None = None,
    min_cache_hit_rate: float | None = None,
    max_node_time_share: float | None = None,
    max_node_cost_share: float | None = None,
    simulated: bool | None = None,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
) -> CheckReport:
    """`simulated`: None judges every run, True or False only simulated or only real ones.
    The limits given here win over each workflow's `targets:` (see `_limits`)."""
    overrides = Targets.model_construct(
        max_run_cost=max_run_cost,
        max_run_latency_ms=max_run_latency_ms,
        min_success_rate=min_success_rate,
        min_cache_hit_rate=min_cache_hit_rate,
        max_node_time_share=max_node_time_share,
        max_node_cost_share=max_node_cost_share,
    )
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
    several = len(runs) > 1
    needs_targets = any(getattr(overrides, name) is None for name in Targets.model_fields)
    definitions = latest_workflows(folder, sorted(runs)) if needs_targets else {}
    limits = {name: _limits(definitions.get(name), overrides) for name in runs}
    # Over one workflow, the overall rates are that workflow's, and so are its rate targets.
    only = next(iter(runs)) if len(runs) == 1 else None
    report.metrics += _rates(
        report, runs, nodes, limits[only] if only else _limits(None, overrides), only
    )
    for name in sorted(runs):
        figures = nodes.get(name, _NodeFigures())
        if several:
            report.metrics += _workflow_rates(name, runs[name], figures, limits[name])
        report.metrics += _node_shares(name, figures, several, limits[name])
        report.metrics += _percentiles(name, runs[name], limits[name], several)
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


Limit = tuple[float | None, str]  # the limit, and where it came from ('' when none)


def _limits(definition: Workflow | None, overrides: Targets) -> dict[str, Limit]:
    """Each `Targets` field's limit for one workflow: the command line's flag, else the
    workflow's `targets:`, else (run cost only) its `max_cost` budget, else none."""
    settings = definition.spec.workflow if definition is not None else None
    targets = settings.targets if settings is not None and settings.targets else Targets()
    limits: dict[str, Limit] = {}
    for name in Targets.model_fields:
        flag, target = getattr(overrides, name), getattr(targets, name)
        if flag is not None:
            limits[name] = (flag, "--" + name.replace("_", "-"))
        elif target is not None:
            limits[name] = (target, f"targets.{name}")
        elif name == "max_run_cost" and settings is not None and settings.max_cost:
            limits[name] = (settings.max_cost, "max_cost")
        else:
            limits[name] = (None, "")
    return limits


# ----------------------------------------------------------------------------- judging


def _judge(value: float | None, threshold: float | None, operator: str) -> str:
    if value is None or threshold is None:
        return SKIP
    passed = {
        "<": value < threshold,
        "<=": value <= threshold,
        ">": value > threshold,
        ">=": value >= threshold,
    }
    return PASS if passed[operator] else FAIL


@dataclass(frozen=True)
class _RateRule:
    name: str
    threshold: float
    operator: str
    what: str  # "<part> of <whole> <what>"
    empty: str  # why there is nothing to judge
    target: str | None = None  # the `Targets` field that may set the threshold


_RATE_RULES = (
    _RateRule(
        "success rate",
        MIN_SUCCESS_RATE,
        ">",
        "runs succeeded",
        "no finished runs",
        "min_success_rate",
    ),
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
        "min_cache_hit_rate",
    ),
)


def _rates(
    report: CheckReport,
    runs: dict[str, _RunFigures],
    nodes: dict[str, _NodeFigures],
    limits: dict[str, Limit],
    workflow: str | None,
) -> list[Metric]:
    """The rates over every run of the window; `workflow` names the only workflow there is,
    whose rate targets then apply."""
    figures = nodes.values()
    counts = (
        (sum(r.succeeded for r in runs.values()), report.runs),
        (sum(n.errors for n in figures), report.node_executions),
        (sum(n.timeouts for n in figures), report.node_executions),
        (sum(n.cache_hits for n in figures), sum(n.cache_enabled for n in figures)),
    )
    return [
        _rate(rule, part, whole, limits, workflow, "")
        for rule, (part, whole) in zip(_RATE_RULES, counts, strict=True)
    ]


def _workflow_rates(
    workflow: str, runs: _RunFigures, nodes: _NodeFigures, limits: dict[str, Limit]
) -> list[Metric]:
    """With several workflows in the window, a workflow's own success and cache hit rates,
    for each of them that its `targets:` (or a flag) sets a limit on."""
    counts = {
        "min_success_rate": (runs.succeeded, runs.runs),
        "min_cache_hit_rate": (nodes.cache_hits, nodes.cache_enabled),
    }
    return [
        _rate(rule, *counts[rule.target], limits, workflow, f" [{workflow}]")
        for rule in _RATE_RULES
        if rule.target is not None and limits[rule.target][0] is not None
    ]


def _rate(
    rule: _RateRule,
    part: int,
    whole: int,
    limits: dict[str, Limit],
    workflow: str | None,
    suffix: str,
) -> Metric:
    threshold, source = limits[rule.target] if rule.target else (None, "")
    operator = ">="  # a `min_` limit the user set is met by reaching it
    if threshold is None:
        threshold, source, operator = rule.threshold, "", rule.operator
    value = part / whole if whole else None
    detail = f"{count(part)} of {count(whole)} {rule.what}" if whole else rule.empty
    return Metric(
        name=rule.name.replace(" ", "_"),
        label=rule.name + suffix,
        status=_judge(value, threshold, operator),
        value=value,
        threshold=threshold,
        operator=operator,
        unit="ratio",
        workflow=workflow if source else None,
        detail=detail + (f"; limit from {source}" if source else ""),
        source=source,
    )


def _node_shares(
    workflow: str, figures: _NodeFigures, several: bool, limits: dict[str, Limit]
) -> list[Metric]:
    suffix = f" [{workflow}]" if several else ""
    time_limit, cost_limit = limits["max_node_time_share"], limits["max_node_cost_share"]
    return [
        _share(
            "node_time_share", workflow, figures.time_ms, MAX_NODE_TIME_SHARE, time_limit, suffix
        ),
        _share(
            "node_cost_share", workflow, figures.cost_usd, MAX_NODE_COST_SHARE, cost_limit, suffix
        ),
    ]


def _share(
    name: str,
    workflow: str,
    amounts: dict[str, float],
    default: float,
    limit: Limit,
    suffix: str,
) -> Metric:
    """The largest node's share of the workflow's total. A limit the user set (a target or
    a flag) is judged as given; the built-in default gives way to twice an even share of
    the nodes that had any, whichever is larger."""
    chosen, source = limit
    metric = Metric(
        name=name,
        label=name.replace("_", " ") + suffix,
        status=SKIP,
        value=None,
        threshold=chosen if chosen is not None else default,
        operator="<=",
        unit="ratio",
        workflow=workflow,
        source=source,
    )
    counted = {node: amount for node, amount in amounts.items() if amount > 0}
    whole = sum(counted.values())
    if not whole:
        metric.detail = f"no {name.removesuffix('_share').replace('_', ' ')} recorded"
        return metric
    metric.node = max(sorted(counted), key=lambda n: counted[n])
    metric.value = counted[metric.node] / whole
    if chosen is not None:
        metric.status = _judge(metric.value, chosen, "<=")
        metric.detail = f"largest: {metric.node}; limit from {source}"
        return metric
    if EVEN_SHARE_FACTOR / len(counted) >= 1:
        metric.detail = f"largest: {metric.node}; too few nodes to judge (fewer than 3)"
        return metric
    metric.threshold = max(default, EVEN_SHARE_FACTOR / len(counted))
    metric.status = _judge(metric.value, metric.threshold, "<=")
    metric.detail = f"largest: {metric.node}"
    if metric.threshold > default:
        metric.detail += (
            f" (limit is twice an even share of {len(counted)} nodes, "
            f"since {default:.0%} cannot be met by so few)"
        )
    return metric


def _percentiles(
    workflow: str, figures: _RunFigures, limits: dict[str, Limit], several: bool
) -> list[Metric]:
    suffix = f" [{workflow}]" if several else ""
    cost, latency = limits["max_run_cost"], limits["max_run_latency_ms"]
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
        source=source if threshold is not None else "",
    )

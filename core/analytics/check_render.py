"""The check report as text: one line per metric with its figure, threshold and verdict."""

from __future__ import annotations

from core.analytics.check import CheckReport
from core.analytics.filters import SIMULATED_CHOICES, kind_of_runs
from core.analytics.window import Window
from core.formatting import count, money


def _figure(value: float | None, unit: str, threshold: bool = False) -> str:
    if value is None:
        return "-"
    if unit == "usd":
        return money(value)
    if unit == "ms":
        return f"{count(value)}ms"
    return f"{value:.0%}" if threshold else f"{value:.1%}"


def render(report: CheckReport) -> str:
    span = Window(report.start, report.end, report.days)
    scope = report.workflow or "all workflows"
    kind = kind_of_runs(SIMULATED_CHOICES[report.simulated_runs])
    if not report.runs:
        return f"No {kind}runs of {scope} {span.phrase}: nothing to check (exit 0)."
    title = (
        f"Check: {scope}, {report.label.lower()} ({count(report.runs)} {kind}runs, "
        f"{count(report.node_executions)} node executions)"
    )
    lines = [title, "=" * len(title)]
    width = max(len(m.label) for m in report.metrics)
    for metric in report.metrics:
        threshold = (
            f"{metric.operator} {_figure(metric.threshold, metric.unit, threshold=True)}"
            if metric.threshold is not None
            else ""
        )
        value = _figure(metric.value, metric.unit)
        lines.append(
            f"  {metric.status:<4}  {metric.label:<{width}}  {value:>9}  {threshold:<10}  "
            f"{metric.detail}".rstrip()
        )
    failed = report.failed
    verdict = f"FAIL ({len(failed)} of {len(report.metrics)} metrics failed)" if failed else "PASS"
    lines += ["", f"Result: {verdict}"]
    return "\n".join(lines)

"""The cost report as text (real spend first, simulated apart) and as one flat CSV table."""

from __future__ import annotations

import csv
import io

from core.analytics.cost import Breakdown, CostReport, CostSection, Delta
from core.analytics.filters import SIMULATED_CHOICES, kind_of_runs
from core.analytics.window import Window
from core.formatting import count, money

DIMENSIONS = ("provider", "model", "workflow", "node", "day")
CSV_COLUMNS = (
    "section",
    "dimension",
    "key",
    "cost_usd",
    "share",
    "calls",
    "input_tokens",
    "output_tokens",
    "unpriced_calls",
    "cache_hits",
    "saved_cost_usd",
)


def render(report: CostReport) -> str:
    """The reference text shape: title, workflow, per-execution figures, breakdowns, advice;
    real spend first, simulated spend after it and apart."""
    if report.empty:
        return _nothing(report)
    title = f"Cost Report: {report.span.title}"
    lines = [title, "=" * len(title), f"Workflow: {report.workflow or 'all workflows'}"]
    if report.providers:
        lines.append(f"Providers: {', '.join(report.providers)}")
    if report.models:
        lines.append(f"Models: {', '.join(report.models)}")
    span = Window(report.start, report.end, report.days)
    for section in report.sections:
        lines.append("")
        lines += _render_section(section, span)
    return "\n".join(lines)


def _nothing(report: CostReport) -> str:
    span = Window(report.start, report.end, report.days)
    scope = f" of {report.workflow}" if report.workflow else ""
    kind = kind_of_runs(SIMULATED_CHOICES[report.simulated_runs])
    return f"No {kind}runs{scope} {span.phrase}."


def _render_section(section: CostSection, span: Window) -> list[str]:
    heading = "Simulated Spend" if section.simulated else "Real Spend"
    if section.empty:
        kind = "simulated" if section.simulated else "real"
        return [f"{heading}: no {kind} runs {span.phrase}."]
    lines = [heading, "-" * len(heading)]
    if section.simulated:
        lines.append("(what the simulated calls would have cost; not money spent)")
    stats, versus = section.runs, span.previous_phrase
    lines += [
        f"Total Executions: {count(stats.executions)}{_vs(section.executions_delta, versus)}",
        f"Total Cost: {money(stats.total_cost_usd)}{_vs(section.cost_delta, versus, True)}",
        f"Average Cost: {money(stats.average_cost_usd)}{_vs(section.average_delta, versus, True)}",
    ]
    if note := section.thin_previous(versus):
        lines.append(f"Note: {note}")
    lines += [
        f"Min Cost: {money(stats.min_cost_usd)}",
        f"Max Cost: {money(stats.max_cost_usd)}",
        f"Tokens: {count(section.input_tokens)} in ({count(section.cached_tokens)} cached by "
        f"providers), {count(section.output_tokens)} out ({count(section.reasoning_tokens)} "
        "reasoning)",
        f"Cache Savings: {money(section.cache_savings_usd)} "
        f"({_calls(section.cache_hits, 'cache hit')})",
    ]
    if section.unpriced_calls:
        lines.append(
            f"Unpriced Calls: {count(section.unpriced_calls)} (no known price for "
            f"{', '.join(section.unpriced_models)}; not in any total, add them under pricing:)"
        )
    lines.append("")
    lines += _render_breakdown("Provider", section.by_provider)
    lines += _render_breakdown("Model", section.by_model)
    if len(section.by_workflow) > 1:
        lines += _render_breakdown("Workflow", section.by_workflow)
    lines += _render_breakdown("Node", section.by_node, mark_top=True)
    lines += _render_breakdown("Day", section.by_day)
    if section.recommendation:
        lines += ["", f"Recommendation: {section.recommendation.text}"]
    return lines


def _vs(delta: Delta | None, versus: str, is_money: bool = False) -> str:
    if delta is None or delta.change is None or not delta.previous:
        return f" (none in the {versus})"
    sign = "+" if delta.change >= 0 else "-"
    amount = money(abs(delta.change)) if is_money else count(abs(delta.change))
    return f" ({sign}{amount}, {delta.change_pct:+.0%} vs {versus})"


def _render_breakdown(title: str, items: list[Breakdown], mark_top: bool = False) -> list[str]:
    lines = [f"Cost by {title}:"]
    names = [b.key for b in items]
    for position, item in enumerate(items):
        key = item.key
        if item.provider and names.count(key) > 1:
            key = f"{key} ({item.provider})"
        line = f"  - {key}: {money(item.cost_usd)} ({item.share:.0%})"
        if item.unpriced_calls:
            line += f", {_calls(item.unpriced_calls, 'unpriced call')}"
        if mark_top and position == 0 and item.cost_usd:
            line += "  ← Most expensive"
        lines.append(line)
    return lines


def _calls(number: int, noun: str) -> str:
    return f"{count(number)} {noun}{'s' * (number != 1)}"


def to_csv(report: CostReport) -> str:
    """One flat table, a row per section, dimension and key, for a spreadsheet to pivot."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for section in report.sections:
        name = "simulated" if section.simulated else "real"
        for dimension in DIMENSIONS:
            for item in getattr(section, f"by_{dimension}"):
                writer.writerow(
                    [
                        name,
                        dimension,
                        item.key,
                        "" if item.cost_usd is None else item.cost_usd,
                        round(item.share, 6),
                        item.calls,
                        item.input_tokens,
                        item.output_tokens,
                        item.unpriced_calls,
                        item.cache_hits,
                        item.saved_cost_usd,
                    ]
                )
    return out.getvalue()

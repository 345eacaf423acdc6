"""The reprice report as text: each model swap, real and simulated calls apart, by node."""

from __future__ import annotations

from core.analytics.filters import SIMULATED_CHOICES, kind_of_runs
from core.analytics.reprice import RepriceReport, RepriceRow, RepriceSection, Swap
from core.analytics.window import Window
from core.formatting import count, money


def render(report: RepriceReport) -> str:
    span = Window(report.start, report.end, report.days)
    title = f"Reprice: {span.title}"
    lines = [title, "=" * len(title), f"Workflow: {report.workflow or 'all workflows'}"]
    for swap in report.swaps:
        lines += ["", _swap_heading(swap)]
        if not swap.calls:
            seen = f"; models called: {', '.join(report.models_seen)}" if report.models_seen else ""
            kind = kind_of_runs(SIMULATED_CHOICES[report.simulated_runs])
            lines.append(f"  No {kind}calls of {swap.old} {span.phrase}{seen}.")
            continue
        for section in swap.sections:
            lines += _render_section(section, span)
    return "\n".join(lines)


def _swap_heading(swap: Swap) -> str:
    return (
        f"{swap.old} -> {swap.new} (${swap.input_per_million:g} in / "
        f"${swap.output_per_million:g} out per million tokens, from {swap.price_source})"
    )


def _render_section(section: RepriceSection, span: Window) -> list[str]:
    kind = "Simulated" if section.simulated else "Real"
    total = section.total
    if not total.calls:
        return [f"  {kind} calls: none {span.phrase}."]
    lines = [
        f"  {kind} calls: {count(total.calls)} ({count(total.input_tokens)} input + "
        f"{count(total.output_tokens)} output tokens)",
        f"    Actual cost:   {money(total.actual_cost_usd)}",
        f"    Repriced cost: {money(total.repriced_cost_usd)}",
        f"    Difference:    {_difference(total)}",
    ]
    if total.unpriced_calls:
        lines.append(
            f"    ({count(total.unpriced_calls)} calls had no recorded price: repriced, "
            "but left out of the difference)"
        )
    lines.append("    By node:")
    several = len({r.workflow for r in section.by_node}) > 1
    for row in section.by_node:
        name = f"{row.workflow}/{row.node}" if several else row.node
        lines.append(
            f"      - {name}: {count(row.calls)} call{'s' * (row.calls != 1)}, "
            f"{money(row.actual_cost_usd)} -> "
            f"{money(row.repriced_cost_usd)} ({_difference(row)})"
        )
    return lines


def _difference(row: RepriceRow) -> str:
    if row.difference_usd is None:
        return "unknown (no recorded price to compare)"
    sign = "+" if row.difference_usd >= 0 else "-"
    pct = f", {row.difference_pct:+.0%}" if row.difference_pct is not None else ""
    return f"{sign}{money(abs(row.difference_usd))}{pct}"

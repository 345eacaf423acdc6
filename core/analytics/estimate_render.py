"""The `run --dry-run --estimate-cost` report, in the product's reference shape."""

from __future__ import annotations

from core.analytics.estimate import Estimate
from core.formatting import count, money


def render(estimate: Estimate) -> str:
    title = "Cost Estimation" + (" (simulated)" if estimate.simulated else "")
    lines = [
        title,
        "=" * len(title),
        f"Workflow: {estimate.filename}",
        _cost_line(estimate),
        f"Estimated Tokens: {count(estimate.tokens)} (input: {count(estimate.input_tokens)}, "
        f"output: {count(estimate.output_tokens)}; range {count(estimate.tokens_low)} - "
        f"{count(estimate.tokens_high)})",
    ]
    if estimate.unpriced:
        lines.append(
            f"Unpriced: {', '.join(estimate.unpriced)} (no known price; not in the total — "
            "add them under pricing:)"
        )
    lines.append("Breakdown by Node:")
    for node in estimate.nodes:
        if node.cached:
            cost = "$0 (cache hit)"
        elif node.cost_usd is None:
            cost = "unpriced"
        else:
            cost = money(node.cost_usd)
        lines.append(f"  - {node.name}: {cost} ({count(node.tokens)} tokens)")
        if not node.cached:
            lines.append(
                f"      {node.provider}/{node.model} · in {count(node.input_tokens)} · "
                f"out {count(node.output_tokens)} ({count(node.output_low)}-"
                f"{count(node.output_high)}) · {node.basis}"
            )
    for warning in estimate.warnings:
        lines.append(f"Warning: {warning}")
    return "\n".join(lines)


def _cost_line(estimate: Estimate) -> str:
    if estimate.cost_usd is None:
        return "Estimated Cost: unknown (no node's model has a known price)"
    partial = " for the priced nodes" if estimate.unpriced else ""
    return (
        f"Estimated Cost: {money(estimate.cost_usd)}{partial} "
        f"(range: {money(estimate.cost_low)} - {money(estimate.cost_high)})"
    )

"""The profile report as text: node table with status badges, critical path, advice."""

from __future__ import annotations

from core.analytics.profile import Profile
from core.formatting import count, money, share


def render(result: Profile) -> str:
    badge = {"OK": "✅ OK", "SLOW": "⚠️ SLOW", "BOTTLENECK": "❌ BOTTLENECK"}
    runs = len(result.runs)
    header = f"Profile: {result.workflow} ({_which_runs(result)}"
    header += f", run {result.runs[0][:12]})" if runs == 1 else ", means per run)"
    lines = [header, "=" * len(header), ""]
    for node in result.nodes:
        model = f" [{node.provider}/{node.model}]" if node.model else f" [{node.node_type}]"
        lines.append(f"{node.name}:{model}")
        spread = f" (p50 {count(node.p50_ms)}ms, p95 {count(node.p95_ms)}ms)" if runs > 1 else ""
        lines.append(f"  Duration: {count(node.duration_ms)}ms{spread}")
        cost = money(node.cost_usd) if node.cost_usd is not None else "unpriced"
        lines.append(
            f"  Cost: {cost} ({count(node.input_tokens)} in / {count(node.output_tokens)} out"
            + (f", {node.cache_hits} cache hits" if node.cache_hits else "")
            + (f", {node.errors} errors" if node.errors else "")
            + ")"
        )
        lines.append(f"  Status: {badge[node.status]} ({', '.join(node.reasons)})")
        lines.append(
            "  Critical path: yes" if node.on_critical_path else
            f"  Slack: {count(node.slack_ms)}ms"
        )  # fmt: skip
        for advice in node.recommendations or ["Recommendation: none, this node is fine"]:
            lines.append(f"  {advice if advice.startswith('Recommendation') else '→ ' + advice}")
        lines.append("")
    lines.append("Workflow Totals:")
    lines.append(f"  Total Duration: {count(result.duration_ms)}ms")
    lines.append(f"  Total Cost: {money(result.cost_usd)}")
    if result.unpriced_calls:
        lines.append(f"  Unpriced calls: {result.unpriced_calls} (cost unknown, not included)")
    if result.most_expensive:
        top = result.most_expensive
        top_share = share(top.cost_usd or 0, result.cost_usd)
        lines.append(f"  Most Expensive Node: {top.name} ({top_share} of cost)")
    if result.slowest:
        slow = result.slowest
        slow_share = share(slow.duration_ms, result.duration_ms)
        lines.append(f"  Slowest Node: {slow.name} ({slow_share} of duration)")
    lines.append(
        f"  Critical Path: {' -> '.join(result.critical_path)} ({count(result.critical_path_ms)}ms)"
    )
    lines.append(
        f"  Parallel Utilisation: {result.average_parallelism:.1f} nodes busy on average, "
        f"up to {result.max_parallelism} could run at once "
        f"({share(result.average_parallelism, result.max_parallelism)})"
    )
    for advice in result.recommendations:
        lines.append(f"  → {advice}")
    return "\n".join(lines)


def _which_runs(result: Profile) -> str:
    """Which kind of runs the figures average: a simulated latency says nothing of a real one,
    so a mix is spelled out."""
    runs, simulated = len(result.runs), result.simulated_count
    plural = "s" * (runs != 1)
    if simulated == runs:
        return f"{runs} simulated run{plural}"
    if simulated == 0:
        return f"{runs} real run{plural}"
    return f"{runs} runs: {runs - simulated} real, {simulated} simulated"

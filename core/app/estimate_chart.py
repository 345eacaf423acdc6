"""How an estimate is drawn: a per-node cost chart with its likely range, and the node table.

Both take an optional baseline (the estimate with the file's own models) so a what-if shows
what moved: swapped nodes get their own colour and a tick where the file's model would land.
Unpriced nodes are labelled, never drawn as $0.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.analytics.estimate import Estimate, NodeEstimate
from core.formatting import count, money

AS_IN_FILE = "model from the file"
SWAPPED = "what-if model"


def _cost_label(node: NodeEstimate) -> str:
    if node.cached:
        return "$0 · cache hit"
    return "unpriced" if node.cost_usd is None else money(node.cost_usd)


def _range_label(node: NodeEstimate) -> str:
    if node.cached or node.cost_low is None or node.cost_high is None:
        return "–"
    return f"{money(node.cost_low)} – {money(node.cost_high)}"


def _baseline_costs(baseline: Estimate | None) -> dict[str, NodeEstimate]:
    return {node.name: node for node in baseline.nodes} if baseline else {}


def _swapped(node: NodeEstimate, before: NodeEstimate | None) -> bool:
    return before is not None and (before.provider, before.model) != (node.provider, node.model)


def chart_rows(estimate: Estimate, baseline: Estimate | None = None) -> pd.DataFrame:
    """One row per LLM node in workflow order (code nodes cost nothing to estimate)."""
    before = _baseline_costs(baseline)
    rows = []
    for node in estimate.nodes:
        old = before.get(node.name)
        swapped = _swapped(node, old)
        rows.append(
            {
                "node": node.name,
                "model": f"{node.provider}/{node.model}",
                "cost": node.cost_usd,
                "low": node.cost_low,
                "high": node.cost_high,
                "label": _cost_label(node),
                "label_x": node.cost_high if node.cost_high is not None else 0.0,
                "range": _range_label(node),
                "output": f"{count(node.output_tokens)} ({count(node.output_low)}–"
                f"{count(node.output_high)})",
                "input": node.input_tokens,
                "basis": node.basis,
                "kind": SWAPPED if swapped else AS_IN_FILE,
                "file_cost": old.cost_usd if swapped and old else None,
                "file_model": f"{old.provider}/{old.model}" if swapped and old else None,
            }
        )
    return pd.DataFrame(rows)


def cost_chart(estimate: Estimate, baseline: Estimate | None = None) -> alt.LayerChart:
    """Horizontal bars of expected cost per node, error bars for the likely range."""
    data = chart_rows(estimate, baseline)
    order = list(data["node"])
    y = alt.Y("node:N", sort=order, title=None, axis=alt.Axis(labelLimit=160))
    tooltip = [
        alt.Tooltip("node:N", title="Node"),
        alt.Tooltip("model:N", title="Model"),
        alt.Tooltip("label:N", title="Expected cost"),
        alt.Tooltip("range:N", title="Likely range"),
        alt.Tooltip("input:Q", title="Input tokens", format=","),
        alt.Tooltip("output:N", title="Output tokens (range)"),
        alt.Tooltip("basis:N", title="Output length from"),
    ]
    colour = alt.Color(
        "kind:N",
        title=None,
        scale=alt.Scale(domain=[AS_IN_FILE, SWAPPED], range=["#4C78A8", "#F58518"]),
        legend=alt.Legend(orient="bottom") if baseline else None,
    )
    x_title = "Estimated cost per run (USD)"
    base = alt.Chart(data)
    bars = base.mark_bar(cornerRadiusEnd=3, height={"band": 0.6}).encode(
        x=alt.X("cost:Q", title=x_title, axis=alt.Axis(format="$.2~g")),
        y=y,
        color=colour,
        tooltip=tooltip,
    )
    ranges = (
        base.transform_filter("isValid(datum.low) && datum.high > datum.low")
        .mark_errorbar(ticks=True, color="#333", thickness=1.5)
        .encode(x=alt.X("low:Q", title=x_title), x2="high:Q", y=y, tooltip=tooltip)
    )
    labels = base.mark_text(align="left", dx=8, fontSize=12, color="#555").encode(
        x="label_x:Q", y=y, text="label:N"
    )
    layers = [bars, ranges, labels]
    if baseline is not None:
        file_ticks = (
            base.transform_filter("isValid(datum.file_cost)")
            .mark_tick(color="#222", thickness=3, size=26)
            .encode(
                x="file_cost:Q",
                y=y,
                tooltip=[
                    alt.Tooltip("file_model:N", title="File's model"),
                    alt.Tooltip("file_cost:Q", title="File's expected cost", format="$.4~g"),
                ],
            )
        )
        layers.insert(1, file_ticks)
    return alt.layer(*layers).properties(height=80 + 52 * len(order))  # axis + rows


def node_table(estimate: Estimate, baseline: Estimate | None = None) -> pd.DataFrame:
    """The per-node figures as a user reads them: money formatted, ranges spelled out."""
    before = _baseline_costs(baseline)
    rows = []
    for node in estimate.nodes:
        row = {
            "node": node.name,
            "model": f"{node.provider}/{node.model}",
            "cost": _cost_label(node),
            "cost range": _range_label(node),
        }
        if baseline is not None:
            row["change vs file"] = _change(node, before.get(node.name))
        row |= {
            "input tokens": node.input_tokens,
            "output tokens": node.output_tokens,
            "output range": f"{count(node.output_low)} – {count(node.output_high)}",
            "cached": node.cached,
            "output length from": node.basis,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _change(node: NodeEstimate, old: NodeEstimate | None) -> str:
    if not _swapped(node, old) or old is None:
        return ""
    if node.cost_usd is None or old.cost_usd is None:
        return f"from {old.provider}/{old.model} (cost not comparable: unpriced)"
    delta = node.cost_usd - old.cost_usd
    sign = "+" if delta >= 0 else "−"
    return f"{sign}{money(abs(delta))} vs {old.model}"

"""The workflow's DAG as an Altair chart, sized to the graph's shape: each layer adds width
and each node of the widest layer adds height, so a 40-node fan-out keeps readable labels.
Nodes are coloured by a group (their kind in the Editor, their state in a run), and a point
selection on the node's name lets a page show the clicked node's details.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

from core.app.graph_layout import layout
from core.engine.results import NodeResult
from core.workflow.graph import Graph

SELECTION = "node"  # the selection's name: the page reads event.selection[SELECTION]
LAYER_PX = 200  # room for a label of LABEL_CHARS characters between two layers
ROW_PX = 36  # two lines of text per node: its name and its detail
MARGIN_PX = 40
MIN_WIDTH_PX = 440  # room for the legend's six states
MIN_HEIGHT_PX = 130  # a one-node graph still shows its node under the legend
LEGEND_PX = 50  # the legend above the plot, outside the chart's height
LABEL_CHARS = 24
DETAIL_CHARS = 32  # smaller type: the full text is in the tooltip
# A run's node states, in the order the legend lists them.
STATE_COLOURS = {
    "pending": "#D0D7DE",
    "running": "#F2B705",
    "ok": "#54A24B",
    "cached": "#4C9BE8",
    "failed": "#E45756",
    "skipped": "#9D9D9D",
}
KIND_COLOURS = {"llm": "#4C78A8", "code": "#F58518"}
FAILED = {"failed", "timeout", "budget_exceeded"}


@dataclass(frozen=True)
class NodeMark:
    """One node as drawn: its colour group and the short text under its name."""

    name: str
    group: str
    detail: str = ""


def node_state(node: NodeResult | None, running: bool = False) -> str:
    """A node's state on the chart: a cache hit is not a call, a cancelled node was skipped."""
    if node is None:
        return "running" if running else "pending"
    if node.status == "success":
        return "cached" if node.cache_hit else "ok"
    return "failed" if node.status in FAILED else "skipped"


def chart_size(graph: Graph) -> tuple[int, int]:
    """Width and height in pixels that give every label its room."""
    shape = layout(graph)
    return (
        max(shape.layers * LAYER_PX + MARGIN_PX, MIN_WIDTH_PX),
        max(shape.widest * ROW_PX + MARGIN_PX, MIN_HEIGHT_PX),
    )


def box_height(graph: Graph, most: int) -> int:
    """The height of the box the chart is drawn in: the whole chart, or `most` pixels and a
    scroll bar for a taller graph."""
    return min(chart_size(graph)[1] + LEGEND_PX, most)


def dag_chart(
    graph: Graph, marks: Mapping[str, NodeMark], colours: Mapping[str, str], legend: str
) -> alt.LayerChart:
    """Edges as rules, nodes as points with their name and detail; `colours` fixes each
    group's colour so a state keeps its colour while a run goes on."""
    shape = layout(graph)
    width, height = chart_size(graph)
    nodes = pd.DataFrame(
        [
            {
                SELECTION: name,
                "label": _short(name, LABEL_CHARS),
                "note": _short(marks[name].detail, DETAIL_CHARS),
                "group": marks[name].group,
                "detail": marks[name].detail,
                "layer": shape.places[name][0],
                "row": shape.places[name][1],
            }
            for name in graph.order
        ]
    )
    edges = pd.DataFrame(
        [
            {
                "layer": shape.places[parent][0],
                "row": shape.places[parent][1],
                "layer2": shape.places[name][0],
                "row2": shape.places[name][1],
            }
            for name in graph.order
            for parent in graph.parents[name]
        ],
        columns=["layer", "row", "layer2", "row2"],
    )
    x_scale = alt.Scale(domain=[-0.3, max(shape.layers, 1) - 0.1])
    y_scale = alt.Scale(domain=[-0.7, max(shape.widest, 1) - 0.3], reverse=True)
    x = alt.X("layer:Q", axis=None, scale=x_scale)
    y = alt.Y("row:Q", axis=None, scale=y_scale)
    pick = alt.selection_point(name=SELECTION, fields=[SELECTION], on="click")
    rules = (
        alt.Chart(edges)
        .mark_rule(color="#8C959F", strokeWidth=1.2)
        .encode(x=x, y=y, x2="layer2:Q", y2="row2:Q")
    )
    base = alt.Chart(nodes).encode(x=x, y=y)
    points = (
        base.mark_circle(size=260, stroke="#57606A", strokeWidth=1)
        .encode(
            color=alt.Color(
                "group:N",
                title=legend,
                scale=alt.Scale(domain=list(colours), range=list(colours.values())),
                legend=alt.Legend(orient="top"),
            ),
            opacity=alt.condition(pick, alt.value(1.0), alt.value(0.45)),
            tooltip=[
                alt.Tooltip(f"{SELECTION}:N", title="node"),
                alt.Tooltip("group:N", title=legend),
                alt.Tooltip("detail:N", title="detail"),
            ],
        )
        .add_params(pick)
    )
    names = base.mark_text(align="left", dx=11, dy=-6, fontSize=12, fontWeight="bold").encode(
        text="label:N"
    )
    details = base.mark_text(align="left", dx=11, dy=8, fontSize=10, color="#57606A").encode(
        text="note:N"
    )
    return alt.layer(rules, points, names, details).properties(width=width, height=height)


def picked_node(event: Any) -> str | None:
    """The node a click on the chart selected, from `st.altair_chart`'s event or state."""
    try:
        chosen = event["selection"][SELECTION]
    except (KeyError, TypeError):
        return None
    return chosen[0].get(SELECTION) if chosen else None


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

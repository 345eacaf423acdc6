"""Where each node of a DAG sits on the graph chart: layers by longest path from the roots
(x), and an order within each layer (y) that follows the parents' places, so edges cross
less. Pure arithmetic, kept apart from the drawing so the layout can be tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.workflow.graph import Graph


@dataclass(frozen=True)
class Layout:
    """Each node's (layer, row); rows are centred so every layer sits around the middle."""

    places: dict[str, tuple[int, float]]
    layers: int  # how many layers: the chart's width grows with it
    widest: int  # the most nodes in one layer: the chart's height grows with it


def layout(graph: Graph) -> Layout:
    """Longest-path layers, then each layer ordered by the mean row of its parents (file
    order breaks ties), centred on the widest layer."""
    layer_of: dict[str, int] = {}
    for name in graph.topological:
        parents = graph.parents[name]
        layer_of[name] = 1 + max(layer_of[p] for p in parents) if parents else 0
    count = 1 + max(layer_of.values(), default=-1)
    members: list[list[str]] = [[] for _ in range(count)]
    for name in graph.order:
        members[layer_of[name]].append(name)
    row_of: dict[str, float] = {}
    for names in members:
        names.sort(key=lambda n: (_parents_mean(graph.parents[n], row_of), graph.position[n]))
        row_of.update((name, float(row)) for row, name in enumerate(names))
    widest = max((len(names) for names in members), default=0)
    places = {
        name: (layer_of[name], row_of[name] + (widest - len(names)) / 2)
        for names in members
        for name in names
    }
    return Layout(places, count, widest)


def _parents_mean(parents: tuple[str, ...], row_of: dict[str, float]) -> float:
    return sum(row_of[p] for p in parents) / len(parents) if parents else 0.0

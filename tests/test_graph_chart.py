"""The DAG chart's layout and drawing: layers follow the edges, no two nodes share a place,
and the chart grows with the graph's shape so a wide fan-out keeps readable labels."""

from __future__ import annotations

import itertools

from helpers import NOW

from core.app.graph_chart import (
    ROW_PX,
    SELECTION,
    STATE_COLOURS,
    NodeMark,
    box_height,
    chart_size,
    dag_chart,
    node_state,
    picked_node,
)
from core.app.graph_layout import layout
from core.engine.results import NodeResult
from core.workflow.graph import Graph

READABLE_ROW_PX = 24  # two lines of 10-12 px text


def _fan_out(width: int) -> Graph:
    leaves = [f"branch_{i}" for i in range(width)]
    names = ["start", *leaves, "join"]
    edges = [("start", leaf) for leaf in leaves] + [(leaf, "join") for leaf in leaves]
    return Graph.build(names, edges)


def test_a_chain_gets_one_layer_per_node_in_order() -> None:
    shape = layout(Graph.build(["a", "b", "c", "d"], None))
    assert [shape.places[n][0] for n in "abcd"] == [0, 1, 2, 3]
    assert shape.layers == 4 and shape.widest == 1


def test_a_node_sits_after_its_longest_path() -> None:
    graph = Graph.build(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d")])
    assert layout(graph).places["d"][0] == 3


def test_a_40_wide_fan_out_is_tall_enough_for_readable_labels_and_nothing_overlaps() -> None:
    graph = _fan_out(40)
    shape = layout(graph)
    assert shape.widest == 40 and shape.layers == 3
    assert len(set(shape.places.values())) == len(graph.order)  # no two nodes at one place
    rows = sorted(shape.places[f"branch_{i}"][1] for i in range(40))
    assert min(b - a for a, b in itertools.pairwise(rows)) >= 1
    _, height = chart_size(graph)
    assert height >= 40 * READABLE_ROW_PX and ROW_PX >= READABLE_ROW_PX
    assert chart_size(_fan_out(4))[1] < height  # sized to the shape, not fixed
    assert box_height(graph, 500) == 500  # a tall graph scrolls in its box
    assert box_height(Graph.build(["a"], None), 500) < 500  # a small one takes what it needs


def test_the_chart_draws_every_node_and_edge_with_a_click_selection() -> None:
    graph = _fan_out(3)
    marks = {name: NodeMark(name, "ok", "ok · 1.0 s") for name in graph.order}
    spec = dag_chart(graph, marks, STATE_COLOURS, "state").to_dict()
    datasets = list(spec["datasets"].values())
    assert sorted(len(rows) for rows in datasets) == [5, 6]  # 5 nodes, 6 edges
    assert [param["name"] for param in spec["params"]] == [SELECTION]
    assert spec["height"] == chart_size(graph)[1]


def test_states_and_a_picked_node() -> None:
    done = NodeResult("a", "llm", "success", NOW, NOW, 5.0)
    hit = NodeResult("a", "llm", "success", NOW, NOW, 0.1, cache_hit=True)
    late = NodeResult("a", "llm", "timeout", NOW, NOW, 9.0)
    assert node_state(None) == "pending" and node_state(None, running=True) == "running"
    assert [node_state(n) for n in (done, hit, late)] == ["ok", "cached", "failed"]
    assert picked_node({"selection": {SELECTION: [{SELECTION: "a"}]}}) == "a"
    assert picked_node({"selection": {SELECTION: []}}) is None and picked_node(None) is None

"""Critical path and slack of a DAG whose nodes took known times.

Every node starts when its last parent finishes (how the scheduler runs them), so the run can
never be shorter than the longest chain of durations: that chain is the critical path, and a
node's slack is how much longer it could have taken without delaying the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from core.workflow.graph import Graph


@dataclass(frozen=True)
class Schedule:
    path: tuple[str, ...]
    length_ms: float
    earliest_start: dict[str, float]
    slack: dict[str, float]

    def on_path(self, name: str) -> bool:
        return name in self._on_path

    @cached_property
    def _on_path(self) -> frozenset[str]:
        return frozenset(self.path)


def critical_path(graph: Graph, durations: Mapping[str, float]) -> Schedule:
    """Nodes missing from `durations` (never ran) count as taking no time."""
    order = graph.topological
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    for name in order:
        start[name] = max((finish[p] for p in graph.parents[name]), default=0.0)
        finish[name] = start[name] + durations.get(name, 0.0)
    length = max(finish.values(), default=0.0)

    latest_finish: dict[str, float] = {}
    for name in reversed(order):
        latest_finish[name] = min(
            (latest_finish[c] - durations.get(c, 0.0) for c in graph.children[name]),
            default=length,
        )
    slack = {name: max(0.0, latest_finish[name] - finish[name]) for name in order}

    path: list[str] = []
    if order:
        rank = {name: index for index, name in enumerate(order)}
        current: str | None = max(order, key=lambda n: (finish[n], rank[n]))
        while current is not None:
            path.append(current)
            parents = graph.parents[current]
            current = max(parents, key=lambda p: finish[p]) if parents else None
    return Schedule(tuple(reversed(path)), length, start, slack)

"""The workflow's DAG: who waits for whom, in what order, and what can see what."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise


@dataclass(frozen=True)
class Graph:
    """Nodes in file order with their parents; `edges is None` means a chain in list order."""

    order: tuple[str, ...]
    parents: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, names: Sequence[str], edges: Iterable[tuple[str, str]] | None) -> Graph:
        parents: dict[str, list[str]] = {name: [] for name in names}
        if edges is None:
            for before, after in pairwise(names):
                parents[after].append(before)
        else:
            for source, target in edges:
                if target in parents and source in parents and source not in parents[target]:
                    parents[target].append(source)
        return cls(tuple(names), {name: tuple(p) for name, p in parents.items()})

    @cached_property
    def children(self) -> dict[str, tuple[str, ...]]:
        children: dict[str, list[str]] = {name: [] for name in self.order}
        for name in self.order:
            for parent in self.parents[name]:
                children[parent].append(name)
        return {name: tuple(c) for name, c in children.items()}

    def find_cycle(self) -> list[str] | None:
        """One cycle as a closed path (first node repeated at the end), or None.

        Iterative, so a 10,000-node chain cannot exhaust the recursion limit: after Kahn's
        pass, every node left over has a parent that is also left over, so walking parents
        from any of them must come back to a node already seen.
        """
        left = self._left_after_kahn()
        if not left:
            return None
        walk: list[str] = []
        seen: dict[str, int] = {}
        name = next(n for n in self.order if n in left)
        while name not in seen:
            seen[name] = len(walk)
            walk.append(name)
            name = next(p for p in self.parents[name] if p in left)
        cycle = list(reversed(walk[seen[name] :]))
        first = min(range(len(cycle)), key=lambda i: self.order.index(cycle[i]))
        cycle = cycle[first:] + cycle[:first]
        return [*cycle, cycle[0]]

    def _left_after_kahn(self) -> set[str]:
        remaining = {name: len(self.parents[name]) for name in self.order}
        ready = [name for name in self.order if remaining[name] == 0]
        while ready:
            for child in self.children[ready.pop()]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        return {name for name, count in remaining.items() if count > 0}

    @cached_property
    def topological(self) -> tuple[str, ...]:
        """Kahn's order, ties broken by file order so runs and reports are stable."""
        remaining = {name: len(self.parents[name]) for name in self.order}
        ready = [name for name in self.order if remaining[name] == 0]
        result: list[str] = []
        while ready:
            name = ready.pop(0)
            result.append(name)
            for child in self.children[name]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        if len(result) != len(self.order):
            raise ValueError("graph has a cycle")
        return tuple(result)

    @cached_property
    def ancestors(self) -> dict[str, frozenset[str]]:
        result: dict[str, frozenset[str]] = {}
        for name in self.topological:
            found: set[str] = set()
            for parent in self.parents[name]:
                found.add(parent)
                found |= result[parent]
            result[name] = frozenset(found)
        return result

    @cached_property
    def sinks(self) -> tuple[str, ...]:
        return tuple(name for name in self.order if not self.children[name])

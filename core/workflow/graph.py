"""The workflow's DAG: who waits for whom, in what order, and what can see what.

Every pass here is linear in nodes plus edges, so a 20,000-node chain costs what a 20,000-node
fan-out does. No node's full set of ancestors is kept: in a chain those sets add up to
n²/2 entries (9 GB at 20,000 nodes). Validation asks whether given pairs are upstream of each
other instead, answered for all pairs at once (`upstream_pairs`), and a code node's
ancestors are walked only when it runs (`ancestors_of`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise

# Referenced nodes answered per pass of `upstream_pairs`: each node then carries a bitmask of
# at most this many bits (512 bytes), whatever the size of the workflow.
_BLOCK = 4096


@dataclass(frozen=True)
class Graph:
    """Nodes in file order with their parents; `edges is None` means a chain in list order."""

    order: tuple[str, ...]
    parents: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, names: Sequence[str], edges: Iterable[tuple[str, str]] | None) -> Graph:
        # dicts as ordered sets: a node with 20,000 parents must not scan a list per edge
        parents: dict[str, dict[str, None]] = {name: {} for name in names}
        if edges is None:
            for before, after in pairwise(names):
                parents[after][before] = None
        else:
            for source, target in edges:
                if target in parents and source in parents:
                    parents[target][source] = None
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
        position = self.position
        first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
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
    def position(self) -> dict[str, int]:
        """Each node's index in file order."""
        return {name: index for index, name in enumerate(self.order)}

    @cached_property
    def topological(self) -> tuple[str, ...]:
        """Kahn's order, ties broken by file order so runs and reports are stable."""
        remaining = {name: len(self.parents[name]) for name in self.order}
        ready = deque(name for name in self.order if remaining[name] == 0)
        result: list[str] = []
        while ready:
            name = ready.popleft()
            result.append(name)
            for child in self.children[name]:
                remaining[child] -= 1
                if remaining[child] == 0:
                    ready.append(child)
        if len(result) != len(self.order):
            raise ValueError("graph has a cycle")
        return tuple(result)

    def ancestors_of(self, name: str) -> frozenset[str]:
        """Every node `name` waits for, directly or not."""
        found: set[str] = set()
        todo = list(self.parents[name])
        while todo:
            parent = todo.pop()
            if parent not in found:
                found.add(parent)
                todo.extend(self.parents[parent])
        return frozenset(found)

    def upstream_pairs(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (ancestor, node) pairs among `pairs` where `node` waits for `ancestor`.

        The referenced ancestors are numbered in topological order and taken _BLOCK at a
        time; one pass in topological order gives every node the bitmask of those it waits
        for, and each pass covers only the nodes between the block's first ancestor and its
        last asker. A chain whose nodes read their predecessors thus costs one linear pass
        in all. The graph must have no cycle.
        """
        asked = {(a, n) for a, n in pairs if a in self.parents and n in self.parents}
        if not asked:
            return set()
        order = self.topological
        rank = {name: index for index, name in enumerate(order)}
        targets = sorted({a for a, _ in asked}, key=rank.__getitem__)
        askers: dict[str, list[str]] = {}
        for ancestor, node in asked:
            askers.setdefault(ancestor, []).append(node)
        found: set[tuple[str, str]] = set()
        for start in range(0, len(targets), _BLOCK):
            block = targets[start : start + _BLOCK]
            bits = {name: 1 << index for index, name in enumerate(block)}
            first = rank[block[0]]
            last = max(rank[n] for a in block for n in askers[a])
            masks: dict[str, int] = {}
            for name in order[first : last + 1]:
                mask = 0
                for parent in self.parents[name]:
                    mask |= masks.get(parent, 0) | bits.get(parent, 0)
                masks[name] = mask
            for ancestor in block:
                bit = bits[ancestor]
                found.update((ancestor, n) for n in askers[ancestor] if masks.get(n, 0) & bit)
        return found

    @cached_property
    def sinks(self) -> tuple[str, ...]:
        return tuple(name for name in self.order if not self.children[name])

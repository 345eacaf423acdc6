"""Parse YAML safely while remembering where every key and value came from.

Validation errors are only useful when they point at the offending line and column, so the
parser keeps, for each path into the document (a tuple of mapping keys and list indexes), the
position of the key and the span of its value.

YAML aliases let a few hundred bytes stand for billions of values (an "alias bomb"), and
everything after parsing walks the expanded document; so before anything is built, the
node graph is measured: aliases may add at most ALIAS_VALUES values, and nesting may go
MAX_DEPTH levels deep. Both checks cost one pass over the distinct nodes.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import yaml

from core.errors import Problem

try:  # the C loader is several times faster; fall back where libyaml is missing
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]

ALIAS_VALUES = 100_000  # values aliases may add to a document, all aliases together
MAX_DEPTH = 100  # collections inside collections; workflows need a handful


class Span(NamedTuple):
    """A region of the source: 0-based line/column of its start, and character offsets.
    A tuple: one is made per value of the document, and a tuple is made fastest."""

    line: int
    column: int
    start: int
    end: int


@dataclass
class SourceMap:
    """Positions of keys and values by document path."""

    text: str
    values: dict[Path, Span] = field(default_factory=dict)
    keys: dict[Path, Span] = field(default_factory=dict)

    def value(self, path: Path) -> tuple[int, int]:
        """1-based line/column of the value at `path`, or of its nearest located ancestor."""
        span = self._nearest(self.values, path)
        return (span.line + 1, span.column + 1) if span else (1, 1)

    def key(self, path: Path) -> tuple[int, int]:
        """1-based line/column of the key naming `path` (falls back to the value)."""
        span = self.keys.get(path)
        if span is not None:
            return span.line + 1, span.column + 1
        return self.value(path)

    def offset_position(self, path: Path, needle: str, occurrence: int = 0) -> tuple[int, int]:
        """Position of the n-th occurrence of `needle` inside the source of the value at `path`.

        Searching the raw source (rather than the parsed string) keeps columns right for every
        scalar style, including block scalars whose indentation the parser strips.
        """
        span = self.values.get(path)
        if span is None:
            return self.value(path)
        index = span.start - 1
        for _ in range(occurrence + 1):
            index = self.text.find(needle, index + 1, span.end)
            if index < 0:
                return span.line + 1, span.column + 1
        line = bisect.bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    @cached_property
    def _line_starts(self) -> list[int]:
        """Offsets where lines begin: one problem per node must not rescan the text."""
        return [0] + [match.end() for match in re.finditer("\n", self.text)]

    @staticmethod
    def _nearest(table: dict[Path, Span], path: Path) -> Span | None:
        for cut in range(len(path), -1, -1):
            span = table.get(path[:cut])
            if span is not None:
                return span
        return None


class YamlSyntaxError(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def _span(node: yaml.Node) -> Span:
    start, end = node.start_mark, node.end_mark
    return Span(start.line, start.column, start.index, end.index)


def parse(text: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Return the document, its source map, and problems such as duplicate keys.

    Raises YamlSyntaxError with the located syntax problem when the text is not YAML.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is not None:
            problem = _expansion_problem(root)
            if problem is not None:
                raise YamlSyntaxError([problem])
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark  # an unclosed quote: point where it opened, not at EOF
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise YamlSyntaxError([Problem(line, column, f"invalid YAML: {message}")]) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError([Problem(1, 1, f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    source = SourceMap(text)
    problems: list[Problem] = []
    if root is not None:
        _index(root, (), source, problems)
    return data, source, problems


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _expansion_problem(root: yaml.Node) -> Problem | None:
    """Whether the document, aliases expanded, stays within ALIAS_VALUES extra values and
    MAX_DEPTH levels; the problem is located at the collection where the limit is crossed.

    An alias is a node reached a second time: it adds its whole expanded size, which each
    node computes once (post-order, iteratively: the document may be deep), so a bomb is
    refused after visiting its few distinct nodes, not its billions of values.
    """
    expanded: dict[int, int] = {}  # id(node) -> values once its aliases are expanded
    open_sizes: dict[int, int] = {id(root): 1}  # collections being summed
    added = 0
    stack = [(root, iter(_children(root)))]
    while stack:
        node, children = stack[-1]
        total = 0
        for child in children:
            key = id(child)
            if key in expanded:
                added += expanded[key]
                total += expanded[key]
                if added > ALIAS_VALUES:
                    return _located(
                        node,
                        f"aliases expand the document by more than {ALIAS_VALUES:,} values "
                        "(an alias bomb?); write the values out, or use fewer aliases",
                    )
            elif key in open_sizes:
                return _located(child, "an alias refers to a collection that contains it")
            elif isinstance(child, yaml.ScalarNode):
                expanded[key] = 1
                total += 1
            elif len(stack) >= MAX_DEPTH:
                return _located(child, f"nested more than {MAX_DEPTH} levels deep")
            else:
                open_sizes[id(node)] += total
                open_sizes[key] = 1
                stack.append((child, iter(_children(child))))
                break
        else:
            stack.pop()
            size = expanded[id(node)] = open_sizes.pop(id(node)) + total
            if stack:
                open_sizes[id(stack[-1][0])] += size
    return None


def _located(node: yaml.Node, message: str) -> Problem:
    mark = node.start_mark
    return Problem(mark.line + 1, mark.column + 1, f"invalid YAML: {message}")


def _index(node: yaml.Node, path: Path, source: SourceMap, problems: list[Problem]) -> None:
    source.values[path] = _span(node)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key in seen:
                mark = key_node.start_mark
                problems.append(Problem(mark.line + 1, mark.column + 1, f"duplicate key '{key}'"))
            seen.add(key)
            child = (*path, key)
            source.keys[child] = _span(key_node)
            _index(value_node, child, source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index(item, (*path, position), source, problems)

"""Parse YAML safely while remembering where every key and value came from.

Validation errors are only useful when they point at the offending line and column, so the
parser keeps, for each path into the document (a tuple of mapping keys and list indexes), the
position of the key and the span of its value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from core.errors import Problem

try:  # the C loader is several times faster; fall back where libyaml is missing
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Span:
    """A region of the source: 0-based line/column of its start, and character offsets."""

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
        line = self.text.count("\n", 0, index)
        column = index - (self.text.rfind("\n", 0, index) + 1)
        return line + 1, column + 1

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

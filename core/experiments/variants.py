"""Variants: the workflow with a variant's overrides deep-merged in, validated as a workflow.

A merged workflow is checked by the same validation as any workflow file, and each problem
is traced back to the override that caused it, so `prompt: "{inputs.qestion}"` under a
variant is reported at that line of the experiment file, not in a document nobody wrote.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import yaml

from core.errors import Problem, WorkflowError
from core.workflow import Workflow, parse_workflow
from core.workflow.validation import did_you_mean
from core.workflow.yaml_source import Path, SourceMap, parse

# Keys of a node an override may not change: the node's identity, which scorers name.
FIXED_NODE_KEYS = ("name", "type")


@dataclass(frozen=True)
class Variant:
    name: str
    workflow: Workflow
    overridden: bool  # False: the workflow file exactly as it is (same hash as its own runs)
    description: str | None = None


def deep_merge(base: Any, override: Any) -> Any:
    """Mappings merge key by key, at any depth; anything else replaces what was there."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def _leaves(value: Any, path: Path) -> list[Path]:
    """Every path an override sets, mappings included (so a problem on any of them maps)."""
    paths = [path]
    if isinstance(value, dict):
        for key, sub in value.items():
            paths += _leaves(sub, (*path, key))
    return paths


def merged_document(
    base: dict[str, Any], variant: dict[str, Any], at: Path, source: SourceMap
) -> tuple[dict[str, Any], dict[Path, Path], list[Problem]]:
    """(the merged workflow document, merged path -> experiment path of each override,
    problems with the overrides themselves); `at` is the variant's path in the experiment."""
    document = copy.deepcopy(base)
    origin: dict[Path, Path] = {}
    problems: list[Problem] = []
    for section in ("workflow", "pricing"):
        override = variant.get(section)
        if isinstance(override, dict):
            document[section] = deep_merge(document.get(section) or {}, override)
            for path in _leaves(override, (section,)):
                origin[path] = (*at, *path)
    nodes = variant.get("nodes")
    listed = document.get("nodes") if isinstance(document.get("nodes"), list) else []
    index = {node.get("name"): i for i, node in enumerate(listed) if isinstance(node, dict)}
    for name, override in (nodes or {}).items():
        where = (*at, "nodes", name)
        if name not in index:
            problems.append(
                Problem(
                    *source.key(where),
                    f"variant '{variant.get('name')}': unknown node '{name}'"
                    f"{did_you_mean(str(name), [n for n in index if isinstance(n, str)])}",
                )
            )
            continue
        for key in FIXED_NODE_KEYS:
            if isinstance(override, dict) and key in override:
                problems.append(
                    Problem(
                        *source.key((*where, key)),
                        f"variant '{variant.get('name')}': a variant cannot change a node's "
                        f"{key} (scorers and reports name nodes by it)",
                    )
                )
        if isinstance(override, dict):
            position = index[name]
            listed[position] = deep_merge(listed[position], override)
            for path in _leaves(override, ("nodes", position)):
                origin[path] = (*where, *path[2:])
    return document, origin, problems


def build_variant(
    name: str,
    base: Workflow,
    document: dict[str, Any],
    origin: dict[Path, Path],
    at: Path,
    source: SourceMap,
    description: str | None,
) -> tuple[Variant | None, list[Problem]]:
    """The variant's workflow, or the problems of the merged workflow, located at the
    overrides that caused them in the experiment file."""
    if not origin:
        return Variant(name, base, False, description), []
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    try:
        workflow = parse_workflow(text, base.filename)
    except WorkflowError as exc:
        merged_map = parse(text)[1]
        return None, [
            Problem(*_trace(p, merged_map, origin, at, source), f"variant '{name}': {p.message}")
            for p in exc.problems
        ]
    return Variant(name, workflow, True, description), []


def _trace(
    problem: Problem, merged: SourceMap, origin: dict[Path, Path], at: Path, source: SourceMap
) -> tuple[int, int]:
    """Where in the experiment file the override behind a merged-workflow problem is: the
    deepest override at or above the merged path the problem points into; the variant's
    name when no override is (the problem came from the workflow's interplay with it)."""
    spot = (problem.line - 1, problem.column - 1)
    best: Path | None = None
    at_key = False
    for is_key, table in ((True, merged.keys), (False, merged.values)):
        for path, span in table.items():
            inside = (span.line, span.column) == spot or _contains(merged.text, span, spot)
            if inside and (best is None or len(path) > len(best)):
                best, at_key = path, is_key
    while best:
        if best in origin:
            return source.key(origin[best]) if at_key else source.value(origin[best])
        best, at_key = best[:-1], False
    return source.value((*at, "name"))


def _contains(text: str, span: Any, spot: tuple[int, int]) -> bool:
    offset = _offset(text, spot)
    return offset >= 0 and span.start <= offset < span.end


def _offset(text: str, spot: tuple[int, int]) -> int:
    line, column = spot
    position = 0
    for _ in range(line):
        position = text.find("\n", position) + 1
        if position == 0:
            return -1
    return position + column

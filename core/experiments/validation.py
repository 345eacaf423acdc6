"""Every problem in an experiment file, located at its line and column.

The shape pass turns pydantic's errors into located problems with "did you mean" for
misspelt keys and scorer types, as the workflow's validation does. The semantic pass checks
what needs the workflow and the dataset: scorers on nodes that exist, expected columns the
dataset has, templates over declared inputs, patterns and code that compile, a baseline and
a primary scorer that are defined.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from pydantic import BaseModel, ValidationError

from core.catalog import litellm_data
from core.catalog.model_names import PROVIDER_ALIASES, SIMULATED, litellm_provider
from core.errors import Problem
from core.experiments.model import (
    COMPARED,
    SCORER_TYPES,
    ExperimentSpec,
    Sample,
    ScorerBase,
    VariantSpec,
)
from core.workflow import Workflow
from core.workflow.models import LLMSettings, SandboxSettings, SimulateSettings
from core.workflow.templates import compile_template
from core.workflow.validation import did_you_mean
from core.workflow.yaml_source import Path, SourceMap

# The python scorer's code runs after one line that puts output, expected and inputs in scope.
PYTHON_PRELUDE = (
    'output, expected, inputs = inputs["output"], inputs["expected"], inputs["inputs"]; '
    "score = reason = None\n"
)
WHOLE_RUN = ("max_cost", "max_latency_ms")  # scorers of the cell's run, not of an output
_ALLOWED = {"variants": "letters, digits, _, - and .", "scorers": "letters, digits and _"}


def _child(container: Any, part: Any) -> tuple[bool, Any]:
    if isinstance(container, dict) and part in container:
        return True, container[part]
    if isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container):
        return True, container[part]
    return False, None


def get(data: Any, path: Path) -> Any:
    for part in path:
        found, data = _child(data, part)
        if not found:
            return None
    return data


def _real_path(loc: tuple[Any, ...], data: Any) -> Path:
    """A pydantic location without its union members and tags (not in the document)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        found, value = _child(current, part)
        if found:
            current = value
            path.append(part)
    return tuple(path)


def describe(path: Path, data: Any) -> str:
    """`scorer 'exact'`, `variant 'mini' nodes.answer`, `sample`, `the experiment`."""
    if len(path) >= 2 and path[0] in ("scorers", "variants") and isinstance(path[1], int):
        entry = get(data, path[:2])
        name = entry.get("name") if isinstance(entry, dict) else None
        kind = path[0][:-1]
        label = f"{kind} '{name}'" if isinstance(name, str) else f"{kind} #{path[1] + 1}"
        rest = ".".join(str(p) for p in path[2:])
        return f"{label} {rest}".strip()
    return ".".join(str(p) for p in path) or "the experiment"


def _model_at(path: Path, data: Any) -> type[BaseModel] | None:
    if not path:
        return ExperimentSpec
    if path == ("sample",):
        return Sample
    if len(path) == 2 and path[0] == "variants":
        return VariantSpec
    if len(path) == 2 and path[0] == "scorers":
        kind = get(data, (*path, "type"))
        return SCORER_TYPES.get(kind, ScorerBase) if isinstance(kind, str) else ScorerBase
    named = {"llm": LLMSettings, "simulate": SimulateSettings, "sandbox": SandboxSettings}
    return named.get(str(path[-1])) if path[0] == "scorers" else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def schema_problems(data: Any, source: SourceMap) -> list[Problem]:
    try:
        ExperimentSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return []
    misspelt: set[tuple[Path, str]] = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            path = _real_path(tuple(error["loc"]), data)
            model = _model_at(path[:-1], data)
            close = (
                difflib.get_close_matches(str(path[-1]), _keys_of(model), 1, 0.6) if model else []
            )
            misspelt.update((path[:-1], key) for key in close)
    problems: list[Problem] = []
    seen: set[Path] = set()
    for error in errors:
        if error["type"] == "missing":
            parent = _real_path(tuple(error["loc"][:-1]), data)
            if (parent, str(error["loc"][-1])) in misspelt:
                continue
        problem, path = _problem_from(error, data, source)
        if error["type"] not in ("extra_forbidden", "missing") and path in seen:
            continue  # one value failing every member of a union is one problem
        seen.add(path)
        problems.append(problem)
    return problems


def _problem_from(error: Any, data: Any, source: SourceMap) -> tuple[Problem, Path]:
    loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        path = _real_path(loc, data)
        model = _model_at(path[:-1], data)
        hint = did_you_mean(str(path[-1]), _keys_of(model)) if model else ""
        where = describe(path[:-1], data)
        return Problem(*source.key(path), f"unknown key '{path[-1]}' in {where}{hint}"), path
    if kind == "missing":
        parent = _real_path(loc[:-1], data)
        message = f"{describe(parent, data)}: missing required key '{loc[-1]}'"
        return Problem(*source.key(parent), message), (*parent, str(loc[-1]))
    path = _real_path(loc, data)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = get(data, (*path, "type"))
        types = ", ".join(SCORER_TYPES)
        if kind == "union_tag_not_found":
            message = f"{describe(path, data)}: missing required key 'type' (one of {types})"
            return Problem(*source.key(path), message), path
        message = (
            f"{describe(path, data)}: unknown scorer type '{tag}'"
            f"{did_you_mean(str(tag), SCORER_TYPES)} (types: {types})"
        )
        return Problem(*source.value((*path, "type")), message), path
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in ("dict_type", "model_type"):
        message = f"expected a mapping, got {type(get(data, path)).__name__}"
    elif kind == "list_type":
        message = f"expected a list, got {type(get(data, path)).__name__}"
    elif kind == "string_pattern_mismatch":
        allowed = _ALLOWED.get(path[0] if len(path) > 1 else "", "letters, digits, _ and -")
        message = f"names may only contain {allowed} (got {get(data, path)!r})"
    return Problem(*source.value(path), f"{describe(path, data)}: {message}"), path


def semantic_problems(
    spec: ExperimentSpec,
    source: SourceMap,
    workflow: Workflow,
    columns: list[str] | None,
) -> list[Problem]:
    """Problems that need the workflow and the dataset's columns (the spec is well formed);
    `columns` is None when the dataset could not be read."""
    problems: list[Problem] = []
    variants = [v.name for v in spec.variants]
    problems += _duplicates(variants, "variants", "variant", source)
    if spec.baseline is not None and spec.baseline not in variants:
        problems.append(
            Problem(
                *source.value(("baseline",)),
                f"baseline '{spec.baseline}' is not a variant"
                f"{did_you_mean(spec.baseline, variants)} (variants: {', '.join(variants)})",
            )
        )
    scorers = [s.name for s in spec.scorers]
    problems += _duplicates(scorers, "scorers", "scorer", source)
    if spec.primary is not None and spec.primary not in scorers:
        problems.append(
            Problem(
                *source.value(("primary",)),
                f"primary '{spec.primary}' is not a scorer{did_you_mean(spec.primary, scorers)}",
            )
        )
    for index, scorer in enumerate(spec.scorers):
        problems += _scorer_problems(scorer, ("scorers", index), source, workflow, columns)
    return problems


def _duplicates(names: list[str], section: str, kind: str, source: SourceMap) -> list[Problem]:
    problems = []
    for index, name in enumerate(names):
        if name in names[:index]:
            first = source.value((section, names.index(name), "name"))[0]
            problems.append(
                Problem(
                    *source.value((section, index, "name")),
                    f"duplicate {kind} name '{name}' (first defined at line {first})",
                )
            )
    return problems


def _scorer_problems(
    scorer: Any, at: Path, source: SourceMap, workflow: Workflow, columns: list[str] | None
) -> list[Problem]:
    label = f"scorer '{scorer.name}'"
    problems: list[Problem] = []
    if scorer.node is not None:
        if scorer.type in WHOLE_RUN:
            problems.append(
                Problem(
                    *source.key((*at, "node")),
                    f"{label}: {scorer.type} scores the whole run of a cell; remove node:",
                )
            )
        elif scorer.node not in workflow.nodes:
            problems.append(
                Problem(
                    *source.value((*at, "node")),
                    f"{label}: unknown node '{scorer.node}'"
                    f"{did_you_mean(scorer.node, workflow.nodes)} (nodes of {workflow.name}: "
                    f"{', '.join(workflow.nodes)})",
                )
            )
    expected = getattr(scorer, "expected", None)
    if expected is not None or scorer.type in COMPARED:
        problems += _expected_problems(
            expected, (*at, "expected"), label, source, workflow, columns
        )
    if scorer.type == "regex":
        try:
            re.compile(scorer.pattern)
        except re.error as exc:
            problems.append(
                Problem(*source.value((*at, "pattern")), f"{label}: invalid pattern: {exc}")
            )
    elif scorer.type == "json_schema":
        problems += _json_schema_problems(scorer.schema_, (*at, "schema"), label, source)
    elif scorer.type == "python":
        problems += _code_problems(scorer.code, (*at, "code"), label, source)
    elif scorer.type == "llm_judge":
        problems += _provider_problems(scorer.llm.provider, (*at, "llm", "provider"), source)
    return problems


def column_of(expected: Any) -> str | None:
    """The dataset column `expected: {column: NAME}` names, else None."""
    if isinstance(expected, dict) and set(expected) == {"column"}:
        column = expected["column"]
        return column if isinstance(column, str) else None
    return None


def _expected_problems(
    expected: Any,
    at: Path,
    label: str,
    source: SourceMap,
    workflow: Workflow,
    columns: list[str] | None,
) -> list[Problem]:
    if expected is None:
        return [Problem(*source.key(at[:-1]), f"{label}: missing required key 'expected'")]
    column = column_of(expected)
    if column is not None:
        if columns is None or column in columns:
            return []
        return [
            Problem(
                *source.value((*at, "column")),
                f"{label}: the dataset has no column '{column}'{did_you_mean(column, columns)}"
                f" (columns: {', '.join(columns) or 'none'})",
            )
        ]
    if not isinstance(expected, str):
        return []
    problems = []
    for ref in compile_template(expected).references:
        if ref.kind == "inputs" and ref.name in workflow.spec.inputs:
            continue
        if ref.kind == "inputs":
            message = f"unknown input '{ref.name}' in {ref.text}"
            message += did_you_mean(ref.name, workflow.spec.inputs)
        else:
            message = (
                f"{ref.text}: an expected value may only use {{inputs.NAME}}; "
                "write {column: NAME} for a dataset column, {{ and }} for literal braces"
            )
        problems.append(Problem(*source.offset_position(at, ref.text), f"{label}: {message}"))
    return problems


def _json_schema_problems(
    schema: dict[str, Any], at: Path, label: str, source: SourceMap
) -> list[Problem]:
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [Problem(*source.value(at), f"{label}: invalid JSON Schema: {exc.message}")]
    return []


def _code_problems(code: str, at: Path, label: str, source: SourceMap) -> list[Problem]:
    try:
        compile(PYTHON_PRELUDE + code, "<scorer>", "exec")
    except SyntaxError as exc:
        line, column = source.value(at)
        block = 1 if source.text[_offset(source, at)] in "|>" else 0
        code_line = max(1, (exc.lineno or 2) - 1)
        return [
            Problem(
                line + block + code_line - 1,
                column if not block else 1,
                f"{label}: syntax error in code line {code_line}: {exc.msg}",
            )
        ]
    return []


def _offset(source: SourceMap, at: Path) -> int:
    span = source.values.get(at)
    return span.start if span is not None else 0


def _provider_problems(provider: str | None, at: Path, source: SourceMap) -> list[Problem]:
    known = litellm_data.provider_names()
    if provider is None or not known or provider == SIMULATED:
        return []
    if litellm_provider(provider) in known:
        return []
    choices = [*known, *PROVIDER_ALIASES, SIMULATED]
    return [
        Problem(
            *source.value(at), f"unknown provider '{provider}'{did_you_mean(provider, choices)}"
        )
    ]

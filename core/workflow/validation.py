"""Every problem in a workflow document, located at its line and column.

Two passes run on the same parsed YAML: pydantic checks shapes and types, and the semantic pass
below checks what needs the whole document (names, edges, cycles, template references). The
semantic pass works on the raw data, tolerating malformed pieces, so a typo in one node does
not hide a cycle in another: users fix everything in one go.
"""

from __future__ import annotations

import contextlib
import difflib
import re
from collections.abc import Collection, Iterator
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ValidationError

from core.catalog import key_variables, litellm_data
from core.catalog.model_names import PROVIDER_ALIASES, SIMULATED, litellm_provider
from core.catalog.prices import PriceBook
from core.errors import Problem
from core.workflow.graph import Graph
from core.workflow.models import (
    BudgetSettings,
    CacheSettings,
    CodeNode,
    Edge,
    InputSpec,
    LLMNode,
    LLMSettings,
    MemorySettings,
    ModelPrice,
    SandboxSettings,
    SimulateSettings,
    Targets,
    TelemetrySettings,
    WorkflowSettings,
    WorkflowSpec,
)
from core.workflow.templates import compile_template
from core.workflow.yaml_source import Path, SourceMap

FIELD_TYPES = ("string", "integer", "number", "boolean", "array", "object")
_CODE_NODE_REF = re.compile(r"""nodes\s*\[\s*["']([^"']+)["']\s*\]""")
_CYCLE_SHOWN = 12  # nodes a cycle's message lists


# A suggestion compares the word with every choice: thousands of unknown names among
# thousands of nodes would be quadratic, so the suggestions for one document share a budget
# of comparisons (about a quarter of a second); past it, problems come without suggestions.
SUGGESTION_BUDGET = 200_000
_suggestions_left: ContextVar[list[int] | None] = ContextVar("suggestions_left", default=None)


@contextlib.contextmanager
def suggestion_budget() -> Iterator[None]:
    token = _suggestions_left.set([SUGGESTION_BUDGET])
    try:
        yield
    finally:
        _suggestions_left.reset(token)


def did_you_mean(word: str, choices: Collection[str]) -> str:
    left = _suggestions_left.get()
    if left is not None:
        if left[0] < len(choices):
            return ""
        left[0] -= len(choices)
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def _model_at(path: Path, data: Any) -> type[BaseModel] | None:
    """The schema model that describes the mapping at `path` (for listing its valid keys)."""
    if not path:
        return WorkflowSpec
    last = path[-1]
    named = {
        "targets": Targets,
        "budget": BudgetSettings,
        "telemetry": TelemetrySettings,
        "llm": LLMSettings,
        "simulate": SimulateSettings,
        "cache": CacheSettings,
        "memory": MemorySettings,
        "sandbox": SandboxSettings,
    }
    if path == ("workflow",):
        return WorkflowSettings
    if len(path) == 2 and path[0] == "nodes" and isinstance(last, int):
        node = _get(data, path)
        return CodeNode if isinstance(node, dict) and node.get("type") == "code" else LLMNode
    if len(path) == 2 and path[0] == "inputs":
        return InputSpec
    if len(path) == 2 and path[0] == "edges":
        return Edge
    if len(path) == 2 and path[0] == "pricing":
        return ModelPrice
    if isinstance(last, str) and last in named:
        return named[last]
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _child(container: Any, part: Any) -> tuple[bool, Any]:
    """Step one path element into parsed YAML: (found, value)."""
    if isinstance(container, dict) and part in container:
        return True, container[part]
    if isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container):
        return True, container[part]
    return False, None


def _get(data: Any, path: Path) -> Any:
    for part in path:
        found, data = _child(data, part)
        if not found:
            return None
    return data


def _real_path(loc: tuple[Any, ...], data: Any) -> Path:
    """Drop the parts of a pydantic location that are not in the document (union tags...)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        found, value = _child(current, part)
        if found:
            current = value
            path.append(part)
    return tuple(path)


def _describe(path: Path, data: Any) -> str:
    """A human name for where a problem is: `node 'critique'`, `workflow`, `input 'topic'`."""
    if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
        node = _get(data, path[:2])
        name = node.get("name") if isinstance(node, dict) else None
        label = f"node '{name}'" if isinstance(name, str) else f"node #{path[1] + 1}"
        rest = ".".join(str(p) for p in path[2:])
        return f"{label} {rest}".strip()
    if len(path) >= 2 and path[0] == "inputs":
        rest = ".".join(str(p) for p in path[2:])
        return f"input '{path[1]}' {rest}".strip()
    if len(path) >= 2 and path[0] == "edges":
        return f"edge #{int(path[1]) + 1}"
    return ".".join(str(p) for p in path) or "document"


def schema_problems(data: Any, source: SourceMap) -> list[Problem]:
    try:
        WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return []
    # A typo such as `promt:` also leaves `prompt` missing; the typo's "did you mean" says
    # it all, so the missing-key line for the same place is left out.
    misspelt = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            path = _real_path(tuple(error["loc"]), data)
            model = _model_at(path[:-1], data)
            close = (
                difflib.get_close_matches(str(path[-1]), _keys_of(model), 1, 0.6) if model else []
            )
            misspelt.update((path[:-1], key) for key in close)
    return [
        _problem_from(error, data, source)
        for error in errors
        if not (
            error["type"] == "missing"
            and (_real_path(_without_tag(tuple(error["loc"][:-1]), data), data), error["loc"][-1])
            in misspelt
        )
    ]


def _without_tag(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """A node's location without the discriminated union's tag pydantic inserts after it."""
    if len(loc) >= 3 and loc[0] == "nodes" and isinstance(loc[1], int):
        node = _get(data, loc[:2])
        if isinstance(node, dict) and loc[2] == node.get("type", "llm"):
            return loc[:2] + loc[3:]
    return loc


def _problem_from(error: Any, data: Any, source: SourceMap) -> Problem:
    loc = _without_tag(tuple(error["loc"]), data)
    kind = error["type"]
    if kind == "extra_forbidden":
        path = _real_path(loc, data)
        parent = path[:-1]
        model = _model_at(parent, data)
        hint = did_you_mean(str(path[-1]), _keys_of(model)) if model else ""
        if not hint and model in (LLMNode, WorkflowSettings) and path[-1] in _keys_of(LLMSettings):
            hint = f"; '{path[-1]}' belongs under llm:"
        where = _describe(parent, data)
        return Problem(*source.key(path), f"unknown key '{path[-1]}' in {where}{hint}")
    if kind == "missing":
        parent = _real_path(loc[:-1], data)
        return Problem(
            *source.key(parent), f"{_describe(parent, data)}: missing required key '{loc[-1]}'"
        )
    path = _real_path(loc, data)
    if kind == "union_tag_invalid":
        tag = _get(data, (*path, "type"))
        return Problem(
            *source.value((*path, "type")),
            f"{_describe(path, data)}: unknown node type '{tag}'; expected 'llm' or 'code'",
        )
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch" and path and path[-1] == "name":
        message = (
            "names may only contain letters, digits and _"
            + (" and -" if path == ("workflow", "name") else "")
            + f" (got {_get(data, path)!r})"
        )
    elif kind in {"dict_type", "model_type"}:
        message = f"expected a mapping, got {type(_get(data, path)).__name__}"
    elif kind == "list_type":
        message = f"expected a list, got {type(_get(data, path)).__name__}"
    return Problem(*source.value(path), f"{_describe(path, data)}: {message}")


def semantic_problems(data: Any, source: SourceMap) -> list[Problem]:
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    nodes = data.get("nodes") if isinstance(data.get("nodes"), list) else []
    inputs = data.get("inputs") if isinstance(data.get("inputs"), dict) else {}

    names: list[str] = []
    node_data: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            continue
        name = node["name"]
        if name in node_data:
            problems.append(
                Problem(
                    *source.value(("nodes", index, "name")),
                    f"duplicate node name '{name}' (first defined at line "
                    f"{source.value(('nodes', node_data[name][0], 'name'))[0]})",
                )
            )
            continue
        names.append(name)
        node_data[name] = (index, node)

    edges_raw = data.get("edges")
    edge_pairs: list[tuple[str, str]] | None = None
    first_edge: dict[tuple[str, str], int] = {}
    if isinstance(edges_raw, list):
        edge_pairs = []
        for index, edge in enumerate(edges_raw):
            if not isinstance(edge, dict):
                continue
            ends = []
            for end in ("from", "to"):
                target = edge.get(end)
                if isinstance(target, str) and target not in node_data:
                    problems.append(
                        Problem(
                            *source.value(("edges", index, end)),
                            f"edge {end} unknown node '{target}'{did_you_mean(target, names)}",
                        )
                    )
                ends.append(target)
            if all(isinstance(e, str) and e in node_data for e in ends):
                pair = (ends[0], ends[1])
                edge_pairs.append(pair)
                first_edge.setdefault(pair, index)
    graph = Graph.build(names, edge_pairs)
    cycle = graph.find_cycle()
    if cycle:
        index = first_edge.get((cycle[0], cycle[1]), 0)
        problems.append(Problem(*source.value(("edges", index)), "cycle: " + _path_text(cycle)))
        upstream: set[tuple[str, str]] = set()
    else:
        upstream = graph.upstream_pairs(_read_pairs(node_data))

    outputs = data.get("outputs")
    if isinstance(outputs, list):
        for index, name in enumerate(outputs):
            if isinstance(name, str) and name not in node_data:
                problems.append(
                    Problem(
                        *source.value(("outputs", index)),
                        f"output names unknown node '{name}'{did_you_mean(name, names)}",
                    )
                )

    for name, (index, node) in node_data.items():
        path: Path = ("nodes", index)
        if node.get("type", "llm") == "code":
            problems += _code_references(name, node, path, node_data, upstream, source, cycle)
        else:
            for key in ("prompt", "system"):
                if isinstance(node.get(key), str):
                    problems += _template_problems(
                        name, node, (*path, key), inputs, node_data, upstream, source, cycle
                    )
        problems += _schema_type_problems(node, path, source)
        problems += _provider_problems(node.get("llm"), (*path, "llm"), source)
        problems += _key_variable_problems(node.get("llm"), (*path, "llm"), source)

    workflow = data.get("workflow") if isinstance(data.get("workflow"), dict) else {}
    problems += _provider_problems(workflow.get("llm"), ("workflow", "llm"), source)
    problems += _key_variable_problems(workflow.get("llm"), ("workflow", "llm"), source)
    problems += _budget_problems(workflow, nodes, source)
    problems += _input_default_problems(inputs, source)
    return problems


def _path_text(cycle: list[str]) -> str:
    """A cycle as `a -> b -> a`; a long one keeps its ends, or one message could run to
    megabytes."""
    if len(cycle) <= _CYCLE_SHOWN:
        return " -> ".join(cycle)
    half = _CYCLE_SHOWN // 2
    shown = [*cycle[:half], f"... ({len(cycle) - 1:,} nodes in all)", *cycle[-half:]]
    return " -> ".join(shown)


def _read_pairs(node_data: dict[str, tuple[int, dict[str, Any]]]) -> list[tuple[str, str]]:
    """(read node, reader) for every node a template or code block reads: the pairs whose
    order the graph must guarantee."""
    pairs = []
    for name, (_, node) in node_data.items():
        if node.get("type", "llm") == "code":
            code = node.get("code")
            if isinstance(code, str):
                pairs += [(target, name) for target in code_node_references(code)]
            continue
        for key in ("prompt", "system"):
            text = node.get(key)
            if isinstance(text, str):
                refs = compile_template(text).references
                pairs += [(r.name, name) for r in refs if r.kind == "node" and r.name != name]
    return pairs


def _template_problems(
    name: str,
    node: dict[str, Any],
    path: Path,
    inputs: dict[str, Any],
    node_data: dict[str, tuple[int, dict[str, Any]]],
    upstream: set[tuple[str, str]],
    source: SourceMap,
    cycle: list[str] | None,
) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    memory = node.get("memory")
    memory_on = isinstance(memory, dict) and memory.get("enabled", True) is not False
    for ref in compile_template(node[path[-1]]).references:
        occurrence = seen.get(ref.text, 0)
        seen[ref.text] = occurrence + 1
        where = source.offset_position(path, ref.text, occurrence)
        message = _reference_problem(ref, name, inputs, node_data, upstream, memory_on, cycle)
        if message:
            problems.append(Problem(*where, f"node '{name}': {message}"))
    return problems


def _reference_problem(
    ref: Any,
    name: str,
    inputs: dict[str, Any],
    node_data: dict[str, tuple[int, dict[str, Any]]],
    upstream: set[tuple[str, str]],
    memory_on: bool,
    cycle: list[str] | None,
) -> str | None:
    if ref.kind == "invalid":
        return (
            f"invalid reference {ref.text}: use {{inputs.NAME}}, {{NODE}}, {{NODE.FIELD}} or "
            "{memory.KEY}; write {{ and }} for literal braces"
        )
    if ref.kind == "inputs":
        if ref.name not in inputs:
            return f"unknown input '{ref.name}' in {ref.text}{did_you_mean(ref.name, inputs)}"
        return None
    if ref.kind == "memory":
        if not memory_on:
            return f"{ref.text} needs memory enabled on this node (memory: {{enabled: true}})"
        return None
    if ref.name == name:
        return f"{ref.text} refers to the node itself"
    if ref.name not in node_data:
        hint = did_you_mean(ref.name, node_data)
        if not hint and ref.name in inputs:
            hint = f"; did you mean '{{inputs.{ref.name}}}'?"
        return f"unknown node '{ref.name}' in {ref.text}{hint}"
    if not cycle and (ref.name, name) not in upstream:
        return (
            f"{ref.text} refers to node '{ref.name}', which is not upstream of '{name}' "
            f"and could still be running; add an edge from '{ref.name}' to '{name}'"
        )
    if ref.fields:
        target = node_data[ref.name][1]
        if target.get("type", "llm") == "code":
            return None
        if target.get("output", "text") != "json":
            return (
                f"{ref.text} reads a field, but node '{ref.name}' outputs text; "
                "set output: json on it"
            )
        schema = target.get("schema")
        if isinstance(schema, dict) and ref.fields[0] not in schema:
            return (
                f"node '{ref.name}' has no field '{ref.fields[0]}' in its schema"
                f"{did_you_mean(ref.fields[0], schema)}"
            )
    return None


def code_node_references(code: str) -> set[str]:
    """Upstream nodes a code node reads as `nodes["NAME"]`."""
    return {match.group(1) for match in _CODE_NODE_REF.finditer(code)}


def _code_references(
    name: str,
    node: dict[str, Any],
    path: Path,
    node_data: dict[str, tuple[int, dict[str, Any]]],
    upstream: set[tuple[str, str]],
    source: SourceMap,
    cycle: list[str] | None,
) -> list[Problem]:
    code = node.get("code")
    if not isinstance(code, str) or cycle:
        return []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for match in _CODE_NODE_REF.finditer(code):
        target = match.group(1)
        text = match.group(0)
        occurrence = seen.get(text, 0)
        seen[text] = occurrence + 1
        if (target, name) in upstream:
            continue
        where = source.offset_position((*path, "code"), text, occurrence)
        if target not in node_data:
            message = f"unknown node '{target}' in {text}{did_you_mean(target, node_data)}"
        else:
            message = (
                f"{text} reads node '{target}', which is not upstream of '{name}'; "
                f"add an edge from '{target}' to '{name}'"
            )
        problems.append(Problem(*where, f"node '{name}': {message}"))
    return problems


def _schema_type_problems(node: dict[str, Any], path: Path, source: SourceMap) -> list[Problem]:
    schema = node.get("schema")
    if not isinstance(schema, dict):
        return []
    problems = []
    if node.get("output", "text") != "json":
        problems.append(
            Problem(*source.key((*path, "schema")), "schema needs output: json on the same node")
        )

    def check(fields: dict[str, Any], at: Path) -> None:
        for field, kind in fields.items():
            if isinstance(kind, dict):
                check(kind, (*at, field))
            elif kind not in FIELD_TYPES and not (
                isinstance(kind, list) and len(kind) == 1 and kind[0] in FIELD_TYPES
            ):
                problems.append(
                    Problem(
                        *source.value((*at, field)),
                        f"schema field '{field}' has unknown type {kind!r}; expected one of "
                        + ", ".join(FIELD_TYPES)
                        + did_you_mean(str(kind), FIELD_TYPES),
                    )
                )

    check(schema, (*path, "schema"))
    return problems


def _provider_problems(llm: Any, path: Path, source: SourceMap) -> list[Problem]:
    if not isinstance(llm, dict) or not isinstance(llm.get("provider"), str):
        return []
    provider = llm["provider"]
    known = litellm_data.provider_names()
    if not known or provider == SIMULATED or litellm_provider(provider) in known:
        return []
    choices = [*known, *PROVIDER_ALIASES, SIMULATED]
    return [
        Problem(
            *source.value((*path, "provider")),
            f"unknown provider '{provider}'{did_you_mean(provider, choices)}",
        )
    ]


def _key_variable_problems(llm: Any, path: Path, source: SourceMap) -> list[Problem]:
    """`api_key_env` may only name a provider key variable (core.catalog.key_variables)."""
    if not isinstance(llm, dict) or not isinstance(llm.get("api_key_env"), str):
        return []
    name = llm["api_key_env"]
    if name in key_variables.sendable_variables():
        return []
    _, config_problem = key_variables.user_variables()
    return [
        Problem(
            *source.value((*path, "api_key_env")),
            f"api_key_env '{name}' is not a provider key variable: a workflow may send only "
            f"the keys LiteLLM knows (OPENAI_API_KEY, ...) or ones the operator allows in "
            f"${key_variables.EXTRA_VARIABLE} or in {key_variables.CONFIG_KEY} of the data "
            "folder's config.toml" + (f" ({config_problem})" if config_problem else ""),
        )
    ]


def _budget_problems(
    workflow: dict[str, Any], nodes: list[Any], source: SourceMap
) -> list[Problem]:
    max_tokens = workflow.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
        return []
    default_llm = workflow.get("llm") if isinstance(workflow.get("llm"), dict) else {}
    problems = []
    for node in nodes:
        if not isinstance(node, dict) or node.get("type", "llm") != "llm":
            continue
        llm = node.get("llm") if isinstance(node.get("llm"), dict) else {}
        output = llm.get("max_output_tokens", default_llm.get("max_output_tokens"))
        if isinstance(output, int) and output >= max_tokens:
            problems.append(
                Problem(
                    *source.value(("workflow", "max_tokens")),
                    f"max_tokens {max_tokens} leaves no room for node '{node.get('name')}', "
                    f"which reserves max_output_tokens {output} plus its prompt",
                )
            )
    return problems


_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


def value_matches(kind: str, value: Any) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _PYTHON_TYPES.get(kind, (object,)))


def _input_default_problems(inputs: dict[str, Any], source: SourceMap) -> list[Problem]:
    problems = []
    for name, spec in inputs.items():
        if not isinstance(spec, dict) or spec.get("default") is None:
            continue
        kind = spec.get("type", "string")
        if kind in _PYTHON_TYPES and not value_matches(kind, spec["default"]):
            problems.append(
                Problem(
                    *source.value(("inputs", name, "default")),
                    f"input '{name}': default {spec['default']!r} is not of type {kind}",
                )
            )
    return problems


def budget_problems(
    spec: WorkflowSpec, models: dict[str, tuple[str, str]], source: SourceMap
) -> list[Problem]:
    """A `max_cost` cannot hold over a call nobody can price: such nodes are refused, each
    located at its model, unless the workflow accepts counting them against tokens only."""
    problems: list[Problem] = []
    if spec.budget is not None and spec.workflow.budget is not None:
        problems.append(
            Problem(*source.key(("budget",)), "budget: is set twice; keep it under workflow:")
        )
    if spec.workflow.max_cost is None or spec.budget_settings.allow_unpriced:
        return problems
    prices = PriceBook(spec.pricing)
    for index, node in enumerate(spec.nodes):
        if node.name not in models:
            continue
        provider, model = models[node.name]
        if prices.known(provider, model):
            continue
        at = next(
            (
                source.value(path)
                for path in (("nodes", index, "llm", "model"), ("workflow", "llm", "model"))
                if path in source.values
            ),
            source.key(("nodes", index, "name")),
        )
        problems.append(
            Problem(
                *at,
                f"node '{node.name}': {provider}/{model} has no known price, so max_cost "
                "cannot be enforced on it; add it under pricing:, or set budget: "
                "{allow_unpriced: true} to count its calls against max_tokens only",
            )
        )
    return problems

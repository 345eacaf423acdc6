"""Move nodes to another model by editing the workflow's text in place.

A what-if applied to a file must leave the rest of the file as its author wrote it: comments,
key order, quoting and blank lines. Loading and dumping the YAML again would lose all of
that, so the change is a targeted textual edit: the source map says where each node's
`llm.provider` and `llm.model` values are, and only those characters change (or one short
line, `llm: {provider: P, model: M}`, is added to a node that inherits the workflow's model).
The result is parsed and validated again, and must give each node the model asked for.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from core.errors import Problem, WorkflowError
from core.workflow.loader import Workflow, parse_workflow
from core.workflow.models import LLMNode
from core.workflow.yaml_source import SourceMap, parse

_PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/:@]*$")


def set_models(workflow: Workflow, models: Mapping[str, tuple[str, str]]) -> str:
    """The workflow's text with each named LLM node on its (provider, model).

    Raises WorkflowError (located) when a node is unknown or not an LLM node, or when the
    edited text would not validate: the file is never left half-changed."""
    text = workflow.source
    for node, (provider, model) in models.items():
        text = _set_one(text, workflow.filename, node, provider, model)
    edited = parse_workflow(text, workflow.filename)
    for node, wanted in models.items():
        llm = edited.llm_for(_llm_node(edited, node))
        if (llm.provider, llm.model) != wanted:
            raise WorkflowError(
                [Problem(1, 1, f"node {node!r}: could not set its model to {wanted[1]}")]
            )
    return text


def _llm_node(workflow: Workflow, name: str) -> LLMNode:
    for node in workflow.spec.nodes:
        if node.name == name and isinstance(node, LLMNode):
            return node
    raise WorkflowError([Problem(1, 1, f"no LLM node named {name!r} in the workflow")])


def _set_one(text: str, filename: str, node: str, provider: str, model: str) -> str:
    data, source, _ = parse(text)
    index = next(
        (
            i
            for i, item in enumerate((data or {}).get("nodes") or [])
            if isinstance(item, dict) and item.get("name") == node
        ),
        None,
    )
    if index is None:
        raise WorkflowError([Problem(1, 1, f"no node named {node!r} in {filename}")])
    llm = data["nodes"][index].get("llm")
    base = ("nodes", index)
    if isinstance(llm, dict):
        edits = {"provider": provider, "model": model}
        present = {k: v for k, v in edits.items() if (*base, "llm", k) in source.values}
        missing = {k: v for k, v in edits.items() if k not in present}
        # Replace from the end of the text backwards so earlier offsets stay valid.
        for key in sorted(present, key=lambda k: -source.values[(*base, "llm", k)].start):
            text = _replace(text, source, (*base, "llm", key), _scalar(present[key]))
        if missing:
            text = _add_keys(parse(text)[1], text, (*base, "llm"), missing)
        return text
    if llm is not None:
        raise WorkflowError(
            [Problem(*source.value((*base, "llm")), f"node {node!r}: llm is not a mapping")]
        )
    pair = {"provider": provider, "model": model}
    return _add_keys(source, text, base, {"llm": _flow(pair)}, raw=True)


def _replace(text: str, source: SourceMap, path: tuple, value: str) -> str:
    span = source.values[path]
    return text[: span.start] + value + text[span.end :]


def _add_keys(
    source: SourceMap, text: str, path: tuple, keys: Mapping[str, str], raw: bool = False
) -> str:
    """Adds `keys` to the mapping at `path`: inside the braces of a flow mapping, else as
    lines after its first key, at that key's indentation."""
    span = source.values[path]
    values = {key: value if raw else _scalar(value) for key, value in keys.items()}
    body = text[span.start : span.end]
    if body.lstrip().startswith("{"):
        close = span.start + body.rindex("}")
        inside = ", ".join(f"{key}: {value}" for key, value in values.items())
        separator = ", " if body.strip() != "{}" else ""
        return text[:close].rstrip() + separator + inside + text[close:]
    first = min((p for p in source.keys if p[:-1] == path), key=lambda p: source.keys[p].start)
    key_span = source.keys[first]
    line_end = text.find("\n", key_span.start)
    # The first key's value may run over several lines (a block scalar): insert before it
    # instead, on the first key's own line start.
    line_start = text.rfind("\n", 0, key_span.start) + 1
    indent = " " * key_span.column
    lines = "".join(f"{indent}{key}: {value}\n" for key, value in values.items())
    if text[line_start : key_span.start].strip() == "":
        return text[:line_start] + lines + text[line_start:]
    # "- name: x": the key shares its line with the list dash; add the lines after it.
    end = len(text) if line_end < 0 else line_end + 1
    value_end = source.values[first].end
    if value_end > end:  # the first key's value spans lines: add after the whole value
        end = text.find("\n", value_end) + 1 or len(text)
    prefix = "" if text[:end].endswith("\n") else "\n"
    return text[:end] + prefix + lines + text[end:]


def _flow(pairs: Mapping[str, str]) -> str:
    return "{" + ", ".join(f"{key}: {_scalar(value)}" for key, value in pairs.items()) + "}"


def _scalar(value: str) -> str:
    """A YAML scalar for a provider or model name: plain when safe, else double-quoted."""
    plain = _PLAIN.fullmatch(value) and value.lower() not in {"true", "false", "null", "yes", "no"}
    return value if plain else json.dumps(value)


def set_name(text: str, name: str, filename: str = "workflow") -> str:
    """The text with `workflow.name` set to `name` in place: a saved copy gets a name of its
    own, so its runs never merge with the original's history."""
    data, source, _ = parse(text)
    settings = (data or {}).get("workflow") if isinstance(data, dict) else None
    if not isinstance(settings, dict) or ("workflow", "name") not in source.values:
        raise WorkflowError([Problem(1, 1, f"{filename} has no workflow.name to change")])
    return _replace(text, source, ("workflow", "name"), _scalar(name))

"""Prompt templates: `{inputs.NAME}`, `{NODE}`, `{NODE.FIELD}`, `{memory.KEY}`; `{{`/`}}` escape.

A template is compiled once at load time into literal parts and references, so validation can
check every reference and a run only concatenates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Reference:
    kind: str  # "inputs" | "node" | "memory" | "invalid"
    name: str
    fields: tuple[str, ...]
    raw: str  # the text between the braces, as written

    @property
    def text(self) -> str:
        return "{" + self.raw + "}"


@dataclass(frozen=True)
class Template:
    parts: tuple[str | Reference, ...]

    @property
    def references(self) -> tuple[Reference, ...]:
        return tuple(part for part in self.parts if isinstance(part, Reference))

    def render(self, values: TemplateValues) -> str:
        return "".join(
            part if isinstance(part, str) else values.lookup(part) for part in self.parts
        )


def _parse_reference(raw: str) -> Reference:
    pieces = raw.strip().split(".")
    if not raw.strip() or not all(_IDENT.match(piece) for piece in pieces):
        return Reference("invalid", raw, (), raw)
    head, *rest = pieces
    if head in ("inputs", "memory"):
        if len(rest) != 1:
            return Reference("invalid", raw, (), raw)
        return Reference(head, rest[0], (), raw)
    return Reference("node", head, tuple(rest), raw)


def compile_template(text: str) -> Template:
    parts: list[str | Reference] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[position : match.start()])
        token = match.group(0)
        if token == "{{":
            literal.append("{")
        elif token == "}}":
            literal.append("}")
        else:
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parse_reference(match.group(1)))
        position = match.end()
    literal.append(text[position:])
    tail = "".join(literal)
    if tail:
        parts.append(tail)
    return Template(tuple(parts))


def to_text(value: Any) -> str:
    """How an upstream value appears inside a prompt: strings as is, the rest as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


@dataclass
class TemplateValues:
    """What references resolve against during a run."""

    inputs: dict[str, Any]
    nodes: dict[str, Any]
    memory: dict[str, Any]

    def lookup(self, ref: Reference) -> str:
        if ref.kind == "inputs":
            return to_text(self.inputs.get(ref.name))
        if ref.kind == "memory":
            return to_text(self.memory.get(ref.name))
        value = self.nodes[ref.name]
        for field in ref.fields:
            if not isinstance(value, dict) or field not in value:
                raise KeyError(
                    f"{ref.text}: node '{ref.name}' output has no field '{'.'.join(ref.fields)}'"
                )
            value = value[field]
        return to_text(value)

"""JSON output mode: what the model is asked for, and how its reply is checked."""

from __future__ import annotations

import json
import re
from typing import Any

from core.workflow.validation import value_matches

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


def _describe(kind: Any) -> str:
    if isinstance(kind, dict):
        return "object with " + ", ".join(f"{k} ({_describe(v)})" for k, v in kind.items())
    if isinstance(kind, list):
        return f"array of {_describe(kind[0])}"
    return str(kind)


def instruction(schema: dict[str, Any] | None) -> str:
    text = "Reply with a single JSON object and nothing else."
    if schema:
        text += (
            " Its fields: " + "; ".join(f"{k} ({_describe(v)})" for k, v in schema.items()) + "."
        )
    return text


def parse(text: str, schema: dict[str, Any] | None) -> Any:
    """The reply as JSON, checked against the schema; ValueError says what is wrong."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        preview = " ".join(text.split())[:120]
        raise ValueError(
            f"model reply is not valid JSON ({exc.msg} at char {exc.pos}): {preview!r}"
        ) from None
    if schema:
        problems = _mismatches(value, schema, "")
        if problems:
            raise ValueError("model reply does not match the schema: " + "; ".join(problems))
    return value


def _mismatches(value: Any, schema: dict[str, Any], prefix: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{prefix or 'reply'} is {type(value).__name__}, expected an object"]
    problems = []
    for field, kind in schema.items():
        where = f"{prefix}{field}"
        if field not in value:
            problems.append(f"missing field '{where}'")
        elif isinstance(kind, dict):
            problems += _mismatches(value[field], kind, where + ".")
        elif isinstance(kind, list):
            if not isinstance(value[field], list):
                problems.append(f"field '{where}' should be an array")
        elif not value_matches(kind, value[field]):
            problems.append(f"field '{where}' should be {kind}, got {type(value[field]).__name__}")
    return problems

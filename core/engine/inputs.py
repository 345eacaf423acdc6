"""Check a run's inputs against the workflow's `inputs:` before anything is spent."""

from __future__ import annotations

import json
from typing import Any

from core.errors import InputError
from core.workflow import Workflow
from core.workflow.validation import did_you_mean, value_matches


def parse_cli_value(kind: str, text: str) -> Any:
    """Turn `--input K=V` text into the declared type (numbers, booleans, JSON for the rest)."""
    if kind == "string":
        return text
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in {"true", "yes", "1", "on"}:
            return True
        if lowered in {"false", "no", "0", "off"}:
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if kind == "integer":
        return int(text)
    if kind == "number":
        return float(text)
    return json.loads(text)


def check_inputs(
    workflow: Workflow, given: dict[str, Any], *, from_text: bool = False, partial: bool = False
) -> dict[str, Any]:
    """Inputs with defaults applied and types checked; InputError lists every problem.

    `from_text` marks values typed on a command line or in a form, which are converted to the
    declared type instead of being required to have it already. `partial` lets required
    inputs be missing (an estimate can be made before every input is decided).
    """
    declared = workflow.spec.inputs
    problems: list[str] = []
    for name in given:
        if name not in declared:
            choices = ", ".join(declared) or "none"
            problems.append(
                f"unknown input '{name}'{did_you_mean(name, declared)} (declared: {choices})"
            )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in given or given[name] is None:
            if spec.default is not None:
                values[name] = spec.default
            elif spec.required and not partial:
                hint = f" ({spec.description})" if spec.description else ""
                problems.append(f"missing required input '{name}'{hint}")
            continue
        value = given[name]
        if from_text and isinstance(value, str):
            try:
                value = parse_cli_value(spec.type, value)
            except ValueError as exc:
                problems.append(f"input '{name}' must be {spec.type}: {exc}")
                continue
        if not value_matches(spec.type, value):
            problems.append(f"input '{name}' must be {spec.type}, got {type(value).__name__}")
            continue
        values[name] = value
    if problems:
        raise InputError(problems)
    return values

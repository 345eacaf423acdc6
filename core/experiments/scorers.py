"""Deterministic scorers: each turns (output, expected, the cell's run) into a score in [0, 1]
and a one-line reason. None means the scorer could not judge (no price, no expected value):
such a cell is left out of that scorer's figures rather than counted as a fail.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core.engine.results import RunResult
from core.workflow.templates import to_text

SHOWN = 60  # characters of a value quoted in a reason
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Verdict:
    score: float | None
    reason: str


def quote(value: Any) -> str:
    text = " ".join(to_text(value).split())
    return repr(text if len(text) <= SHOWN else text[: SHOWN - 1] + "…")


def _binary(ok: bool, good: str, bad: str) -> Verdict:
    return Verdict(1.0 if ok else 0.0, good if ok else bad)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def same(output: Any, expected: Any) -> bool:
    """Equal as values: text ignoring surrounding whitespace, numbers by value, JSON by
    structure; a number written as text equals the number."""
    if isinstance(output, str) and isinstance(expected, str):
        return output.strip() == expected.strip()
    if _is_number(expected):
        if isinstance(output, str):
            try:
                return float(output.strip().replace(",", "")) == float(expected)
            except ValueError:
                return False
        return _is_number(output) and float(output) == float(expected)
    if isinstance(output, str) and not isinstance(expected, str):
        try:
            return json.loads(output) == expected
        except ValueError:
            return False
    if isinstance(expected, str) and not isinstance(output, str):
        return to_text(output).strip() == expected.strip()
    return output == expected


def equals(output: Any, expected: Any) -> Verdict:
    return _binary(
        same(output, expected), "equal", f"expected {quote(expected)}, got {quote(output)}"
    )


def contains(output: Any, expected: Any) -> Verdict:
    found = to_text(expected) in to_text(output)
    return _binary(found, f"contains {quote(expected)}", f"no {quote(expected)} in {quote(output)}")


def icontains(output: Any, expected: Any) -> Verdict:
    found = to_text(expected).casefold() in to_text(output).casefold()
    return _binary(
        found, f"contains {quote(expected)}", f"no {quote(expected)} (any case) in {quote(output)}"
    )


def regex(output: Any, pattern: re.Pattern[str]) -> Verdict:
    return _binary(
        pattern.search(to_text(output)) is not None,
        f"matches /{pattern.pattern}/",
        f"{quote(output)} does not match /{pattern.pattern}/",
    )


def parse_json(output: Any) -> tuple[bool, Any]:
    """(parsed, value): a json node's output is already parsed; text is parsed here."""
    if not isinstance(output, str):
        return True, output
    try:
        return True, json.loads(output)
    except ValueError:
        return False, None


def json_valid(output: Any) -> Verdict:
    parsed, _ = parse_json(output)
    return _binary(parsed, "valid JSON", f"not JSON: {quote(output)}")


def json_schema(output: Any, validator: Any) -> Verdict:
    parsed, value = parse_json(output)
    if not parsed:
        return Verdict(0.0, f"not JSON: {quote(output)}")
    error = next(iter(validator.iter_errors(value)), None)
    if error is None:
        return Verdict(1.0, "matches the schema")
    where = "/".join(str(part) for part in error.absolute_path)
    return Verdict(0.0, f"{where + ': ' if where else ''}{error.message}"[:200])


def json_field_equals(output: Any, field: str, expected: Any) -> Verdict:
    parsed, value = parse_json(output)
    if not parsed:
        return Verdict(0.0, f"not JSON: {quote(output)}")
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            return Verdict(0.0, f"no field '{field}' in {quote(output)}")
        value = value[part]
    return _binary(
        same(value, expected),
        f"{field} equal",
        f"{field}: expected {quote(expected)}, got {quote(value)}",
    )


def first_number(text: str) -> float | None:
    """The first number written in `text` ("1,234.50" reads 1234.5)."""
    for match in _NUMBER.finditer(text):
        written = match.group(0)
        if any(ch.isdigit() for ch in written):
            return float(written.replace(",", ""))
    return None


def number_close(output: Any, expected: Any, tolerance: float, relative: float) -> Verdict | None:
    target = expected if _is_number(expected) else first_number(to_text(expected))
    if target is None:
        return None
    value = output if _is_number(output) else first_number(to_text(output))
    if value is None:
        return Verdict(0.0, f"no number in {quote(output)}")
    allowed = max(tolerance, relative * abs(target))
    gap = abs(value - target)
    return _binary(
        gap <= allowed,
        f"{value:g} is within {allowed:g} of {target:g}",
        f"{value:g} is {gap:g} from {target:g} (allowed {allowed:g})",
    )


def max_cost(result: RunResult, limit: float) -> Verdict:
    if result.cost_usd is None:
        return Verdict(None, "no known price for this run's models")
    return _binary(
        result.cost_usd <= limit,
        f"${result.cost_usd:.6f} ≤ ${limit:g}",
        f"${result.cost_usd:.6f} > ${limit:g}",
    )


def max_latency(result: RunResult, limit: float) -> Verdict:
    return _binary(
        result.duration_ms <= limit,
        f"{result.duration_ms:,.0f} ms ≤ {limit:,.0f} ms",
        f"{result.duration_ms:,.0f} ms > {limit:,.0f} ms",
    )

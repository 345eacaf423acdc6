"""How figures read in reports: money with enough digits to matter, counts with separators."""

from __future__ import annotations


def money(value: float | None) -> str:
    """$12.34, $0.083, $0.0042; small LLM costs would all read $0.00 at two decimals."""
    if value is None:
        return "unknown"
    if value == 0:
        return "$0"
    size = abs(value)
    if size >= 1:
        return f"${value:,.2f}"
    if size >= 0.01:
        return f"${value:.3f}"
    if size >= 0.0001:
        return f"${value:.4f}"
    return f"${value:.6f}"


def count(value: float) -> str:
    return f"{round(value):,}"


def share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "0%"

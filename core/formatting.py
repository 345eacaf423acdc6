"""How figures read in reports: money with enough digits to matter, counts with separators."""

from __future__ import annotations

from collections.abc import Sequence


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


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows of text cells as left-aligned columns two spaces apart, for terminal tables."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]

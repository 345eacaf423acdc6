"""What past calls of one model would have cost on another, from their recorded tokens.

Only calls that reached a model count (cache hits cost nothing either way). The difference
is taken over calls whose actual cost is known: a call of an unpriced model has a repriced
cost but nothing to compare it with, so it is counted apart rather than compared with $0.
Real and simulated calls are totalled apart, as in the cost report, and either can be left
out. New prices come from the bundled price map, or from the workflow's `pricing:` when one
workflow is chosen. The calls are counted from the daily rollup (see `filters.node_days`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from core.analytics.filters import (
    Where,
    latest_workflows,
    node_days,
    simulated_choice,
)
from core.analytics.window import Window, window
from core.catalog import litellm_data
from core.catalog.model_names import PROVIDER_ALIASES, SIMULATED, litellm_provider
from core.catalog.prices import Price, PriceBook
from core.settings import data_home
from core.telemetry import get_store


class RepriceError(ValueError):
    """A swap that cannot be priced or parsed; the message says what to pass instead."""


@dataclass
class RepriceRow:
    """The calls of one node (or of a whole section, as its totals) under both prices."""

    workflow: str | None
    node: str | None
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    unpriced_calls: int = 0  # calls with no recorded cost: repriced, but not compared
    actual_cost_usd: float | None = None  # None when no call had a recorded cost
    repriced_cost_usd: float = 0.0  # every call at the new model's prices
    difference_usd: float | None = None  # repriced - actual, over calls with a recorded cost
    difference_pct: float | None = None  # of the actual cost


@dataclass
class RepriceSection:
    simulated: bool
    total: RepriceRow = field(default_factory=lambda: RepriceRow(None, None))
    by_node: list[RepriceRow] = field(default_factory=list)


@dataclass
class Swap:
    old: str
    new: str
    price_source: str  # the price-map key or pricing: override the new price came from
    input_per_million: float
    output_per_million: float
    real: RepriceSection | None = None  # None when left out (--simulated only)
    simulated: RepriceSection | None = None  # None when left out (--simulated exclude)

    @property
    def sections(self) -> tuple[RepriceSection, ...]:
        return tuple(s for s in (self.real, self.simulated) if s is not None)

    @property
    def calls(self) -> int:
        return sum(s.total.calls for s in self.sections)


@dataclass
class RepriceReport:
    start: datetime
    end: datetime
    days: int | None
    label: str
    workflow: str | None
    swaps: list[Swap]
    models_seen: list[str]  # models called in the window, to correct a swap that found none
    simulated_runs: str = "include"  # include | exclude | only


def parse_swaps(values: Sequence[str]) -> list[tuple[str, str]]:
    swaps = []
    for value in values:
        old, sep, new = value.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise RepriceError(f"--model {value!r}: expected OLD=NEW, e.g. gpt-4o=gpt-4o-mini")
        swaps.append((old.strip(), new.strip()))
    return swaps


def reprice(
    home: str | Path | None = None,
    *,
    swaps: Sequence[tuple[str, str]],
    days: int = 30,
    workflow: str | None = None,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    simulated: bool | None = None,
) -> RepriceReport:
    """Raises RepriceError naming a new model that has no known price. `simulated`: None
    reprices real and simulated calls, each in its section; False or True only one kind."""
    folder = data_home(home)
    span = window(days, start, end)
    definition = latest_workflows(folder, [workflow]).get(workflow) if workflow else None
    prices = PriceBook(definition.spec.pricing if definition else None)
    priced = [(old, new, _new_model(prices, new)) for old, new in swaps]
    result = []
    for old, new, (target, price) in priced:
        swap = Swap(
            old, new, price.source, price.input_per_token * 1e6, price.output_per_token * 1e6
        )
        sections = {sim: RepriceSection(sim) for sim in (False, True) if simulated in (None, sim)}
        where = _where(workflow, simulated)
        for sim, row in _rows(folder, span, where, old, prices, target):
            sections[sim].by_node.append(row)
        for section in sections.values():
            section.by_node.sort(key=lambda r: (-(r.actual_cost_usd or 0), r.workflow, r.node))
            section.total = _sum(section.by_node)
        swap.real, swap.simulated = sections.get(False), sections.get(True)
        result.append(swap)
    unseen = any(not s.calls for s in result)
    seen = _models_seen(folder, span, _where(workflow, simulated)) if unseen else []
    return RepriceReport(
        span.start,
        span.end,
        span.days,
        span.label,
        workflow,
        result,
        seen,
        simulated_choice(simulated),
    )


def _where(workflow: str | None, simulated: bool | None) -> Where:
    """Calls made in scope: what can be repriced."""
    where = Where().add("called")
    if workflow:
        where.add("workflow = ?", workflow)
    if simulated is not None:
        where.add("simulated = ?", simulated)
    return where


def _new_model(prices: PriceBook, model: str) -> tuple[tuple[str, str], Price]:
    """The (provider, model) to price the swap on, and its base rates for the heading:
    `provider/model` under that provider, a bare name as LiteLLM resolves it."""
    provider, sep, bare = model.partition("/")
    target = (provider, bare) if sep else (SIMULATED, model)
    price = prices.price(*target)
    if price is None:
        raise RepriceError(
            f"no known price for model {model!r}"
            + _suggest(model)
            + "; add it under pricing: in the workflow and pass --workflow"
        )
    return target, price


def _suggest(model: str) -> str:
    names = [k for k, v in litellm_data.model_prices().items() if v.get("mode") == "chat"]
    close = difflib.get_close_matches(model, names, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _old_model(old: str) -> Where:
    """Calls of `old` as telemetry recorded it: `gpt-4o`, or `openai/gpt-4o` meaning model
    gpt-4o from provider openai (under any of the provider's spellings), or a model name
    stored with its own prefix."""
    provider, sep, bare = old.partition("/")
    if not sep:
        return Where().add("model = ? OR ends_with(model, '/' || ?)", old, old)
    canonical = litellm_provider(provider)
    spellings = {provider, canonical} | {a for a, c in PROVIDER_ALIASES.items() if c == canonical}
    clause = "model = ? OR (model = ? AND list_contains(?, provider))"
    return Where().add(clause, old, bare, sorted(spellings))


def _rows(
    home: Path,
    span: Window,
    where: Where,
    old: str,
    prices: PriceBook,
    target: tuple[str, str],
) -> list[tuple[bool, RepriceRow]]:
    """(simulated, row) per node of `where` that called `old`, priced both ways: the new
    model's cost is LiteLLM's for the node's average call, times its calls."""
    match = _old_model(old)
    relation, params = node_days(span, where.add(match.sql, *match.params))
    found, params = node_days(span, where)
    found = get_store(home).query(
        f"""
        SELECT simulated, workflow, node, sum(node_rows), sum(input_tokens),
            sum(output_tokens), sum(cached_tokens), sum(reasoning_tokens),
            coalesce(sum(node_rows) FILTER (WHERE NOT priced), 0),
            sum(cost_usd) FILTER (WHERE priced),
            coalesce(sum(node_rows) FILTER (WHERE priced), 0),
            coalesce(sum(input_tokens) FILTER (WHERE priced), 0),
            coalesce(sum(output_tokens) FILTER (WHERE priced), 0),
            coalesce(sum(cached_tokens) FILTER (WHERE priced), 0),
            coalesce(sum(reasoning_tokens) FILTER (WHERE priced), 0)
        FROM {relation}
        GROUP BY ALL
        """,
        params,
    )
    rows = []
    for simulated, wf, node, calls, tokens_in, tokens_out, cached, reasoning, *rest in found:
        unpriced, actual, *priced = rest
        row = RepriceRow(wf, node, calls, tokens_in, tokens_out, unpriced, actual)
        usage = (tokens_in, tokens_out, cached, reasoning)
        row.repriced_cost_usd = prices.cost_of_calls(*target, calls, *usage) or 0.0
        _compare(row, prices.cost_of_calls(*target, *priced) or 0.0)
        rows.append((simulated, row))
    return rows


def _compare(row: RepriceRow, repriced_priced: float) -> None:
    """Difference over the calls with a recorded cost: `repriced_priced` is their new cost."""
    if row.actual_cost_usd is None:
        row.difference_usd = row.difference_pct = None
        return
    row.difference_usd = repriced_priced - row.actual_cost_usd
    row.difference_pct = row.difference_usd / row.actual_cost_usd if row.actual_cost_usd else None


def _sum(rows: list[RepriceRow]) -> RepriceRow:
    total = RepriceRow(None, None)
    for row in rows:
        total.calls += row.calls
        total.input_tokens += row.input_tokens
        total.output_tokens += row.output_tokens
        total.unpriced_calls += row.unpriced_calls
        total.repriced_cost_usd += row.repriced_cost_usd
    actual = [r for r in rows if r.actual_cost_usd is not None]
    if actual:
        total.actual_cost_usd = sum(r.actual_cost_usd or 0 for r in actual)
        _compare(total, total.actual_cost_usd + sum(r.difference_usd or 0 for r in actual))
    return total


def _models_seen(home: Path, span: Window, where: Where) -> list[str]:
    relation, params = node_days(span, where)
    rows = get_store(home).query(
        f"SELECT DISTINCT provider || '/' || model FROM {relation} ORDER BY 1", params
    )
    return [r[0] for r in rows if r[0]]

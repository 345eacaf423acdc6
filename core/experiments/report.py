"""The experiment report: per variant and scorer, the figures a reviewer needs to accept
"we can switch", all computed from telemetry (SQL in DuckDB, then numpy statistics).

DuckDB reduces the cells (100,000s of rows) to one row per variant, scorer and item: score
sums and counts, passes, cost, latency and tokens. Everything else is `core.experiments.
stats` on those per-item figures: the item, not the cell, is the unit of sampling, so an
item's repeats are resampled together, and variants are compared on the same items (paired).
Each variant then gets a verdict against the baseline: worse (a significant loss after Holm's
correction), inconclusive (the interval still allows a loss beyond the margin), or as good
and therefore switchable when it is cheaper or faster.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from core.experiments import stats
from core.experiments.records import ExperimentRecord, find_experiment
from core.settings import data_home
from core.telemetry import get_store

ALPHA = 0.05
# Monte-Carlo effort. A bootstrap bound's Monte-Carlo error, in the data's own units, shrinks
# as 1/sqrt(items * resamples): holding their product at a million keeps it near 0.003
# standard deviations (a thousandth of a 0..1 score) at any size, so a large experiment needs
# fewer resamples and its report stays fast. A sign-flip p-value's error does not shrink with
# items, so flips go down less, and never below what tells 0.05 apart within 0.005.
RESAMPLE_CELLS = 1_000_000
MIN_RESAMPLES = 500
FLIP_CELLS = 10_000_000
MIN_FLIPS = 2_000
ITEMS_SHOWN = 20  # items in the per-item view unless asked for more


@dataclass(frozen=True)
class Difference:
    """Variant minus baseline over the items both ran (paired), p corrected by Holm."""

    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    p_raw: float
    items: int

    @property
    def significant(self) -> bool:
        return self.p_value < ALPHA

    def to_json(self) -> dict[str, Any]:
        return {
            "diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "p_raw": self.p_raw,
            "items": self.items,
            "significant": self.significant,
        }


@dataclass
class ScoreSummary:
    scorer: str
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    pass_rate: float | None
    pass_at_k: float | None
    pass_hat_k: float | None
    cells: int  # cells this scorer judged
    unjudged: int  # cells it could not judge (no price, no expected value, a failed judge)
    vs_baseline: Difference | None = None

    def to_json(self, baseline: bool) -> dict[str, Any]:
        document = {
            "mean": self.mean,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "pass_rate": self.pass_rate,
            "pass_at_k": self.pass_at_k,
            "pass_hat_k": self.pass_hat_k,
            "cells": self.cells,
            "unjudged": self.unjudged,
        }
        if not baseline:
            document["vs_baseline"] = self.vs_baseline.to_json() if self.vs_baseline else None
        return document


@dataclass
class VariantSummary:
    name: str
    cells_done: int
    errors: int
    cost_per_item: float | None
    cost_ci_low: float | None
    cost_ci_high: float | None
    unpriced_cells: int
    p50_latency_ms: float | None
    p95_latency_ms: float | None
    latency_ms: float | None  # mean per item
    tokens_per_item: float | None
    scores: dict[str, ScoreSummary]
    cost_vs_baseline: Difference | None = None
    latency_vs_baseline: Difference | None = None  # mean latency per item, ms
    pareto: bool = False  # on the (cost per item, primary score) frontier
    pareto_latency: bool = False  # on the (p95 latency, primary score) frontier
    decision: str = ""
    verdict: str = ""

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.cells_done if self.cells_done else None

    def to_json(self, baseline: bool) -> dict[str, Any]:
        return {
            "name": self.name,
            "baseline": baseline,
            "cells_done": self.cells_done,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "cost_per_item": self.cost_per_item,
            "cost_per_item_ci": [self.cost_ci_low, self.cost_ci_high],
            "unpriced_cells": self.unpriced_cells,
            "p50_latency_ms": self.p50_latency_ms,
            "p95_latency_ms": self.p95_latency_ms,
            "latency_ms": self.latency_ms,
            "tokens_per_item": self.tokens_per_item,
            "pareto": self.pareto,
            "pareto_latency": self.pareto_latency,
            "cost_vs_baseline": self.cost_vs_baseline.to_json() if self.cost_vs_baseline else None,
            "latency_vs_baseline": (
                self.latency_vs_baseline.to_json() if self.latency_vs_baseline else None
            ),
            "decision": self.decision,
            "verdict": self.verdict,
            "scores": {name: s.to_json(baseline) for name, s in self.scores.items()},
        }


@dataclass
class ItemView:
    """One item with every variant's outputs and results, for the side-by-side view."""

    item: int
    inputs: dict[str, Any]
    expected: dict[str, Any]
    disagreement: float  # spread of the primary score between variants (0: all agree)
    outputs: dict[str, list[dict[str, Any]]]  # variant -> per repeat: output, status, scores

    def to_json(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "inputs": self.inputs,
            "expected": self.expected,
            "disagreement": self.disagreement,
            "variants": self.outputs,
        }


@dataclass
class ExperimentReport:
    record: ExperimentRecord
    cells_done: int
    cost_usd: float | None  # every run of the experiment: cells, judges, runs cut short
    judge_cost_usd: float
    variants: list[VariantSummary]
    items: list[ItemView]
    items_total: int
    notes: list[str] = field(default_factory=list)

    @property
    def baseline(self) -> str:
        return self.record.baseline

    @property
    def primary(self) -> str:
        return self.record.primary_scorer

    def variant(self, name: str) -> VariantSummary | None:
        return next((v for v in self.variants if v.name == name), None)

    def to_json(self) -> dict[str, Any]:
        record = self.record
        return {
            "experiment_id": record.experiment_id,
            "name": record.name,
            "workflow": record.workflow,
            "status": record.status,
            "simulated": record.simulated,
            "created_at": _iso(record.created_at),
            "cells": record.cells,
            "cells_done": self.cells_done,
            "items": record.items,
            "repeats": record.repeats,
            "baseline": record.baseline,
            "primary": record.primary_scorer,
            "margin": record.margin,
            "cost_usd": self.cost_usd,
            "judge_cost_usd": self.judge_cost_usd,
            "scorers": record.scorers,
            "notes": self.notes,
            "variants": [v.to_json(v.name == record.baseline) for v in self.variants],
            "item_view": [item.to_json() for item in self.items],
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else None


# ---------------------------------------------------------------------------- queries

# The latest row of each cell (a rerun supersedes an errored one), and each item's position
# in item order: the statistics work on arrays aligned on it.
_CELLS = """
WITH cells AS (
    SELECT * FROM experiment_cells WHERE experiment_id = $id
    QUALIFY row_number() OVER (PARTITION BY item, variant, repeat ORDER BY recorded_at DESC) = 1
), ranks AS (
    SELECT item, row_number() OVER (ORDER BY item) - 1 AS i FROM (SELECT DISTINCT item FROM cells)
)
"""
_PER_ITEM = f"""{_CELLS}
SELECT list_position($variants, variant) - 1 AS v, any_value(r.i) AS i, item, count(*) AS cells,
       avg(cost_usd) AS cost, count(*) - count(cost_usd) AS unpriced,
       count(*) FILTER (WHERE status <> 'success') AS errors, avg(duration_ms) AS latency,
       avg(input_tokens + output_tokens) AS tokens
FROM cells JOIN ranks r USING (item)
WHERE list_contains($variants, variant)
GROUP BY variant, item
"""
_LATENCY = f"""{_CELLS}
SELECT variant, quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95)
FROM cells GROUP BY variant
"""
_SCORES = f"""{_CELLS}
SELECT list_position($scorers, s.scorer) - 1 AS s, list_position($variants, s.variant) - 1 AS v,
       any_value(r.i) AS i, sum(s.score) AS score_sum, count(s.score) AS judged,
       count(*) FILTER (WHERE s.passed) AS passes, count(s.passed) AS pass_judged,
       count(*) - count(s.score) AS unjudged, coalesce(sum(s.scorer_cost_usd), 0) AS judge_cost
FROM experiment_scores s JOIN cells c ON c.run_id = s.run_id JOIN ranks r ON r.item = s.item
WHERE s.experiment_id = $id AND list_contains($scorers, s.scorer)
  AND list_contains($variants, s.variant)
GROUP BY s.scorer, s.variant, s.item
"""
_COST = (
    "SELECT sum(cost_usd), count(*) FILTER (WHERE cost_usd IS NOT NULL) FROM runs"
    " WHERE experiment = $id"
)


def experiment_report(
    wanted: str, home: str | Path | None = None, items_shown: int | None = ITEMS_SHOWN
) -> ExperimentReport:
    """The report of the experiment `wanted` names (an id, a prefix of one, or a name);
    raises UnknownExperiment. `items_shown` limits the per-item view (None: every item)."""
    folder = data_home(home)
    with get_store(folder).connect() as con:
        record = find_experiment(folder, wanted, con)
        names = [s["name"] for s in record.scorers]
        given = {"id": record.experiment_id, "variants": record.variants, "scorers": names}
        per_item = con.execute(_PER_ITEM, _only(_PER_ITEM, given)).fetchnumpy()
        latency = con.execute(_LATENCY, {"id": record.experiment_id}).fetchall()
        scores = con.execute(_SCORES, given).fetchnumpy()
        cost, priced_runs = con.execute(_COST, {"id": record.experiment_id}).fetchone()
    figures = _Figures(record, per_item, scores)
    variants = _summaries(figures, {row[0]: row[1:] for row in latency})
    return ExperimentReport(
        record=record,
        cells_done=int(np.nansum(figures.cells["cells"])),
        cost_usd=float(cost) if priced_runs else None,
        judge_cost_usd=float(np.nansum(figures.scores["judge_cost"])),
        variants=variants,
        items=_item_views(folder, record, figures, items_shown),
        items_total=len(figures.items),
        notes=figures.notes(),
    )


def _only(sql: str, given: dict[str, Any]) -> dict[str, Any]:
    """The named parameters `sql` uses (DuckDB refuses unused ones)."""
    return {name: value for name, value in given.items() if f"${name}" in sql}


# ---------------------------------------------------------------------------- figures


def _effort(items: int) -> dict[str, int]:
    size = max(items, 1)
    return {
        "resamples": int(np.clip(RESAMPLE_CELLS // size, MIN_RESAMPLES, stats.RESAMPLES)),
        "flips": int(np.clip(FLIP_CELLS // size, MIN_FLIPS, stats.FLIPS)),
    }


def _aligned(columns: dict[str, np.ndarray], shape: tuple[int, ...], keys: list[str]) -> dict:
    """Each measure of `columns` as an array of `shape`, indexed by the `keys` columns; NaN
    where nothing ran (masked SQL NULLs too)."""
    index = tuple(np.asarray(columns[key], dtype=int) for key in keys)
    found = {}
    for name, values in columns.items():
        if name in (*keys, "item"):
            continue
        grid = np.full(shape, np.nan)
        grid[index] = np.ma.filled(np.ma.asarray(values, dtype=float), np.nan)
        found[name] = grid
    return found


class _Figures:
    """The per-item figures as arrays: cells[measure][variant, item] and
    scores[measure][scorer, variant, item], items in item order."""

    def __init__(
        self,
        record: ExperimentRecord,
        per_item: dict[str, np.ndarray],
        scores: dict[str, np.ndarray],
    ) -> None:
        self.record = record
        self.variants = {name: position for position, name in enumerate(record.variants)}
        self.scorers = {s["name"]: position for position, s in enumerate(record.scorers)}
        size = int(per_item["i"].max()) + 1 if len(per_item["i"]) else 0
        self.items = np.zeros(size, dtype=int)
        self.items[np.asarray(per_item["i"], dtype=int)] = per_item["item"]
        self.index = {int(item): position for position, item in enumerate(self.items)}
        self.effort = _effort(size)
        self.cells = _aligned(per_item, (len(self.variants), size), ["v", "i"])
        shape = (len(self.scorers), len(self.variants), size)
        self.scores = _aligned(scores, shape, ["s", "v", "i"])

    def per_item(self, variant: str, measure: str) -> np.ndarray:
        return self.cells[measure][self.variants[variant]]

    def scored(self, variant: str, scorer: str, measure: str) -> np.ndarray:
        return self.scores[measure][self.scorers[scorer], self.variants[variant]]

    def score_means(self, variant: str, scorer: str) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.scored(variant, scorer, "score_sum") / self.scored(
                variant, scorer, "judged"
            )

    def notes(self) -> list[str]:
        found = []
        if self.record.simulated:
            found.append(
                "Simulated: answers, latencies and judges come from the simulated provider; "
                "costs are what the same calls would cost, nothing was spent."
            )
        if len(self.items) and len(self.items) < 30:
            found.append(
                f"Only {len(self.items)} items: intervals are wide and small differences "
                "will not show as significant."
            )
        return found


def _mean(values: np.ndarray) -> float | None:
    return float(np.nanmean(values)) if np.isfinite(values).any() else None


def _pass_grid(passes: np.ndarray, judged: np.ndarray) -> np.ndarray:
    """(items, repeats) of 1/0/NaN with each item's passes first: pass@k and pass^k depend
    only on how many of an item's repeats were judged and how many passed."""
    width = int(judged.max()) if judged.size else 0
    if width == 0:
        return np.empty((0, 0))
    slots = np.arange(width)
    grid = np.where(slots < passes[:, None], 1.0, np.where(slots < judged[:, None], 0.0, np.nan))
    return grid[judged > 0]


# ---------------------------------------------------------------------------- statistics


def _resampled(figures: _Figures) -> dict[tuple[str, ...], Any]:
    """Every bootstrap and paired test of the report, run on a thread per core: they are
    independent, each seeded alike whatever runs first, and numpy releases the GIL while it
    draws and sums."""
    effort, base = figures.effort, figures.record.baseline
    jobs: dict[tuple[str, ...], Callable[[], Any]] = {}
    for variant in figures.variants:
        cost = figures.per_item(variant, "cost")
        jobs[("cost", variant)] = partial(stats.bootstrap_mean, cost, resamples=effort["resamples"])
        for scorer in figures.scorers:
            means = figures.score_means(variant, scorer)
            jobs[("score", variant, scorer)] = partial(
                stats.bootstrap_mean, means, resamples=effort["resamples"]
            )
            if variant != base and base in figures.variants:
                jobs[("diff", variant, scorer)] = partial(
                    stats.paired_difference, figures.score_means(base, scorer), means, **effort
                )
        if variant != base and base in figures.variants:
            for measure in ("cost", "latency"):
                jobs[(measure + "_diff", variant)] = partial(
                    stats.paired_difference,
                    figures.per_item(base, measure),
                    figures.per_item(variant, measure),
                    **effort,
                )
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {key: pool.submit(job) for key, job in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def _summaries(figures: _Figures, latency: dict[str, tuple[Any, ...]]) -> list[VariantSummary]:
    """Every variant's figures, its differences against the baseline (Holm-corrected
    together), the frontiers and the verdicts."""
    found = _resampled(figures)
    record = figures.record
    variants = []
    for name in figures.variants:
        interval = found[("cost", name)]
        quantiles = latency.get(name, (None, None))
        variants.append(
            VariantSummary(
                name=name,
                cells_done=int(np.nansum(figures.per_item(name, "cells"))),
                errors=int(np.nansum(figures.per_item(name, "errors"))),
                cost_per_item=interval.estimate if interval else None,
                cost_ci_low=interval.low if interval else None,
                cost_ci_high=interval.high if interval else None,
                unpriced_cells=int(np.nansum(figures.per_item(name, "unpriced"))),
                p50_latency_ms=quantiles[0],
                p95_latency_ms=quantiles[1],
                latency_ms=_mean(figures.per_item(name, "latency")),
                tokens_per_item=_mean(figures.per_item(name, "tokens")),
                scores={s: _score(figures, found, name, s) for s in figures.scorers},
            )
        )
    raw = [
        (variant.scores[scorer], found[("diff", variant.name, scorer)])
        for variant in variants
        for scorer in figures.scorers
        if found.get(("diff", variant.name, scorer)) is not None
    ]
    for (summary, difference), p_value in zip(
        raw, stats.holm([d.p_value for _, d in raw]), strict=True
    ):
        summary.vs_baseline = _difference(difference, float(p_value))
    for variant in variants:
        for measure, attribute in (
            ("cost", "cost_vs_baseline"),
            ("latency", "latency_vs_baseline"),
        ):
            difference = found.get((measure + "_diff", variant.name))
            if difference is not None:
                setattr(variant, attribute, _difference(difference, difference.p_value))
    _frontiers(variants, record.primary_scorer)
    base = next((v for v in variants if v.name == record.baseline), None)
    for variant in variants:
        variant.decision, variant.verdict = _verdict(variant, base, record)
    return variants


def _score(
    figures: _Figures, found: dict[tuple[str, ...], Any], variant: str, scorer: str
) -> ScoreSummary:
    interval = found[("score", variant, scorer)]
    passes = figures.scored(variant, scorer, "passes")
    judged = figures.scored(variant, scorer, "pass_judged")
    grid = _pass_grid(np.nan_to_num(passes), np.nan_to_num(judged))
    total = float(np.nansum(judged))
    k = figures.record.repeats
    return ScoreSummary(
        scorer=scorer,
        mean=interval.estimate if interval else None,
        ci_low=interval.low if interval else None,
        ci_high=interval.high if interval else None,
        pass_rate=float(np.nansum(passes)) / total if total else None,
        pass_at_k=stats.pass_at_k(grid, k) if grid.size else None,
        pass_hat_k=stats.pass_hat_k(grid, k) if grid.size else None,
        cells=int(np.nansum(figures.scored(variant, scorer, "judged"))),
        unjudged=int(np.nansum(figures.scored(variant, scorer, "unjudged"))),
    )


def _frontiers(variants: list[VariantSummary], primary: str) -> None:
    means = np.array([_or_nan(v.scores[primary].mean) for v in variants])
    cost = np.array([_or_nan(v.cost_per_item) for v in variants])
    latency = np.array([_or_nan(v.p95_latency_ms) for v in variants])
    for variant, on_cost, on_latency in zip(
        variants, stats.pareto_front(cost, means), stats.pareto_front(latency, means), strict=True
    ):
        variant.pareto, variant.pareto_latency = bool(on_cost), bool(on_latency)


def _difference(found: stats.PairedDifference, p_value: float) -> Difference:
    return Difference(found.diff, found.low, found.high, p_value, found.p_value, found.n_items)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _relative(change: Difference | None, base: float | None) -> tuple[float, float, float] | None:
    if change is None or not base:
        return None
    return change.diff / base, change.ci_low / base, change.ci_high / base


def _verdict(
    variant: VariantSummary, base: VariantSummary | None, record: ExperimentRecord
) -> tuple[str, str]:
    """(decision, one line): can switch, keep the baseline, inconclusive, no gain."""
    primary = record.primary_scorer
    own = variant.scores[primary]
    if base is None or variant is base:
        mean = "no scores" if own.mean is None else f"{primary} {own.mean:.2f}"
        if own.ci_low is not None and own.ci_high is not None:
            mean += f" ({own.ci_low:.2f}..{own.ci_high:.2f})"
        return "baseline", f"{variant.name}: the baseline, {mean}"
    compared = {n: s.vs_baseline for n, s in variant.scores.items() if s.vs_baseline}
    worse = sorted(n for n, d in compared.items() if d.significant and d.diff < 0)
    unsure = sorted(n for n, d in compared.items() if d.ci_low < -record.margin and n not in worse)
    cost = _relative(variant.cost_vs_baseline, base.cost_per_item)
    latency = _relative(variant.latency_vs_baseline, base.latency_ms)
    cheaper = cost is not None and cost[2] < 0
    faster = latency is not None and latency[2] < 0
    better = [n for n, d in compared.items() if d.significant and d.diff > 0]
    if not compared:
        decision = "not enough data"
    elif worse:
        decision = f"keep the baseline ({', '.join(worse)} worse)"
    elif unsure:
        decision = f"inconclusive ({', '.join(unsure)} may lose more than {record.margin:g})"
    elif cheaper or faster or better:
        decision = "can switch"
    else:
        decision = "no gain"
    parts = [variant.name + ":"]
    if cost is not None:
        parts.append(f"cost {_percent(cost)},")
    difference = compared.get(primary)
    if difference is not None:
        significance = "significant" if difference.significant else "not significant"
        low, high = difference.ci_low, difference.ci_high
        parts.append(f"{primary} {difference.diff:+.2f} ({low:+.2f}..{high:+.2f}, {significance}),")
    if latency is not None:
        parts.append(f"latency {_percent(latency)},")
    parts.append(f"{'on' if variant.pareto else 'off'} the frontier -> {decision}")
    return decision, " ".join(parts)


def _percent(change: tuple[float, float, float]) -> str:
    value, low, high = (round(100 * c) for c in change)
    return f"{value:+d} % ({low:+d}..{high:+d})"


# ---------------------------------------------------------------------------- items


def _item_views(
    home: Path, record: ExperimentRecord, figures: _Figures, shown: int | None
) -> list[ItemView]:
    """The items where variants disagree most on the primary score first, with every
    variant's outputs and scores; ties in item order."""
    if not len(figures.items) or shown == 0:
        return []
    means = np.vstack([figures.score_means(v, record.primary_scorer) for v in record.variants])
    with np.errstate(invalid="ignore"):
        spread = np.nan_to_num(np.nanmax(means, axis=0) - np.nanmin(means, axis=0))
    order = np.lexsort((figures.items, -spread))
    chosen = figures.items[order if shown is None else order[:shown]]
    spreads = {int(item): float(spread[figures.index[int(item)]]) for item in chosen}
    ids = [int(item) for item in chosen]
    store = get_store(home)
    with store.connect() as con:
        described = con.execute(
            "SELECT item, inputs, expected FROM experiment_items"
            " WHERE experiment_id = $id AND list_contains($items, item)",
            {"id": record.experiment_id, "items": ids},
        ).fetchall()
        cells = con.execute(
            f"{_CELLS} SELECT item, variant, repeat, status, output, error, run_id FROM cells"
            " WHERE list_contains($items, item)",
            {"id": record.experiment_id, "items": ids},
        ).fetchall()
        scored = con.execute(
            "SELECT run_id, scorer, score, passed, reason FROM experiment_scores"
            " WHERE experiment_id = $id AND list_contains($items, item)",
            {"id": record.experiment_id, "items": ids},
        ).fetchall()
    by_run: dict[str, dict[str, Any]] = {}
    for run_id, scorer, score, passed, reason in scored:
        by_run.setdefault(run_id, {})[scorer] = {"score": score, "passed": passed, "reason": reason}
    views = {
        item: ItemView(
            item, json.loads(inputs or "{}"), json.loads(expected or "{}"), spreads[item], {}
        )
        for item, inputs, expected in described
    }
    order = {name: position for position, name in enumerate(record.variants)}
    cells.sort(key=lambda cell: (cell[0], order.get(cell[1], len(order)), cell[2]))
    for item, variant, repeat, status, output, error, run_id in cells:
        view = views.get(item)
        if view is None:
            continue
        view.outputs.setdefault(variant, []).append(
            {
                "repeat": repeat,
                "status": status,
                "error": error,
                "output": json.loads(output) if output else None,
                "scores": by_run.get(run_id, {}),
            }
        )
    return [views[item] for item in ids if item in views]

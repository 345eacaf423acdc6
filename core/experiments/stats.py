"""Statistics for experiments: intervals, paired tests and frontiers over (item, repeat) grids.

The unit of sampling is the dataset item, not the run: an item's repeats share its difficulty,
so they are not independent draws. Every estimate here therefore reduces a (n_items, k_repeats)
grid to one value per item first (NaN marks a cell that was not run) and resamples items.
Variants are scored on the same items, so comparisons are paired: pairing removes the
item-to-item spread that would otherwise drown a small but consistent difference.

Pure numpy and deterministic for a given seed, so a report reads the same on every refresh.
Resamples are drawn in blocks of a fixed number of cells, which keeps memory flat and the
working set in cache whatever the dataset size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

SEED = 20261124
RESAMPLES = 2000
FLIPS = 10_000  # Monte-Carlo sign flips: standard error of p at 0.01 is 0.001
EXACT_MAX_ITEMS = 16  # 2**16 = 65,536 sums: no dearer than FLIPS draws, and exact
_BLOCK_CELLS = 1 << 14  # cells per block (128 KB of float64): cache-sized, reused by malloc
_TIE = 1e-9  # tie tolerance, times sum|d|: rounding of an n-term sum is ~n * 2e-16 of that


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class PairedDifference:
    """Variant minus baseline over the items both ran, with its interval and two-sided p."""

    diff: float
    low: float
    high: float
    p_value: float
    n_items: int


def _as_grid(values: ArrayLike) -> np.ndarray:
    """A 1-D input is one value per item, so cost per item and scores share one code path."""
    grid = np.asarray(values, dtype=float)
    if grid.ndim == 1:
        grid = grid.reshape(-1, 1)
    if grid.ndim != 2:
        raise ValueError(f"expected (n_items, k_repeats), got shape {grid.shape}")
    return grid


def item_means(values: ArrayLike) -> np.ndarray:
    """Mean over each item's repeats that ran; NaN for an item with none.

    Items without a value are kept as NaN rather than dropped so the result stays aligned with
    the dataset's items, which pairing between variants relies on. Each item weighs the same
    whatever its number of completed repeats.
    """
    grid = _as_grid(values)
    ran = ~np.isnan(grid)
    counts = ran.sum(axis=1)
    sums = np.where(ran, grid, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def _blockwise(total: int, width: int, draw: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """Concatenate draw(start, stop) over row blocks of at most _BLOCK_CELLS cells."""
    rows = max(1, _BLOCK_CELLS // max(width, 1))
    return np.concatenate(
        [draw(start, min(start + rows, total)) for start in range(0, total, rows)]
    )


def _check(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def _percentile_interval(
    means: np.ndarray, resamples: int, level: float, rng: np.random.Generator
) -> Interval:
    estimate = float(means.mean())
    if means.min() == means.max():
        # Every resample equals the estimate; answering directly avoids last-bit rounding noise.
        return Interval(estimate, estimate, estimate)
    n = len(means)
    boot = _blockwise(
        resamples, n, lambda start, stop: means[rng.integers(0, n, (stop - start, n))].mean(axis=1)
    )
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail])
    return Interval(estimate, float(low), float(high))


def bootstrap_mean(
    values: ArrayLike,
    *,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    seed: int = SEED,
) -> Interval | None:
    """Mean over items with a cluster-bootstrap percentile interval; None when no item ran.

    Resampling per-item means resamples each item's repeats together, so the interval reflects
    the number of items rather than pretending n_items * k runs are independent.

    Percentile rather than BCa: BCa's bias and skew corrections shrink as 1/n and are small
    next to the width over hundreds of items; the percentile interval never leaves the range of
    the data ([0, 1] for scores); and BCa is undefined on degenerate samples, which are common
    here (a scorer that passes everything). One item or all-equal items give a zero-width
    interval at the estimate.
    """
    _check(resamples, level)
    means = item_means(values)
    means = means[~np.isnan(means)]
    if means.size == 0:
        return None
    return _percentile_interval(means, resamples, level, np.random.default_rng(seed))


def _sign_flip_p(diffs: np.ndarray, flips: int, rng: np.random.Generator) -> float:
    """Two-sided p: share of sign assignments whose |sum| reaches the observed |sum|.

    Under the null the variant label within an item is exchangeable, so each item's difference
    is as likely to carry either sign. Sums stand in for means (same order, no division).
    """
    observed = abs(diffs.sum())
    threshold = observed - _TIE * np.abs(diffs).sum()  # rounding must not break ties
    n = len(diffs)
    if n <= EXACT_MAX_ITEMS:
        sums = np.zeros(1)
        for d in diffs:  # one doubling per item (at most 16), giving all 2**n sums
            sums = np.concatenate((sums + d, sums - d))
        return float(np.count_nonzero(np.abs(sums) >= threshold) / sums.size)
    total = diffs.sum()
    signs = rng.integers(0, 256, (flips, (n + 7) // 8), dtype=np.uint8)  # one bit per item

    def draw(start: int, stop: int) -> np.ndarray:
        plus = np.unpackbits(signs[start:stop], axis=1, count=n) @ diffs  # items kept positive
        return np.abs(2 * plus - total)

    hits = np.count_nonzero(_blockwise(flips, n, draw) >= threshold)
    # The observed assignment counts as one of the flips, so p is never 0 (Phipson & Smyth 2010).
    return float((hits + 1) / (flips + 1))


def paired_difference(
    baseline: ArrayLike,
    variant: ArrayLike,
    *,
    resamples: int = RESAMPLES,
    level: float = 0.95,
    flips: int = FLIPS,
    seed: int = SEED,
) -> PairedDifference | None:
    """Variant minus baseline over the items both ran; None when they share no item.

    The interval is a paired bootstrap (the same items drawn for both, i.e. a bootstrap of the
    per-item differences). The p-value is a sign-flip permutation test on those differences:
    exact over all 2**n assignments up to EXACT_MAX_ITEMS items (at most 65,536 sums, cheaper
    than the Monte-Carlo run and free of its error), `flips` random assignments beyond, where
    enumeration would double in cost with every item. Rows are items in the same order for
    both grids; the number of repeats may differ.
    """
    _check(resamples, level)
    if flips < 1:
        raise ValueError(f"flips must be at least 1, got {flips}")
    a, b = item_means(baseline), item_means(variant)
    if a.shape != b.shape:
        raise ValueError(f"baseline has {a.size} items, variant has {b.size}")
    both = ~np.isnan(a) & ~np.isnan(b)
    diffs = b[both] - a[both]
    if diffs.size == 0:
        return None
    rng = np.random.default_rng(seed)
    interval = _percentile_interval(diffs, resamples, level, rng)
    p_value = _sign_flip_p(diffs, flips, rng)
    return PairedDifference(interval.estimate, interval.low, interval.high, p_value, diffs.size)


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in input order; NaN stays NaN and is not counted.

    Several variants and scorers each tested at 0.05 would find a false winner far more often
    than 5 % of the time. Holm holds that chance at 5 % whatever the dependence between the
    tests, and never rejects less than plain Bonferroni.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = order.size
    steps = (m - np.arange(m)) * p[order]
    adjusted[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    return adjusted


def _eligible_counts(passed: ArrayLike, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(repeats run, passes) for the items with at least k repeats run."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    grid = _as_grid(passed)
    ran = ~np.isnan(grid)
    if not np.isin(grid[ran], (0.0, 1.0)).all():
        raise ValueError("passed must hold 0/1 (or bool) and NaN only")
    n = ran.sum(axis=1)
    c = np.where(ran, grid, 0.0).sum(axis=1)
    keep = n >= k
    return n[keep], c[keep]


def _choose_ratio(top: np.ndarray, n: np.ndarray, k: int) -> np.ndarray:
    """C(top, k) / C(n, k) per item as a product of k ratios: no factorial ever overflows.

    A factor reaches 0 once top < k, which is exactly when C(top, k) = 0.
    """
    steps = np.arange(k)
    return np.prod(np.maximum(top[:, None] - steps, 0.0) / (n[:, None] - steps), axis=1)


def pass_at_k(passed: ArrayLike, k: int) -> float | None:
    """Chance that at least one of k repeats passes, averaged over items.

    The unbiased estimator 1 - C(n-c, k) / C(n, k) of Chen et al. 2021 ("Evaluating Large
    Language Models Trained on Code", the Codex paper), with n repeats run and c passes per
    item: it uses all n repeats instead of only the first k. Items with fewer than k repeats
    run are left out; None when none has k.
    """
    n, c = _eligible_counts(passed, k)
    if n.size == 0:
        return None
    return float(np.mean(1.0 - _choose_ratio(n - c, n, k)))


def pass_hat_k(passed: ArrayLike, k: int) -> float | None:
    """Chance that all k repeats pass (reliability), averaged over items.

    The estimator C(c, k) / C(n, k) of Yao et al. 2024 ("tau-bench"), the counterpart of
    pass@k: it falls as k grows where pass@k rises. Items with fewer than k repeats run are
    left out; None when none has k.
    """
    n, c = _eligible_counts(passed, k)
    if n.size == 0:
        return None
    return float(np.mean(_choose_ratio(c, n, k)))


def pareto_front(cost: ArrayLike, score: ArrayLike) -> np.ndarray:
    """True for the points no other point beats: lower or equal x and higher or equal y, and
    strictly better on one. x is anything where lower is better (cost per item, p95 latency).

    NaN points are never on the front and never dominate. Equal points are both kept. All pairs
    are compared at once (n^2 cells), which suits the handful of variants in one experiment.
    """
    x = np.asarray(cost, dtype=float)
    y = np.asarray(score, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"cost and score must be 1-D of one length, got {x.shape}, {y.shape}")
    no_worse = (x[:, None] <= x[None, :]) & (y[:, None] >= y[None, :])
    better = (x[:, None] < x[None, :]) | (y[:, None] > y[None, :])
    dominated = (no_worse & better).any(axis=0)  # row j dominates column i
    return ~dominated & ~np.isnan(x) & ~np.isnan(y)

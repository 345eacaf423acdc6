"""Experiment statistics against independent computations: scipy's bootstrap and permutation
test, brute-force enumeration and hand-worked values, on fixed seeded data."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from core.experiments.stats import (
    EXACT_MAX_ITEMS,
    FLIPS,
    Interval,
    bootstrap_mean,
    holm,
    item_means,
    paired_difference,
    pareto_front,
    pass_at_k,
    pass_hat_k,
)

SCIPY_RESAMPLES = 100_000


def score_grid(seed: int, n_items: int = 40, k: int = 3, missing: float = 0.1) -> np.ndarray:
    """Scores in [0, 1] correlated within an item (its difficulty), with some cells not run."""
    rng = np.random.default_rng(seed)
    difficulty = rng.beta(2, 2, (n_items, 1))
    grid = np.clip(difficulty + rng.normal(0, 0.15, (n_items, k)), 0, 1)
    grid[rng.random((n_items, k)) < missing] = np.nan
    return grid


def pass_grid(seed: int, n_items: int, k: int, missing: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grid = (rng.random((n_items, k)) < rng.random((n_items, 1))).astype(float)
    grid[rng.random((n_items, k)) < missing] = np.nan
    return grid


def quantile_tolerance(sample: np.ndarray, ours: int, theirs: int) -> float:
    """Five standard errors of the gap between two Monte-Carlo estimates of a 2.5 % quantile.

    Both sides estimate the same ideal bootstrap quantile with independent draws. A q-quantile
    from B draws has standard error sqrt(q(1-q)/B) / f(x_q); the bootstrap distribution of a
    mean of 40 items is close to normal with sd = sd(sample)/sqrt(n), where that factor is
    sqrt(.025 * .975) / phi(1.96) = 2.67 sd / sqrt(B).
    """
    spread = np.std(sample) / np.sqrt(sample.size)
    factor = np.sqrt(0.025 * 0.975) / scipy_stats.norm.pdf(1.96)
    return 5 * factor * spread * np.sqrt(1 / ours + 1 / theirs)


def test_item_means_skip_cells_not_run_and_keep_empty_items_aligned() -> None:
    grid = [[1.0, 0.0, np.nan], [np.nan, np.nan, np.nan], [0.5, 0.5, 0.5]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an all-NaN item must not warn
        means = item_means(grid)
    np.testing.assert_array_equal(means, [0.5, np.nan, 0.5])
    np.testing.assert_array_equal(item_means([0.2, 0.4]), [0.2, 0.4])  # 1-D: one per item
    with pytest.raises(ValueError):
        item_means(np.zeros((2, 2, 2)))


@pytest.mark.parametrize("resamples", [2000, SCIPY_RESAMPLES])
def test_bootstrap_mean_matches_scipy_percentile_interval(resamples: int) -> None:
    grid = score_grid(1)
    means = item_means(grid)
    ours = bootstrap_mean(grid, resamples=resamples, seed=7)
    theirs = scipy_stats.bootstrap(
        (means,),
        np.mean,
        method="percentile",
        n_resamples=SCIPY_RESAMPLES,
        random_state=np.random.default_rng(11),
    ).confidence_interval
    assert ours is not None
    assert ours.estimate == pytest.approx(means.mean(), abs=1e-15)
    tolerance = quantile_tolerance(means, resamples, SCIPY_RESAMPLES)
    assert abs(ours.low - theirs.low) < tolerance
    assert abs(ours.high - theirs.high) < tolerance
    assert ours.low < ours.estimate < ours.high


def test_bootstrap_mean_resamples_items_with_their_repeats() -> None:
    grid = score_grid(2)
    by_item = bootstrap_mean(item_means(grid), seed=3)
    assert bootstrap_mean(grid, seed=3) == by_item
    with_empty_item = np.vstack([grid, np.full((1, 3), np.nan)])
    assert bootstrap_mean(with_empty_item, seed=3) == by_item


def test_bootstrap_mean_is_deterministic_per_seed() -> None:
    grid = score_grid(3)
    assert bootstrap_mean(grid, seed=5) == bootstrap_mean(grid, seed=5)
    assert bootstrap_mean(grid, seed=5) != bootstrap_mean(grid, seed=6)


def test_bootstrap_mean_degenerate_samples() -> None:
    assert bootstrap_mean([[0.3, np.nan, 0.5]]) == Interval(0.4, 0.4, 0.4)
    constant = np.full((50, 3), 0.1)
    assert bootstrap_mean(constant) == Interval(0.1, 0.1, 0.1)
    assert bootstrap_mean(np.empty((0, 3))) is None
    assert bootstrap_mean(np.full((4, 3), np.nan)) is None
    with pytest.raises(ValueError):
        bootstrap_mean(constant, level=1.0)


def scipy_sign_flip_p(diffs: np.ndarray) -> float:
    result = scipy_stats.permutation_test(
        (diffs,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,  # exact: all 2**n sign assignments
        alternative="two-sided",
    )
    return float(result.pvalue)


@pytest.mark.parametrize(
    ("baseline", "variant"),
    [
        # Pass/fail over 3 repeats: differences on a grid of thirds, so many exact ties.
        (pass_grid(4, 12, 3, 0.0), pass_grid(5, 12, 3, 0.0)),
        (score_grid(6, n_items=EXACT_MAX_ITEMS), score_grid(7, n_items=EXACT_MAX_ITEMS)),
    ],
)
def test_exact_sign_flip_p_value_matches_scipy(baseline: np.ndarray, variant: np.ndarray) -> None:
    a, b = item_means(baseline), item_means(variant)
    both = ~np.isnan(a) & ~np.isnan(b)
    diffs = b[both] - a[both]
    assert diffs.size <= EXACT_MAX_ITEMS
    result = paired_difference(baseline, variant)
    assert result is not None
    assert result.n_items == diffs.size
    assert result.diff == pytest.approx(diffs.mean(), abs=1e-15)
    expected = scipy_sign_flip_p(diffs)
    assert 0.001 < expected < 0.9  # a p-value that tells the count, not a trivial one
    assert abs(result.p_value - expected) <= 1e-12


def test_monte_carlo_sign_flip_p_value_is_close_to_exact() -> None:
    rng = np.random.default_rng(8)
    diffs = rng.normal(0.1, 0.3, EXACT_MAX_ITEMS + 2)
    result = paired_difference(np.zeros_like(diffs), diffs, seed=9)
    assert result is not None
    exact = scipy_sign_flip_p(diffs)
    assert 0.01 < exact < 0.5
    # Five binomial standard errors of a share over FLIPS draws, plus the +1 correction.
    assert abs(result.p_value - exact) < 5 * np.sqrt(exact * (1 - exact) / FLIPS) + 1 / FLIPS


def test_monte_carlo_p_value_is_never_zero() -> None:
    # 40 positive differences: only 2 of 2**40 assignments reach the observed sum.
    diffs = np.linspace(0.1, 0.5, 40)
    result = paired_difference(np.zeros(40), diffs)
    assert result is not None
    assert result.p_value == 1 / (FLIPS + 1)


def test_paired_interval_matches_scipy_paired_bootstrap() -> None:
    baseline, variant = score_grid(10), score_grid(11)
    a, b = item_means(baseline), item_means(variant)
    both = ~np.isnan(a) & ~np.isnan(b)
    result = paired_difference(baseline, variant, resamples=SCIPY_RESAMPLES, seed=12)
    theirs = scipy_stats.bootstrap(
        (a[both], b[both]),
        lambda x, y, axis: np.mean(y - x, axis=axis),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=SCIPY_RESAMPLES,
        random_state=np.random.default_rng(13),
    ).confidence_interval
    assert result is not None
    tolerance = quantile_tolerance(b[both] - a[both], SCIPY_RESAMPLES, SCIPY_RESAMPLES)
    assert abs(result.low - theirs.low) < tolerance
    assert abs(result.high - theirs.high) < tolerance


def test_paired_difference_uses_items_present_in_both() -> None:
    baseline = np.array([[1.0, 0.0], [np.nan, np.nan], [0.5, 0.5], [1.0, 1.0]])
    variant = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [np.nan] * 3, [0.0, np.nan, 1.0]])
    result = paired_difference(baseline, variant)
    assert result is not None
    assert result.n_items == 2  # items 0 and 3
    assert result.diff == pytest.approx(((1.0 - 0.5) + (0.5 - 1.0)) / 2)
    assert paired_difference(baseline[1:3], variant[1:3]) is None
    with pytest.raises(ValueError):
        paired_difference(baseline, variant[:3])


@pytest.mark.parametrize("n_items", [5, 40])  # exact and Monte-Carlo p-values
def test_identical_variants_differ_by_zero_with_p_one(n_items: int) -> None:
    grid = score_grid(14, n_items=n_items)
    result = paired_difference(grid, grid.copy())
    assert result is not None
    assert (result.diff, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_paired_difference_of_one_item() -> None:
    result = paired_difference([[0.2, 0.4]], [[0.9, np.nan]])
    assert result is not None
    assert result.diff == pytest.approx(0.6)
    assert result.low == result.high == result.diff
    assert result.p_value == 1.0  # both signs of a single difference reach it
    assert result.n_items == 1


def test_holm_hand_worked_example() -> None:
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> raised to 0.06.
    adjusted = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adjusted, [0.03, 0.06, 0.06, 0.02], rtol=1e-15)


def test_holm_caps_at_one_skips_nan_and_handles_empty() -> None:
    np.testing.assert_array_equal(holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04], rtol=1e-15)
    assert holm([]).size == 0


def test_holm_is_monotone_and_between_p_and_bonferroni() -> None:
    rng = np.random.default_rng(15)
    p = np.round(rng.random(30) ** 3, 3)  # rounding makes ties
    adjusted = holm(p)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= 0)
    assert np.all(adjusted >= p)
    assert np.all(adjusted <= np.minimum(p * p.size, 1.0))
    tied = p[:, None] == p[None, :]
    assert not np.any(tied & (adjusted[:, None] != adjusted[None, :]))  # ties adjust alike


def brute_force_pass(passed: np.ndarray, k: int) -> tuple[float | None, float | None]:
    """(pass@k, pass^k) as the share of k-subsets of each item's run repeats."""
    at, hat = [], []
    for row in passed:
        run = row[~np.isnan(row)]
        if run.size < k:
            continue
        subsets = np.array(list(itertools.combinations(run, k)))
        at.append(subsets.any(axis=1).mean())
        hat.append(subsets.all(axis=1).mean())
    if not at:
        return None, None
    return float(np.mean(at)), float(np.mean(hat))


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6])
def test_pass_at_k_and_pass_hat_k_match_enumeration(k: int) -> None:
    passed = pass_grid(16, 30, 6, 0.2)
    expected_at, expected_hat = brute_force_pass(passed, k)
    assert expected_at is not None and expected_hat is not None
    assert pass_at_k(passed, k) == pytest.approx(expected_at, abs=1e-12)
    assert pass_hat_k(passed, k) == pytest.approx(expected_hat, abs=1e-12)


def test_pass_k_edge_cases() -> None:
    passed = np.array([[True, False, True], [True, True, True]])
    assert pass_at_k(passed, 1) == pytest.approx(5 / 6)  # k = 1: both are the pass rate
    assert pass_hat_k(passed, 1) == pytest.approx(5 / 6)
    assert pass_hat_k(passed, 3) == 0.5 and pass_at_k(passed, 3) == 1.0
    too_few = np.array([[1.0, np.nan, np.nan], [0.0, 1.0, np.nan]])
    assert pass_at_k(too_few, 2) == 1.0  # only the second item has 2 repeats
    assert pass_at_k(too_few, 3) is None and pass_hat_k(too_few, 3) is None
    with pytest.raises(ValueError):
        pass_at_k([[0.5, 1.0]], 1)
    with pytest.raises(ValueError):
        pass_hat_k(passed, 0)


def brute_force_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    front = np.zeros(x.size, dtype=bool)
    for i in range(x.size):
        if np.isnan(x[i]) or np.isnan(y[i]):
            continue
        front[i] = not any(
            x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]) for j in range(x.size)
        )
    return front


def test_pareto_front_matches_pairwise_check() -> None:
    rng = np.random.default_rng(17)
    x = rng.integers(0, 8, 60).astype(float)  # a small range makes ties and duplicates
    y = rng.integers(0, 8, 60).astype(float)
    x[rng.random(60) < 0.1] = np.nan
    y[rng.random(60) < 0.1] = np.nan
    front = pareto_front(x, y)
    np.testing.assert_array_equal(front, brute_force_front(x, y))
    assert front.any()


def test_pareto_front_small_cases() -> None:
    cost = [1.0, 2.0, 3.0, 2.0, 1.0, np.nan]
    score = [0.5, 0.7, 0.7, 0.4, 0.5, 0.9]
    # Equal points (0 and 4) are both kept; a NaN point neither joins nor dominates.
    np.testing.assert_array_equal(pareto_front(cost, score), [1, 1, 0, 0, 1, 0])
    assert pareto_front([], []).size == 0
    with pytest.raises(ValueError):
        pareto_front([1.0], [1.0, 2.0])

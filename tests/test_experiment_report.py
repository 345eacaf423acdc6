"""The experiment report against independent computations on fixed data: per-item figures by
numpy, intervals by scipy's bootstrap, p-values by scipy's exact permutation test, Holm by
hand, pass@k and pass^k by enumeration, the frontier pairwise. The data goes in through the
real bulk path, with a superseded cell and an orphan score that must not count."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from core.app import experiment_charts
from core.app.experiment_html import experiment_html
from core.experiments.report import experiment_report
from core.experiments.report_render import render, to_csv
from core.telemetry import get_store
from core.telemetry.rows import arrow_table, table_row

ITEMS, REPEATS = 12, 3
VARIANTS = {
    "base": (0.55, 0.004, 900.0),
    "cheap": (0.52, 0.001, 500.0),
    "worse": (0.2, 0.001, 400.0),
}
START = datetime(2026, 1, 5, 12)


def synthetic(seed: int = 3) -> dict[str, dict[tuple[int, int], dict[str, float]]]:
    """variant -> (item, repeat) -> figures; items differ in difficulty, shared by variants."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 0.2, ITEMS)
    cells: dict[str, dict[tuple[int, int], dict[str, float]]] = {}
    for name, (quality, cost, latency) in VARIANTS.items():
        cells[name] = {}
        for item, repeat in itertools.product(range(1, ITEMS + 1), range(REPEATS)):
            score = float(np.clip(quality - difficulty[item - 1] + rng.normal(0, 0.15), 0, 1))
            cells[name][(item, repeat)] = {
                "score": round(score, 3),
                "passed": float(rng.random() < score),
                "cost": cost * (1 + 0.3 * rng.random()),
                "latency": latency * (1 + 0.5 * rng.random()),
            }
    return cells


@pytest.fixture
def recorded(home: Path) -> dict:
    data = synthetic()
    experiment = table_row(
        "experiments",
        experiment_id="stat-1",
        name="stat",
        workflow="wf",
        baseline="base",
        primary_scorer="graded",
        variants=json.dumps(list(VARIANTS)),
        scorers=json.dumps(
            [
                {"name": "graded", "type": "llm_judge", "node": "answer", "threshold": 0.5},
                {"name": "exact", "type": "equals", "node": "answer", "threshold": 1.0},
            ]
        ),
        items=ITEMS,
        repeats=REPEATS,
        cells=ITEMS * REPEATS * len(VARIANTS),
        simulated=True,
        margin=0.05,
        created_at=START,
        status="finished",
    )
    items, cells, scores, runs = [], [], [], []
    for name, grid in data.items():
        for (item, repeat), figures in grid.items():
            run_id = f"{name}-{item}-{repeat}"
            at = START + timedelta(seconds=item)
            runs.append(
                table_row(
                    "runs",
                    run_id=run_id,
                    experiment="stat-1",
                    variant=name,
                    cost_usd=figures["cost"],
                    status="success",
                )
            )
            cells.append(
                table_row(
                    "experiment_cells",
                    experiment_id="stat-1",
                    item=item,
                    variant=name,
                    repeat=repeat,
                    run_id=run_id,
                    status="success",
                    cost_usd=figures["cost"],
                    duration_ms=figures["latency"],
                    input_tokens=10,
                    output_tokens=5,
                    output=json.dumps({"answer": f"{name} says {item}"}),
                    recorded_at=at,
                )
            )
            for scorer, value, passed in (
                ("graded", figures["score"], figures["score"] >= 0.5),
                ("exact", figures["passed"], bool(figures["passed"])),
            ):
                scores.append(
                    table_row(
                        "experiment_scores",
                        experiment_id="stat-1",
                        run_id=run_id,
                        item=item,
                        variant=name,
                        repeat=repeat,
                        scorer=scorer,
                        score=value,
                        passed=passed,
                        reason="ok",
                        recorded_at=at,
                    )
                )
    for item in range(1, ITEMS + 1):
        items.append(
            table_row(
                "experiment_items",
                experiment_id="stat-1",
                item=item,
                inputs=json.dumps({"q": f"question {item}"}),
                expected=json.dumps({"answer": "right"}),
            )
        )
    # An earlier attempt of one cell (superseded by the row above) and a score of a run that
    # never got its cell row (its process died): neither may count.
    cells.append(
        table_row(
            "experiment_cells",
            experiment_id="stat-1",
            item=1,
            variant="base",
            repeat=0,
            run_id="stale",
            status="failed",
            cost_usd=9.0,
            duration_ms=1e6,
            recorded_at=START - timedelta(days=1),
        )
    )
    for run_id in ("stale", "orphan"):
        scores.append(
            table_row(
                "experiment_scores",
                experiment_id="stat-1",
                run_id=run_id,
                item=1,
                variant="base",
                repeat=0,
                scorer="graded",
                score=0.0,
                passed=False,
                recorded_at=START,
            )
        )
    tables = {
        "experiments": [experiment],
        "experiment_items": items,
        "experiment_cells": cells,
        "experiment_scores": scores,
        "runs": runs,
    }
    get_store(home).bulk_load({name: arrow_table(name, rows) for name, rows in tables.items()})
    return data


def per_item(data: dict, variant: str, key: str) -> np.ndarray:
    grid = data[variant]
    return np.array(
        [np.mean([grid[(i, r)][key] for r in range(REPEATS)]) for i in range(1, ITEMS + 1)]
    )


def exact_sign_flip(diffs: np.ndarray) -> float:
    return float(
        scipy_stats.permutation_test(
            (diffs,),
            lambda x, axis: np.mean(x, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=np.inf,
            alternative="two-sided",
        ).pvalue
    )


def test_means_intervals_and_rates_match_independent_computations(
    home: Path, recorded: dict
) -> None:
    report = experiment_report("stat-1", home)
    assert report.cells_done == ITEMS * REPEATS * len(VARIANTS)  # the stale row is superseded
    for variant in report.variants:
        means = per_item(recorded, variant.name, "score")
        graded = variant.scores["graded"]
        assert graded.mean == pytest.approx(means.mean(), abs=1e-12)
        theirs = scipy_stats.bootstrap(
            (means,),
            np.mean,
            method="percentile",
            n_resamples=100_000,
            random_state=np.random.default_rng(1),
        ).confidence_interval
        spread = np.std(means) / np.sqrt(ITEMS)
        assert graded.ci_low == pytest.approx(theirs.low, abs=0.25 * spread)
        assert graded.ci_high == pytest.approx(theirs.high, abs=0.25 * spread)
        passes = [
            recorded[variant.name][(i, r)]["score"] >= 0.5
            for i in range(1, ITEMS + 1)
            for r in range(REPEATS)
        ]
        assert graded.pass_rate == pytest.approx(np.mean(passes))
        costs = per_item(recorded, variant.name, "cost")
        assert variant.cost_per_item == pytest.approx(costs.mean())
        latencies = [recorded[variant.name][c]["latency"] for c in recorded[variant.name]]
        assert variant.p50_latency_ms == pytest.approx(np.percentile(latencies, 50))
        assert variant.p95_latency_ms == pytest.approx(np.percentile(latencies, 95))
        assert variant.error_rate == 0.0


def test_pass_at_k_and_pass_hat_k_match_enumeration(home: Path, recorded: dict) -> None:
    report = experiment_report("stat-1", home)
    for variant in report.variants:
        grid = recorded[variant.name]
        at, hat = [], []
        for item in range(1, ITEMS + 1):
            passed = [bool(grid[(item, r)]["passed"]) for r in range(REPEATS)]
            at.append(any(passed))
            hat.append(all(passed))
        exact = variant.scores["exact"]
        assert exact.pass_at_k == pytest.approx(np.mean(at))  # k = all repeats
        assert exact.pass_hat_k == pytest.approx(np.mean(hat))


def test_paired_differences_exact_p_values_and_holm(home: Path, recorded: dict) -> None:
    report = experiment_report("stat-1", home)
    raw = {}
    for variant in report.variants[1:]:
        for scorer, key in (("graded", "score"), ("exact", "passed")):
            diffs = per_item(recorded, variant.name, key) - per_item(recorded, "base", key)
            change = variant.scores[scorer].vs_baseline
            assert change is not None and change.items == ITEMS
            assert change.diff == pytest.approx(diffs.mean(), abs=1e-12)
            assert change.p_raw == pytest.approx(exact_sign_flip(diffs), abs=1e-12)
            raw[(variant.name, scorer)] = change
    order = sorted(raw, key=lambda k: raw[k].p_raw)
    running = 0.0
    for rank, key in enumerate(order):  # Holm step-down by hand
        running = max(running, min(1.0, (len(order) - rank) * raw[key].p_raw))
        assert raw[key].p_value == pytest.approx(running)
    base = report.variant("base")
    assert base is not None and base.scores["graded"].vs_baseline is None


def test_frontier_and_verdicts(home: Path, recorded: dict) -> None:
    report = experiment_report("stat-1", home)
    by_name = {v.name: v for v in report.variants}
    points = [(v.cost_per_item, v.scores["graded"].mean) for v in report.variants]
    for variant, (cost, score) in zip(report.variants, points, strict=True):
        beaten = any(c <= cost and s >= score and (c < cost or s > score) for c, s in points)
        assert variant.pareto == (not beaten)
    assert by_name["worse"].decision.startswith("keep the baseline (graded")
    assert by_name["cheap"].decision.startswith("inconclusive")  # 12 items: interval too wide
    assert "cost -" in by_name["cheap"].verdict and "on the frontier" in by_name["cheap"].verdict
    assert by_name["base"].decision == "baseline"


def test_the_renders_carry_the_figures(home: Path, recorded: dict) -> None:
    report = experiment_report("stat-1", home, items_shown=5)
    text = render(report)
    assert "Experiment stat (stat-1)" in text and "Verdicts" in text
    for variant in report.variants:
        assert variant.verdict in text
    assert len(report.items) == 5 and "Items, where variants disagree first (5 of 12" in text
    spreads = [view.disagreement for view in report.items]
    assert spreads == sorted(spreads, reverse=True)
    csv = to_csv(report).splitlines()
    assert csv[0] == "section,variant,scorer,metric,value,ci_low,ci_high,p_value"
    assert any(line.startswith("vs_baseline,cheap,graded,mean,") for line in csv)
    page = experiment_html(report)
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == 3
    assert "https://" not in page.replace("http://www.w3.org", "")  # nothing to fetch
    table = experiment_charts.variant_table(report)
    assert list(table.variant) == ["base (baseline)", "cheap", "worse"]
    diffs = experiment_charts.differences(report)
    assert len(diffs) == 4 and set(diffs.reading) <= {"better", "worse", "neither"}


def test_an_experiment_without_cells_reports_nothing_done(home: Path) -> None:
    row = table_row(
        "experiments",
        experiment_id="empty-1",
        name="empty",
        workflow="wf",
        baseline="a",
        primary_scorer="s",
        variants='["a", "b"]',
        scorers='[{"name": "s", "type": "equals", "node": "x", "threshold": 1}]',
        items=3,
        repeats=1,
        cells=6,
        simulated=False,
        margin=0.05,
        created_at=START,
        status="running",
    )
    get_store(home).bulk_load({"experiments": arrow_table("experiments", [row])})
    report = experiment_report("empty", home)
    assert report.cells_done == 0 and report.items == []
    assert "No cell has finished yet." in render(report)
    assert json.loads(json.dumps(report.to_json()))["cells_done"] == 0

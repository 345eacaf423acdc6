"""Comparing two sets of runs: the bootstrap on known arrays, and `compare` on known runs
written to DuckDB, picked by tag, variant, workflow version and date range."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import write_rows

from core.analytics.compare import (
    MetricDelta,
    RunSet,
    bootstrap_delta,
    compare,
    load_sample,
    parse_tag,
    tag_values,
)
from core.analytics.spend import run_groups

DAY1 = datetime(2026, 3, 2, 9)
DAY2 = datetime(2026, 3, 9, 9)
RUNS = 40  # per set: enough for intervals tight enough to call a clear shift significant


# ----------------------------------------------------------------------------- bootstrap


def mean(resamples: np.ndarray) -> np.ndarray:
    """The statistic compare uses for cost per run: one mean per resample."""
    return resamples.mean(axis=1)


def test_identical_samples_give_an_interval_around_zero() -> None:
    values = np.random.default_rng(1).lognormal(0, 0.5, 200)
    delta, low, high = bootstrap_delta(values, values.copy(), mean)
    assert delta == 0
    assert low < 0 < high


@pytest.mark.parametrize("shift", [5.0, -5.0])
def test_a_clear_shift_is_significant_with_its_sign(shift: float) -> None:
    a = np.random.default_rng(2).normal(100, 2, 150)
    b = a + shift
    delta, low, high = bootstrap_delta(a, b, mean)
    assert delta == pytest.approx(shift)
    assert low <= delta <= high
    assert (low > 0) if shift > 0 else (high < 0)


def test_the_seed_fixes_the_interval() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 3, 60), rng.normal(11, 3, 60)
    assert bootstrap_delta(a, b, mean, seed=7) == bootstrap_delta(a, b, mean, seed=7)
    assert bootstrap_delta(a, b, mean, seed=7) != bootstrap_delta(a, b, mean, seed=8)


def test_metric_delta_reads_significance_and_relative_change() -> None:
    cheaper = MetricDelta("cost per run", "usd", a=0.2, b=0.1, delta=-0.1, low=-0.12, high=-0.08)
    unclear = MetricDelta("p50 latency", "ms", a=100, b=104, delta=4, low=-3, high=11)
    assert cheaper.significant and cheaper.relative == pytest.approx(-0.5)
    assert not unclear.significant
    assert MetricDelta("success rate", "share", 0, 0.1, 0.1, 0.05, 0.15).relative is None


# ----------------------------------------------------------------------------- compare


def run(run_id: str, at: datetime, cost: float | None, duration: float, **extra: Any) -> dict:
    return {
        "run_id": run_id,
        "workflow": "digest",
        "workflow_hash": "v1",
        "started_at": at,
        "finished_at": at + timedelta(milliseconds=duration),
        "duration_ms": duration,
        "status": "success",
        "cost_usd": cost,
        "simulated": False,
    } | extra


def write_runs(home: Path, rows: list[dict]) -> None:
    tagged = [row | {"tags": json.dumps(row["tags"])} if row.get("tags") else row for row in rows]
    write_rows(home, runs=tagged)


@pytest.fixture
def two_versions(home: Path) -> Path:
    """`digest` v1 (the week of DAY1, team=search, variant control) costs $0.10 and takes
    1 s a run; v2 (the week of DAY2, team=support, variant candidate) costs $0.05, takes 2 s
    and fails one run in four. Plus rows that no set may pick up: a running run, a
    simulated run and a run of another workflow, all on DAY2 with v2's labels."""
    rng = np.random.default_rng(5)
    rows = []
    for i in range(RUNS):
        noise = rng.normal(1, 0.02)
        rows.append(
            run(
                f"a{i}",
                DAY1 + timedelta(hours=i),
                0.10 * noise,
                1000 * noise,
                tags={"team": "search"},
                variant="control",
                experiment="e1",
            )
        )
        rows.append(
            run(
                f"b{i}",
                DAY2 + timedelta(hours=i),
                0.05 * noise,
                2000 * noise,
                workflow_hash="v2",
                tags={"team": "support"},
                variant="candidate",
                experiment="e1",
                status="failed" if i % 4 == 0 else "success",
            )
        )
    stray = {"workflow_hash": "v2", "tags": {"team": "support"}, "variant": "candidate"}
    rows.append(run("running", DAY2, 9.0, 9000, status="running", **stray))
    rows.append(run("sim", DAY2, 9.0, 9000, simulated=True, **stray))
    rows.append(run("other", DAY2, 9.0, 9000, workflow="faq", **stray))
    write_runs(home, rows)
    return home


def pair(a: dict[str, Any], b: dict[str, Any]) -> tuple[RunSet, RunSet]:
    """Real runs of digest, narrowed by `a` and `b`; the simulated run would count too."""
    return (
        RunSet("A", "digest", simulated=False, **a),
        RunSet("B", "digest", simulated=False, **b),
    )


SETS = {
    "tag": pair({"tag": ("team", "search")}, {"tag": ("team", "support")}),
    "variant": pair({"variant": "control"}, {"variant": "candidate"}),
    "hash": pair({"workflow_hash": "v1"}, {"workflow_hash": "v2"}),
    "dates": pair(
        {"start": DAY1, "end": DAY1 + timedelta(days=7)},
        {"start": DAY2, "end": DAY2 + timedelta(days=7)},
    ),
}


@pytest.mark.parametrize("how", list(SETS))
def test_compare_finds_the_sets_and_the_differences(two_versions: Path, how: str) -> None:
    result = compare(*SETS[how], two_versions)
    assert (result.runs_a, result.runs_b) == (RUNS, RUNS)
    assert result.notes == []
    metrics = {m.metric: m for m in result.metrics}
    assert list(metrics) == ["cost per run", "p50 latency", "p95 latency", "success rate"]
    cost, p50, success = metrics["cost per run"], metrics["p50 latency"], metrics["success rate"]
    assert cost.delta == pytest.approx(-0.05, rel=0.05) and cost.high < 0
    assert cost.relative == pytest.approx(-0.5, rel=0.05)
    assert p50.delta == pytest.approx(1000, rel=0.05) and p50.low > 0
    assert success.a == 1.0 and success.b == 0.75 and success.significant


def test_unset_fields_do_not_filter(two_versions: Path) -> None:
    everything = load_sample(RunSet("all"), two_versions)
    # Every finished run: both sets, the simulated run and the other workflow's run.
    assert everything.runs == 2 * RUNS + 2


def test_runs_without_a_price_count_but_have_no_cost(home: Path) -> None:
    write_runs(home, [run("p", DAY1, 0.1, 100), run("u", DAY1, None, 100)])
    sample = load_sample(RunSet("A", "digest"), home)
    assert sample.runs == 2 and list(sample.cost) == [0.1] and len(sample.duration) == 2


def test_too_few_runs_are_named_instead_of_compared(two_versions: Path) -> None:
    single = RunSet("A", "digest", start=DAY1, end=DAY1 + timedelta(minutes=30))
    result = compare(single, SETS["hash"][1], two_versions)
    assert result.runs_a == 1
    assert result.metrics == []
    assert len(result.notes) == 4
    assert all("too few runs" in note for note in result.notes)


def test_an_empty_set_compares_to_nothing(two_versions: Path) -> None:
    result = compare(RunSet("A", "nothing"), RunSet("B", "digest"), two_versions)
    assert result.runs_a == 0 and result.metrics == [] and len(result.notes) == 4


def test_tags_and_groups_offer_what_the_sets_can_name(two_versions: Path) -> None:
    assert tag_values(two_versions) == ["team=search", "team=support"]
    groups = run_groups(two_versions, "digest", simulated=False)
    assert [(v.workflow_hash, v.runs) for v in groups.versions] == [("v2", RUNS), ("v1", RUNS)]
    assert [(v.variant, v.runs) for v in groups.variants] == [
        ("candidate", RUNS),
        ("control", RUNS),
    ]
    assert groups.tags == [("team=search", RUNS), ("team=support", RUNS)]
    assert (groups.first_day, groups.last_day) == (
        DAY1.date(),
        (DAY2 + timedelta(hours=RUNS - 1)).date(),
    )


def test_parse_tag() -> None:
    assert parse_tag("team=search") == ("team", "search")
    assert parse_tag("note=a=b") == ("note", "a=b")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_tag("team")

"""For any set of runs, every report's total equals the sum of its breakdowns: runs crossing
midnight, real runs with simulated nodes, unpriced calls and cache hits included."""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import NOW, write_rows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.analytics.cost import cost_report
from core.analytics.cost_render import to_csv
from core.analytics.reprice import reprice

MIDNIGHT = datetime.combine(NOW.date(), datetime.min.time())
MODELS = ("gpt-4o", "gpt-4o-mini", "house-model")  # the last has no price

node_strategy = st.fixed_dictionaries(
    {
        "model": st.sampled_from(MODELS),
        "offset_min": st.integers(0, 40),  # after its run's start: may cross midnight
        "cost": st.floats(0.0001, 0.05),
        "cache_hit": st.booleans(),
        "simulated": st.booleans(),  # only used in mixed runs
        "workflow": st.sampled_from(("digest", "faq")),
    }
)
run_strategy = st.fixed_dictionaries(
    {
        # Minutes before the end of today: around the last two midnights.
        "start_min": st.integers(1, 3 * 24 * 60),
        "kind": st.sampled_from(("real", "simulated", "mixed")),
        "nodes": st.lists(node_strategy, min_size=1, max_size=4),
    }
)


def _rows(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Telemetry rows as the engine writes them: a node's cost is NULL without a price and
    $0 on a cache hit; a run's cost is its own kind of calls, its simulated calls apart."""
    run_rows, node_rows = [], []
    for index, run in enumerate(runs):
        run_id = f"r{index}"
        started = MIDNIGHT + timedelta(days=1, minutes=-run["start_min"])
        kinds = []
        for number, spec in enumerate(run["nodes"]):
            simulated = run["kind"] == "simulated" or (run["kind"] == "mixed" and spec["simulated"])
            priced = spec["model"] != "house-model"
            cost = 0.0 if spec["cache_hit"] else (spec["cost"] if priced else None)
            kinds.append((simulated, spec["cache_hit"], cost))
            node_rows.append(
                {
                    "run_id": run_id,
                    "node": f"n{number}",
                    "node_type": "llm",
                    "provider": "openai",
                    "model": spec["model"],
                    "started_at": started + timedelta(minutes=spec["offset_min"]),
                    "run_started_at": started,
                    "duration_ms": 1000.0,
                    "input_tokens": 1000,
                    "output_tokens": 100,
                    "cost_usd": cost,
                    "cache_hit": spec["cache_hit"],
                    "cache_enabled": spec["cache_hit"],
                    "attempts": 0 if spec["cache_hit"] else 1,
                    "status": "success",
                    "workflow": spec["workflow"],
                    "simulated": simulated,
                }
            )
        run_simulated = run["kind"] == "simulated"
        own = [c for sim, hit, c in kinds if sim == run_simulated and not hit]
        sims = [c for sim, hit, c in kinds if sim and not hit]
        run_rows.append(
            {
                "run_id": run_id,
                "workflow": run["nodes"][0]["workflow"],
                "started_at": started,
                "duration_ms": 1000.0,
                "status": "success",
                "simulated": run_simulated,
                "cost_usd": _total(own),
                "simulated_cost_usd": _total(sims) if sims else None,
            }
        )
    return run_rows, node_rows


def _total(costs: list[float | None]) -> float | None:
    priced = [c for c in costs if c is not None]
    return sum(priced) if priced or not costs else None


def _sum(items: list) -> float:
    return sum(item.cost_usd or 0.0 for item in items)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(runs=st.lists(run_strategy, min_size=1, max_size=10))
def test_every_total_is_the_sum_of_its_breakdowns(runs: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        run_rows, node_rows = _rows(runs)
        write_rows(home, run_rows, node_rows)
        for days in (1, 2, 3):
            report = cost_report(home, days=days)
            for section in report.sections:
                whole = section.node_cost_usd
                assert (section.runs.total_cost_usd or 0.0) == pytest.approx(whole)
                for items in (
                    section.by_day,
                    section.by_node,
                    section.by_model,
                    section.by_provider,
                    section.by_workflow,
                ):
                    assert _sum(items) == pytest.approx(whole)
                assert sum(b.calls for b in section.by_day) == section.calls
                assert sum(b.unpriced_calls for b in section.by_model) == section.unpriced_calls
            table = list(csv.DictReader(io.StringIO(to_csv(report))))
            for section in report.sections:
                name = "simulated" if section.simulated else "real"
                for dimension in ("provider", "model", "workflow", "node", "day"):
                    rows = [
                        r for r in table if r["section"] == name and r["dimension"] == dimension
                    ]
                    total = sum(float(r["cost_usd"] or 0) for r in rows)
                    assert total == pytest.approx(section.node_cost_usd)
            [swap] = reprice(home, swaps=[("gpt-4o", "gpt-4o-mini")], days=days).swaps
            for part in swap.sections:
                assert part.total.calls == sum(r.calls for r in part.by_node)
                assert (part.total.actual_cost_usd or 0.0) == pytest.approx(
                    sum(r.actual_cost_usd or 0.0 for r in part.by_node)
                )
                assert part.total.repriced_cost_usd == pytest.approx(
                    sum(r.repriced_cost_usd for r in part.by_node)
                )

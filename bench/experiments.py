"""Experiment speed: running many cells at once, and reporting on many scored cells.

1. 1,000 items x 3 variants of a 3-node simulated chain (50 ms per node) at concurrency 100:
   the wall time against the ideal (cells / concurrency x 150 ms) and against the same
   schedule of bare asyncio sleeps measured in this run (the floor of this machine's loop).
2. `experiment report` (the SQL, the statistics, the per-item view) on 100,000 scored cells
   bulk-loaded in a few shapes, against the report's target of one second.

Prints figures, asserts nothing (targets: within 1.2x of ideal; the report under 1 s).

    python bench/experiments.py [--items 1000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.experiments.loader import load_experiment
from core.experiments.report import experiment_report
from core.experiments.runner import run_experiment
from core.telemetry import get_store
from core.telemetry.rows import arrow_table, table_row

NODE_MS = 50
NODES = 3
CONCURRENCY = 100
WORKFLOW = f"""\
workflow:
  name: bench_chain
  llm: {{provider: openai, model: gpt-4o-mini, max_output_tokens: 20,
        simulate: {{latency_ms: {NODE_MS}, output_tokens: 8}}}}
inputs:
  question: {{type: string, required: true}}
nodes:
  - name: draft
    prompt: "Draft an answer to {{inputs.question}}"
  - name: check
    prompt: "Check: {{draft}}"
  - name: answer
    prompt: "Answer with one word only: {{inputs.question}} given {{check}}"
"""
EXPERIMENT = f"""\
experiment: bench
workflow: chain.yaml
dataset: items.jsonl
concurrency: {CONCURRENCY}
variants:
  - name: mini
  - name: large
    workflow: {{llm: {{model: gpt-4.1}}}}
  - name: nano
    workflow: {{llm: {{model: gpt-4.1-nano}}}}
scorers:
  - name: exact
    type: equals
    node: answer
    expected: {{column: answer}}
  - name: fast
    type: max_latency_ms
    limit: 1000
"""


def write_experiment(folder: Path, items: int) -> Path:
    (folder / "chain.yaml").write_text(WORKFLOW)
    rows = [json.dumps({"question": f"question {i}", "answer": f"a{i % 7}"}) for i in range(items)]
    (folder / "items.jsonl").write_text("\n".join(rows) + "\n")
    path = folder / "bench.yaml"
    path.write_text(EXPERIMENT)
    return path


async def bare_schedule(cells: int) -> float:
    """The same cells as bare sleeps: `concurrency` workers, three 50 ms steps per cell."""
    queue = list(range(cells))

    async def worker() -> None:
        while queue:
            queue.pop()
            for _ in range(NODES):
                await asyncio.sleep(NODE_MS / 1000)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - start


def running(items: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-experiments-"))
    warm = Path(tempfile.mkdtemp(prefix="bench-warm-"))
    # Tokenizers and the price map load once per process: not the experiment's to pay.
    asyncio.run(
        run_experiment(load_experiment(write_experiment(warm, 3)), simulate=True, home=warm)
    )
    experiment = load_experiment(write_experiment(home, items))
    cells = experiment.cells
    ideal = -(-cells // CONCURRENCY) * NODES * NODE_MS / 1000
    floor = asyncio.run(bare_schedule(cells))
    start = time.perf_counter()
    outcome = asyncio.run(run_experiment(experiment, simulate=True, home=home))
    wall = time.perf_counter() - start
    flush = time.perf_counter()
    get_store(home).flush()
    flushed = time.perf_counter() - flush
    print(
        f"1. {items:,} items x {len(experiment.variants)} variants = {cells:,} cells of a "
        f"{NODES}-node chain ({NODE_MS} ms nodes), concurrency {CONCURRENCY}"
    )
    print(f"   status {outcome.status}, {outcome.cells_done:,} cells scored")
    print(f"   ideal             {ideal:7.2f} s")
    print(f"   bare sleeps       {floor:7.2f} s   ({floor / ideal:.2f}x ideal: the loop's floor)")
    print(
        f"   experiment        {wall:7.2f} s   ({wall / ideal:.2f}x ideal, "
        f"{wall / floor:.2f}x bare sleeps; target 1.2x ideal)"
    )
    print(f"   then telemetry    {flushed:7.2f} s   to load what was still spooled")
    print(f"   engine+scoring    {(wall - floor) / cells * 1000:7.2f} ms per cell above the floor")


def scored_cells(home: Path, items: int, variants: int, repeats: int, scorers: int) -> str:
    """Bulk-loads one experiment's cells and scores (rows as the runner writes them)."""
    rng = np.random.default_rng(7)
    names = [f"v{i}" for i in range(variants)]
    experiment_id = f"bench-{items}x{variants}x{repeats}"
    scorer_names = [f"s{i}" for i in range(scorers)]
    experiment = table_row(
        "experiments",
        experiment_id=experiment_id,
        name=experiment_id,
        workflow="bench_chain",
        baseline="v0",
        primary_scorer="s0",
        variants=json.dumps(names),
        scorers=json.dumps(
            [
                {"name": s, "type": "equals", "node": "answer", "threshold": 1.0}
                for s in scorer_names
            ]
        ),
        items=items,
        repeats=repeats,
        cells=items * variants * repeats,
        simulated=True,
        margin=0.05,
        status="finished",
    )
    n = items * variants * repeats
    item = np.tile(np.repeat(np.arange(1, items + 1), repeats), variants)
    variant = np.repeat(np.array(names), items * repeats)
    repeat = np.tile(np.arange(repeats), items * variants)
    run_id = np.char.add("r", np.arange(n).astype(str))
    quality = 0.6 + 0.05 * (np.arange(n) // (items * repeats)) - 0.3 * rng.random(n)
    cells = {
        "experiment_id": [experiment_id] * n,
        "item": item,
        "variant": variant,
        "repeat": repeat,
        "run_id": run_id,
        "status": ["success"] * n,
        "cost_usd": 0.001 * (1 + rng.random(n)),
        "duration_ms": 500 + 500 * rng.random(n),
        "input_tokens": np.full(n, 100),
        "output_tokens": np.full(n, 20),
        "output": ['{"answer": "a"}'] * n,
    }
    scores = {
        "experiment_id": [],
        "run_id": [],
        "item": [],
        "variant": [],
        "repeat": [],
        "scorer": [],
        "score": [],
        "passed": [],
    }
    for name in scorer_names:
        passed = rng.random(n) < quality
        for key, values in (
            ("experiment_id", [experiment_id] * n),
            ("run_id", run_id),
            ("item", item),
            ("variant", variant),
            ("repeat", repeat),
            ("scorer", [name] * n),
            ("score", passed.astype(float)),
            ("passed", passed),
        ):
            scores[key] = [*scores[key], *values]
    import pyarrow as pa

    get_store(home).bulk_load(
        {
            "experiments": arrow_table("experiments", [experiment]),
            "experiment_cells": pa.table(cells),
            "experiment_scores": pa.table(scores),
        }
    )
    return experiment_id


def reporting(shapes: list[tuple[int, int, int]], scorers: int) -> None:
    print(f"2. experiment report on scored cells ({scorers} scorers; target under 1 s)")
    for items, variants, repeats in shapes:
        home = Path(tempfile.mkdtemp(prefix="bench-report-"))
        experiment_id = scored_cells(home, items, variants, repeats, scorers)
        experiment_report(experiment_id, home)  # warm: imports, the first connection
        times = []
        for _ in range(3):
            start = time.perf_counter()
            experiment_report(experiment_id, home)
            times.append(time.perf_counter() - start)
        cells = items * variants * repeats
        print(
            f"   {cells:,} cells = {items:,} items x {variants} variants x {repeats} repeats: "
            f"best {min(times):.2f} s, median {sorted(times)[1]:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="fewer items and shapes")
    args = parser.parse_args()
    running(100 if args.quick else args.items)
    shapes = [(2_000, 5, 10)] if args.quick else [(2_000, 5, 10), (10_000, 5, 2), (1_000, 4, 25)]
    reporting(shapes, scorers=2)


if __name__ == "__main__":
    main()

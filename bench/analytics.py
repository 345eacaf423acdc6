"""Analytics speed on a large history: every report and the estimate, timed.

Fills a fresh data folder with generated telemetry (default 1,000,000 runs and 10,000,000
node rows, over 30 days, 10 workflows of 10 nodes) through the telemetry store's bulk path,
then runs each report command as a user would and prints its time.
Targets: the fill under 2 minutes, each report and the estimate under 1 second.

    python bench/analytics.py [--runs 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.catalog.prices import PriceBook
from core.cli import main as cli
from core.settings import DB_FILE
from core.telemetry import get_store
from core.workflow import parse_workflow

NODES = 10
WORKFLOWS = 10
CHUNK_RUNS = 100_000
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-haiku-4-5"),
          ("google", "gemini-2.5-flash")]  # fmt: skip


def workflow_source(index: int) -> str:
    """A fan-out/fan-in of ten nodes: one planner, eight workers, one merger."""
    provider, model = MODELS[index % len(MODELS)]
    lines = [
        f"workflow: {{name: bench_{index}, llm: {{provider: {provider}, model: {model}}}}}",
        "inputs: {topic: {type: string, default: history}}",
        "nodes:",
        "  - {name: n0, prompt: 'Plan {inputs.topic}'}",
    ]
    lines += [f"  - {{name: n{i}, prompt: 'Part {i} of {{n0}}'}}" for i in range(1, NODES - 1)]
    merged = " ".join(f"{{n{i}}}" for i in range(1, NODES - 1))
    lines.append(f"  - {{name: n{NODES - 1}, prompt: 'Merge {merged}'}}")
    lines.append("edges:")
    for i in range(1, NODES - 1):
        lines.append(f"  - {{from: n0, to: n{i}}}")
        lines.append(f"  - {{from: n{i}, to: n{NODES - 1}}}")
    return "\n".join(lines) + "\n"


def chunk(first: int, count: int, rng: np.random.Generator, hashes: list[str]) -> dict:
    """`count` runs from run number `first`, as Arrow tables for the bulk path."""
    now = datetime.now(UTC).replace(tzinfo=None)
    runs = np.arange(first, first + count)
    run_ids = np.array([f"bench{r:08d}" for r in runs], dtype=object)
    workflow = runs % WORKFLOWS
    started = np.datetime64(now - timedelta(days=30), "us") + (
        rng.uniform(0, 30 * 86400e6, count).astype("timedelta64[us]")
    )
    simulated = rng.random(count) < 0.3
    model_index = workflow % len(MODELS)
    prices = PriceBook()
    per_in = np.array([prices.price(p, m).input_per_token for p, m in MODELS])
    per_out = np.array([prices.price(p, m).output_per_token for p, m in MODELS])

    size = count * NODES
    node_duration = rng.lognormal(np.log(1500), 0.4, size).reshape(count, NODES)
    tokens_in = rng.integers(50, 3000, size).reshape(count, NODES)
    tokens_out = rng.integers(20, 900, size).reshape(count, NODES)
    hit = (rng.random(size) < 0.1).reshape(count, NODES)
    node_status = np.where(rng.random(size) < 0.02, "failed", "success").reshape(count, NODES)
    full_cost = (
        tokens_in * per_in[model_index][:, None] + tokens_out * per_out[model_index][:, None]
    )
    cost = np.where(hit, 0.0, full_cost)
    offsets = np.zeros((count, NODES))
    offsets[:, 1:-1] = node_duration[:, :1]
    offsets[:, -1] = node_duration[:, 0] + node_duration[:, 1:-1].max(axis=1)
    wall = offsets[:, -1] + node_duration[:, -1]
    run_status = np.where((node_status == "failed").any(axis=1), "failed", "success")

    starts = started[:, None] + (offsets * 1000).astype("timedelta64[us]")
    node_names = np.tile(np.array([f"n{i}" for i in range(NODES)], dtype=object), count)
    request = np.array(hashes, dtype=object)[rng.integers(0, len(hashes), size)]
    runs_table = pa.table(
        {
            "run_id": run_ids,
            "workflow": np.array([f"bench_{w}" for w in workflow], dtype=object),
            "workflow_hash": np.array([f"hash{w}" for w in workflow], dtype=object),
            "started_at": started,
            "finished_at": started + (wall * 1000).astype("timedelta64[us]"),
            "duration_ms": wall,
            "status": run_status.astype(object),
            "input_tokens": tokens_in.sum(axis=1),
            "output_tokens": tokens_out.sum(axis=1),
            "cost_usd": cost.sum(axis=1),
            "simulated": simulated,
            "cache_hits": hit.sum(axis=1),
            "saved_cost_usd": np.where(hit, full_cost, 0.0).sum(axis=1),
            "node_count": np.full(count, NODES),
        }
    )
    nodes_table = pa.table(
        {
            "run_id": np.repeat(run_ids, NODES),
            "node": node_names,
            "node_type": np.full(size, "llm", dtype=object),
            "provider": np.repeat(
                np.array([p for p, _ in MODELS], dtype=object)[model_index], NODES
            ),
            "model": np.repeat(np.array([m for _, m in MODELS], dtype=object)[model_index], NODES),
            "started_at": starts.reshape(size),
            "finished_at": (starts + (node_duration * 1000).astype("timedelta64[us]")).reshape(
                size
            ),
            "duration_ms": node_duration.reshape(size),
            "input_tokens": np.where(hit, 0, tokens_in).reshape(size),
            "output_tokens": np.where(hit, 0, tokens_out).reshape(size),
            "cost_usd": cost.reshape(size),
            "cache_hit": hit.reshape(size),
            "cache_enabled": np.ones(size, dtype=bool),
            "saved_cost_usd": pa.array(full_cost.reshape(size), mask=~hit.reshape(size)),
            "attempts": np.where(hit, 0, 1).reshape(size),
            "status": node_status.reshape(size).astype(object),
            "workflow": np.repeat(np.array([f"bench_{w}" for w in workflow], dtype=object), NODES),
            "workflow_hash": np.repeat(
                np.array([f"hash{w}" for w in workflow], dtype=object), NODES
            ),
            "simulated": np.repeat(simulated, NODES),
            "request_hash": request,
        }
    )
    return {"runs": runs_table, "node_runs": nodes_table}


def fill(home: Path, total_runs: int) -> float:
    store = get_store(home)
    store.query("SELECT 1")
    sources = [workflow_source(i) for i in range(WORKFLOWS)]
    store.bulk_load(
        {
            "workflows": pa.table(
                {
                    "workflow_hash": [f"hash{i}" for i in range(WORKFLOWS)],
                    "workflow": [f"bench_{i}" for i in range(WORKFLOWS)],
                    "workflow_file": [f"bench_{i}.yaml" for i in range(WORKFLOWS)],
                    "source": sources,
                    "first_seen": [datetime.now(UTC).replace(tzinfo=None)] * WORKFLOWS,
                }
            )
        }
    )
    rng = np.random.default_rng(7)
    hashes = [f"req{i:06d}" for i in range(200_000)]
    start = time.perf_counter()
    for first in range(0, total_runs, CHUNK_RUNS):
        store.bulk_load(chunk(first, min(CHUNK_RUNS, total_runs - first), rng, hashes))
        done = min(first + CHUNK_RUNS, total_runs)
        print(f"\r  filled {done:,} runs / {done * NODES:,} node rows", end="", flush=True)
    print()
    return time.perf_counter() - start


def timed(arguments: list[str], repeats: int = 3) -> tuple[float, int]:
    """Median seconds of a CLI command run in this process, and its exit code."""
    times, code = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(arguments)
        times.append(time.perf_counter() - start)
    return statistics.median(times), code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    total = parser.parse_args().runs
    home = Path(tempfile.mkdtemp(prefix="bench-analytics-"))
    os.environ["CONFIGURABLE_AGENTS_HOME"] = str(home)
    print(f"analytics benchmark: {total:,} runs, {total * NODES:,} node rows in {home}")
    seconds = fill(home, total)
    size = (home / DB_FILE).stat().st_size / 2**20
    print(
        f"  fill through the bulk path: {seconds:.1f} s (target < 120 s), database {size:,.0f} MB"
    )

    workflow_file = home / "bench_0.yaml"
    workflow_file.write_text(workflow_source(0))
    parse_workflow(workflow_file.read_text())  # the estimate below must see a valid file
    run_id = get_store(home).query("SELECT max(run_id) FROM runs WHERE workflow = 'bench_0'")[0][0]
    commands = {
        "estimate (run --dry-run --estimate-cost)": [
            "run", str(workflow_file), "--dry-run", "--estimate-cost"
        ],
        "profile-report --workflow bench_0 --last 20": ["profile-report", "-w", "bench_0"],
        "profile-report --run ID": ["profile-report", "--run", run_id],
        "cost-report --days 7": ["cost-report", "--days", "7"],
        "cost-report --days 30 --workflow bench_3": [
            "cost-report", "--days", "30", "-w", "bench_3"
        ],
        "cost-report --days 30 --format csv": ["cost-report", "--days", "30", "--format", "csv"],
        "reprice --model gpt-4o=gpt-4o-mini --days 30": [
            "reprice", "--model", "gpt-4o=gpt-4o-mini", "--days", "30"
        ],
        "check --days 7": ["check", "--days", "7"],
        "check --workflow bench_1 --days 30": ["check", "-w", "bench_1", "--days", "30"],
    }  # fmt: skip
    worst = 0.0
    for label, arguments in commands.items():
        seconds, code = timed(arguments)
        worst = max(worst, seconds)
        print(f"  {label:<48} {seconds * 1000:8.0f} ms  (exit {code})")
    print(f"  slowest: {worst * 1000:.0f} ms (target < 1,000 ms each)")


if __name__ == "__main__":
    main()

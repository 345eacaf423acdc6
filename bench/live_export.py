"""Live OTLP export: what `LiveTraceExporter.export_run` costs the thread that calls it.

The engine's export thread calls it once per finished run (core.exporters.handoff), so this
is the CPU live export takes per node, off the run's own thread. It times building the
spans and queueing them on the SDK's BatchSpanProcessor for
10,000 node rows (1,000 runs of 10 nodes), with the processor's worker kept idle so only
the caller's work is measured; the sending happens later on the SDK's own thread. Prints
figures, never asserts them. Needs the `otel` extra.

    python bench/live_export.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RUNS, NODES = 1_000, 10
# The worker wakes when a batch is full: one batch as large as everything keeps it asleep.
os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = str(RUNS * (NODES + 1) * 2)
os.environ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"] = os.environ["OTEL_BSP_MAX_QUEUE_SIZE"]
os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "600000"

from core.exporters.live import LiveTraceExporter  # noqa: E402
from core.exporters.otlp import SpanFactory  # noqa: E402


def rows(index: int) -> tuple[dict, list[dict], dict[str, tuple[str, ...]]]:
    """A run of NODES LLM nodes in a chain, shaped like the engine's rows."""
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=index)
    run_id = f"{index:032x}"
    run = {
        "run_id": run_id,
        "workflow": "bench",
        "workflow_hash": "0123456789abcdef",
        "started_at": start,
        "finished_at": start + timedelta(seconds=2),
        "status": "success",
        "input_tokens": 1000,
        "output_tokens": 2000,
        "cost_usd": 0.01,
        "simulated": True,
        "tags": '{"team": "bench"}',
        "unpriced_calls": 0,
        "cache_hits": 0,
        "saved_cost_usd": 0.0,
    }
    nodes = [
        {
            "run_id": run_id,
            "node": f"n{n}",
            "node_type": "llm",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "started_at": start + timedelta(milliseconds=100 * n),
            "finished_at": start + timedelta(milliseconds=100 * n + 90),
            "duration_ms": 90.0,
            "input_tokens": 100,
            "output_tokens": 200,
            "cost_usd": 0.001,
            "cache_hit": False,
            "saved_cost_usd": None,
            "attempts": 1,
            "status": "success",
            "error": None,
            "simulated": True,
            "queue_ms": 0.01,
        }
        for n in range(NODES)
    ]
    parents = {f"n{n}": ((f"n{n - 1}",) if n else ()) for n in range(NODES)}
    return run, nodes, parents


def main() -> None:
    work = [rows(i) for i in range(RUNS)]
    node_rows = RUNS * NODES

    factory = SpanFactory()
    build = []
    for _ in range(5):
        started = time.perf_counter()
        for run, nodes, parents in work:
            factory.for_run(run, nodes, parents)
        build.append(time.perf_counter() - started)

    # One exporter per repeat, all shut down at the end: a shut-down exporter's worker
    # sends what it holds, and that must not compete with the next measurement.
    full, exporters = [], []
    for _ in range(5):
        exporter = LiveTraceExporter("http://127.0.0.1:9/v1/traces")  # never reached here
        exporters.append(exporter)
        started = time.perf_counter()
        for run, nodes, parents in work:
            exporter.export_run(run, nodes, parents)
        full.append(time.perf_counter() - started)
    for exporter in exporters:
        exporter.shutdown(timeout=0)

    def per_node(seconds: list[float]) -> str:
        best, median = min(seconds), statistics.median(seconds)
        return f"best {best / node_rows * 1e6:.1f} µs, median {median / node_rows * 1e6:.1f} µs"

    print(f"{node_rows:,} node rows in {RUNS:,} runs (+1 run span each), 5 repeats")
    print(f"  build spans only        per node row: {per_node(build)}")
    print(f"  export_run (build+queue) per node row: {per_node(full)}")


if __name__ == "__main__":
    main()

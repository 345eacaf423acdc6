"""A separate process for the telemetry tests: real concurrency, real locks, real kills.

Usage: telemetry_worker.py MODE HOME [ARGS...]
  runs HOME PREFIX RUNS NODES FLUSH_EVERY   record whole runs, flushing now and then
  hang HOME RUN_ID NODES                    start a run, record nodes, then wait to be killed
  unfinished HOME RUN_ID                    start a run and exit normally without finishing it
  hold HOME SECONDS                         keep a write connection to the database open
  lockfile HOME SECONDS                     hold the store's lock file (telemetry.duckdb.lock)
  engine HOME RUNS                          run a 5-node simulated workflow RUNS times
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import time
from pathlib import Path

import duckdb

from core.settings import DB_FILE
from core.telemetry import get_store


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e6):06d}"


def node_row(run_id: str, index: int, t: float) -> dict:
    return {
        "run_id": run_id,
        "node": f"n{index}",
        "node_type": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "started_at": iso(t),
        "finished_at": iso(t + 0.5),
        "duration_ms": 500.0,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.001,
        "cache_hit": False,
        "attempts": 1,
        "status": "success",
    }


def record_runs(home: Path, prefix: str, runs: int, nodes: int, flush_every: int) -> None:
    store = get_store(home)
    for r in range(runs):
        run_id = f"{prefix}-{r}"
        t = time.time()
        store.run_started(
            {"run_id": run_id, "workflow": "wf", "started_at": iso(t), "status": "running"}
        )
        for n in range(nodes):
            store.node_finished(node_row(run_id, n, t))
        store.run_finished({"run_id": run_id, "status": "success", "finished_at": iso(t + 1)})
        if r % flush_every == flush_every - 1:
            # Mostly in the background, as the engine does, sometimes in the foreground.
            if r % (2 * flush_every):
                store.flush_soon()
            else:
                store.flush(timeout=10)
    if not store.flush(timeout=20):
        sys.exit("final flush failed")


def hang(home: Path, run_id: str, nodes: int) -> None:
    store = get_store(home)
    t = time.time()
    store.run_started(
        {"run_id": run_id, "workflow": "wf", "started_at": iso(t), "status": "running"}
    )
    store.node_finished(node_row(run_id, 0, t))
    store.flush()
    for n in range(1, nodes):
        store.node_finished({**node_row(run_id, n, t + n), "cost_usd": None if n == 2 else 0.001})
    # As if killed in the middle of writing one more line.
    os.write(store._writer.fd, b'{"event":"node","run_id":"' + run_id.encode())
    print("ready", flush=True)
    time.sleep(60)


def unfinished(home: Path, run_id: str) -> None:
    store = get_store(home)
    store.run_started({"run_id": run_id, "started_at": iso(time.time()), "status": "running"})


def hold(home: Path, seconds: float) -> None:
    con = duckdb.connect(str(home / DB_FILE))
    print("ready", flush=True)
    time.sleep(seconds)
    con.close()


def hold_lock_file(home: Path, seconds: float) -> None:
    fd = os.open(home / (DB_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("ready", flush=True)
    time.sleep(seconds)
    os.close(fd)


DIAMOND = """
workflow:
  name: stress
  llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0, output_tokens: 5}}
nodes:
  - {name: a, prompt: one}
  - {name: b, prompt: "two {a}"}
  - {name: c, prompt: "three {a}"}
  - {name: d, prompt: "four {b} {c}"}
  - {name: e, prompt: "five {d}"}
edges:
  - {from: a, to: b}
  - {from: a, to: c}
  - {from: b, to: d}
  - {from: c, to: d}
  - {from: d, to: e}
"""


def engine_runs(home: Path, runs: int) -> None:
    """As a script or a notebook runs workflows: each run flushes in the background, and
    run_workflow waits for its telemetry in the foreground."""
    from core import load_workflow, run_workflow

    workflow = load_workflow(DIAMOND)
    for _ in range(runs):
        result = run_workflow(workflow, {}, home=home, use_cache=False)
        if result.status != "success":
            sys.exit(f"run failed: {result.error}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    mode, home, *args = sys.argv[1:]
    home_path = Path(home)
    if mode == "runs":
        record_runs(home_path, args[0], int(args[1]), int(args[2]), int(args[3]))
    elif mode == "hang":
        hang(home_path, args[0], int(args[1]))
    elif mode == "unfinished":
        unfinished(home_path, args[0])
    elif mode == "hold":
        hold(home_path, float(args[0]))
    elif mode == "lockfile":
        hold_lock_file(home_path, float(args[0]))
    elif mode == "engine":
        engine_runs(home_path, int(args[0]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

"""Batch throughput: rows per second on the local executor and on Ray with 1 and 2 workers,
Ray's overhead per row, the driver's peak memory, and the ceiling every executor shares: the
rate at which the driver loads chunks of telemetry into DuckDB (one writer).

Two shapes of a 3-node simulated chain:
- `io`: 20 ms per node, short prompts (time spent waiting, as with a real provider);
- `cpu`: no wait, long prompts (token counting and templating: the loop itself is the limit).

Each measurement runs in a process of its own (its peak RSS is the driver's), on warm workers:
Ray's start and each worker's first imports are timed apart. Prints figures, asserts nothing.

    python bench/scale.py [--rows 20000] [--shapes io,cpu] [--concurrency 100] [--ingest]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORKFLOW = """\
workflow:
  name: scale_{shape}
  llm: {{provider: simulated, model: gpt-4o-mini, max_output_tokens: 20,
        simulate: {{latency_ms: {ms}, output_tokens: 8}}}}
inputs:
  text: {{type: string, required: true}}
nodes:
  - name: read
    prompt: "Read: {{inputs.text}}"
  - name: judge
    prompt: "Judge {{read}} against: {{inputs.text}}"
  - name: answer
    prompt: "Answer from {{judge}} and {{read}}, given: {{inputs.text}}"
"""
SHAPES = {"io": (20, 12), "cpu": (0, 1500)}  # node latency (ms), words per row's text
WORDS = ["cost", "latency", "token", "budget", "cache", "node", "graph", "model", "prompt", "reply"]
# The chunk the Ray runs above use: 2 workers at concurrency 100 (executors.chunk_size).
INGEST_CHUNK = 200


def _write_inputs(folder: Path, shape: str, rows: int) -> tuple[Path, Path]:
    ms, words = SHAPES[shape]
    wf = folder / f"{shape}.yaml"
    wf.write_text(WORKFLOW.format(shape=shape, ms=ms))
    dataset = folder / f"{shape}-{rows}.jsonl"
    with dataset.open("w") as f:
        for n in range(rows):
            text = " ".join(WORDS[(n + i) % len(WORDS)] for i in range(words))
            f.write(json.dumps({"text": f"row {n}: {text}"}) + "\n")
    return wf, dataset


def measure(shape: str, executor: str, workers: int, rows: int, concurrency: int) -> dict:
    """One measurement, in this process: a warm-up batch, then the timed one."""
    from core.batch.runner import BatchOptions, load_batch, run_batch

    folder = Path(tempfile.mkdtemp(prefix="scale-"))
    home = folder / "home"
    wf, dataset = _write_inputs(folder, shape, rows)
    warm_wf, warm_dataset = _write_inputs(_mkdir(folder / "warm"), shape, max(20, 10 * workers))
    options = BatchOptions(executor=executor, workers=workers, concurrency=concurrency)
    ray_executor = None
    start_s = 0.0
    if executor == "ray":
        from core.executors.ray_executor import RayExecutor

        ray_executor = RayExecutor(workers=workers)
        ray_executor.start()
        start_s = ray_executor.start_seconds
    clock = time.perf_counter()
    run_batch(
        load_batch(str(warm_wf), str(warm_dataset)), options, home=home, ray_executor=ray_executor
    )
    warm_s = time.perf_counter() - clock
    batch = load_batch(str(wf), str(dataset))
    clock = time.perf_counter()
    outcome = run_batch(batch, options, home=home, ray_executor=ray_executor)
    seconds = time.perf_counter() - clock
    if ray_executor is not None:
        ray_executor.close()
    assert outcome.rows_done == rows, outcome
    return {
        "rows_per_s": rows / seconds,
        "seconds": seconds,
        "start_s": start_s,
        "warm_s": warm_s,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def measure_ingest(rows: int) -> dict:
    """Rows per second the driver loads as Ray chunks (`record_segments`) of INGEST_CHUNK rows'
    runs, node rows and batch rows, one chunk or ten per transaction, into a fresh database."""
    import asyncio

    import orjson

    from core.batch.records import row_lines
    from core.batch.runner import load_batch
    from core.executors.jobs import Job
    from core.executors.local import run_rows
    from core.telemetry import get_store

    folder = Path(tempfile.mkdtemp(prefix="ingest-"))
    wf, dataset = _write_inputs(folder, "io", INGEST_CHUNK)
    batch = load_batch(str(wf), str(dataset))
    job = Job("ingest", batch.workflow.source, str(wf), simulate=True, concurrency=200)
    worker_home = folder / "worker"
    store = get_store(worker_home)
    store.capture()
    results: list = []
    asyncio.run(
        run_rows(batch.workflow, job, batch.rows, home=worker_home, on_result=results.append)
    )
    chunk = [orjson.loads(line) for line in store.take_captured().splitlines()]
    chunk_rows = row_lines("ingest", results).splitlines()
    figures = {}
    for together in (1, 10):  # chunks per transaction: one at a time, or ten back at once
        driver = get_store(folder / f"driver-{together}")
        driver.query("SELECT 1")  # the schema exists before the clock starts
        chunks = max(together, rows // INGEST_CHUNK // together * together)
        clock = time.perf_counter()
        for first in range(0, chunks, together):
            driver.record_segments(
                [
                    (f"ingest/{n}", _copy(chunk, n) + b"\n".join(chunk_rows) + b"\n")
                    for n in range(first, first + together)
                ]
            )
        figures[str(together)] = chunks * INGEST_CHUNK / (time.perf_counter() - clock)
    return {"rows_per_s": figures, "chunks": chunks}


def _copy(events: list[dict], n: int) -> bytes:
    """A chunk's events with run ids of their own (copy n)."""
    import orjson

    return b"".join(
        orjson.dumps({**e, "run_id": f"{e['run_id']}-{n}"} if "run_id" in e else e) + b"\n"
        for e in events
    )


def _child(args: list[str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/scale.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--shapes", default="io,cpu")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument(
        "--one", nargs=3, metavar=("SHAPE", "EXECUTOR", "WORKERS"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--ingest", action="store_true", help="measure only the driver's ingest ceiling"
    )
    args = parser.parse_args()
    if args.one:
        shape, executor, workers = args.one
        print(json.dumps(measure(shape, executor, int(workers), args.rows, args.concurrency)))
        return
    if args.ingest:
        print(json.dumps(measure_ingest(args.rows)))
        return
    print(
        f"{args.rows:,} rows, concurrency {args.concurrency} per worker, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    for shape in args.shapes.split(","):
        ms, words = SHAPES[shape]
        print(f"\n{shape}: 3 nodes of {ms} ms, {words:,}-word inputs")
        figures = {}
        for executor, workers in (("local", 1), ("ray", 1), ("ray", 2)):
            common = ["--rows", str(args.rows), "--concurrency", str(args.concurrency)]
            found = _child(["--one", shape, executor, str(workers), *common])
            name = "local" if executor == "local" else f"ray x{workers}"
            figures[name] = found
            extra = (
                f"  (Ray start {found['start_s']:.1f} s, warm-up {found['warm_s']:.1f} s)"
                if executor == "ray"
                else f"  (warm-up {found['warm_s']:.1f} s)"
            )
            print(
                f"  {name:8} {found['rows_per_s']:8,.0f} rows/s  {found['seconds']:6.1f} s"
                f"  driver peak {found['peak_mb']:,.0f} MB{extra}"
            )
        overhead = 1000 / figures["ray x1"]["rows_per_s"] - 1000 / figures["local"]["rows_per_s"]
        print(f"  Ray overhead per row (x1 vs local): {overhead:+.3f} ms")
    ingest = _child(["--ingest", "--rows", str(args.rows)])["rows_per_s"]
    print(
        f"\ndriver ingest ceiling ({INGEST_CHUNK}-row chunks, 3 nodes a row): "
        f"{ingest['1']:,.0f} rows/s a chunk per transaction, {ingest['10']:,.0f} ten at once"
    )


if __name__ == "__main__":
    main()

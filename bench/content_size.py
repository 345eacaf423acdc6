"""Bytes of content storage (prompts, system texts, responses: docs/telemetry.md, "Content")
per 1,000 simulated runs of the example workflows the demo history runs.

The runs go through the real engine (simulated provider, response cache on, as the demo's
workflows are written), 1,000 in all, the workflows taking turns and their inputs drawn
from the demo's own values with the demo's skew towards the first. Printed: the texts as
sent and received, what the `content` table holds after deduplication and zlib, and the
size on disk of the two content tables copied alone into a fresh DuckDB file. Asserts
nothing.

    .venv/bin/python bench/content_size.py [--runs 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import arun_workflow, load_workflow
from core.demo.history import EXAMPLE_VALUES
from core.resources import EXAMPLE_WORKFLOWS
from core.settings import DB_FILE
from core.telemetry import get_store

WAVE = 100  # runs in flight at once


def _inputs(workflow, rng: random.Random) -> dict:
    values = {}
    for name in workflow.spec.inputs:
        pool = EXAMPLE_VALUES.get(name)
        if pool:  # others keep their defaults, as in the demo
            weights = [1 / (k + 1) for k in range(len(pool))]
            values[name] = rng.choices(pool, weights=weights)[0]
    return values


async def _run_all(home: Path, runs: int) -> float:
    rng = random.Random(7)
    workflows = [load_workflow(p) for p in sorted(EXAMPLE_WORKFLOWS.glob("*.yaml"))]
    start = time.perf_counter()
    for first in range(0, runs, WAVE):
        wave = [workflows[i % len(workflows)] for i in range(first, min(first + WAVE, runs))]
        await asyncio.gather(
            *(
                arun_workflow(w, _inputs(w, rng), simulate=True, home=home, tags={"bench": "1"})
                for w in wave
            )
        )
    return time.perf_counter() - start


def _on_disk(db: Path, folder: Path) -> int:
    """Bytes the content tables take in a DuckDB file of their own, beyond an empty one."""
    empty, alone = folder / "empty.duckdb", folder / "alone.duckdb"
    duckdb.connect(str(empty)).close()
    with duckdb.connect(str(alone)) as con:
        con.execute(f"ATTACH '{db}' AS src (READ_ONLY)")
        con.execute("CREATE TABLE content AS SELECT * FROM src.content")
        con.execute("CREATE TABLE node_content AS SELECT * FROM src.node_content")
        con.execute("DETACH src")
        con.execute("CHECKPOINT")
    return alone.stat().st_size - empty.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        seconds = asyncio.run(_run_all(home, runs))
        store = get_store(home)
        store.flush()
        with store.connect() as con:
            (done,) = con.execute("SELECT count(*) FROM runs").fetchone()
            calls, raw = con.execute(
                "SELECT count(*), sum(coalesce(p.chars, 0) + coalesce(s.chars, 0)"
                " + coalesce(r.chars, 0)) FROM node_content n"
                " LEFT JOIN content p ON p.content_hash = n.prompt_hash"
                " LEFT JOIN content s ON s.content_hash = n.system_hash"
                " LEFT JOIN content r ON r.content_hash = n.response_hash"
            ).fetchone()
            texts, stored_chars, packed = con.execute(
                "SELECT count(*), sum(chars), sum(octet_length(compressed)) FROM content"
            ).fetchone()
        disk = _on_disk(home / DB_FILE, Path(folder))
    per = 1000 / done
    print(f"runs: {done:,} simulated runs of the example workflows in {seconds:.1f} s")
    print(f"node calls with content: {calls:,}; distinct texts stored: {texts:,}")
    print(f"texts as sent and received: {raw * per / 1e6:.2f} M characters per 1,000 runs")
    print(f"after deduplication: {stored_chars * per / 1e6:.2f} M characters per 1,000 runs")
    print(f"compressed (content.compressed): {packed * per / 1e6:.2f} MB per 1,000 runs")
    print(f"on disk (content tables, own DuckDB file): {disk * per / 1e6:.2f} MB per 1,000 runs")


if __name__ == "__main__":
    main()

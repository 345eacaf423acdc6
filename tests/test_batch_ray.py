"""`batch --executor ray` on one local Ray instance shared by the module: rows run in chunks on
actors, each chunk's telemetry recorded once, even when a worker is killed mid-job and its
chunks run again; the command line joins an existing cluster with --ray-address."""

from __future__ import annotations

import json
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import TRIO_WORKFLOW, cli, quiz_experiment

from core.batch.runner import BatchOptions, BatchProgress, load_batch, run_batch
from core.telemetry import get_store

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One local Ray instance for the module (starting one costs seconds); its address."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def workers(cluster: str) -> Iterator[Any]:
    """Two actors, started (and warmed) once for the module's in-process jobs."""
    from core.executors.ray_executor import RayExecutor

    executor = RayExecutor(workers=2)
    executor.start()
    try:
        yield executor
    finally:
        executor.close()


def _files(folder: Path, rows: int, latency_ms: int) -> tuple[str, str]:
    wf = folder / "wf.yaml"
    wf.write_text(TRIO_WORKFLOW.replace("LATENCY", str(latency_ms)))
    dataset = folder / "rows.jsonl"
    dataset.write_text("".join(json.dumps({"topic": f"t{n}"}) + "\n" for n in range(rows)))
    return str(wf), str(dataset)


def _check_exactly_once(home: Path, out: Path, rows: int) -> None:
    """Every row once in the output, in order; one successful run per row in telemetry, each
    with its three node rows; one batch_rows line per row."""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["row"] for r in lines] == list(range(1, rows + 1))
    assert {r["status"] for r in lines} == {"success"}
    store = get_store(home)
    per_row = store.query(
        "SELECT CAST(json_extract_string(tags, '$.row') AS INTEGER), count(*) FROM runs"
        " GROUP BY ALL"
    )
    assert dict(per_row) == dict.fromkeys(range(1, rows + 1), 1)
    assert {r["run_id"] for r in lines} == {r for (r,) in store.query("SELECT run_id FROM runs")}
    assert store.query("SELECT count(*), count(DISTINCT run_id) FROM node_runs") == [
        (3 * rows, rows)
    ]
    assert store.query("SELECT sum(node_rows) FROM node_daily") == [(3 * rows,)]
    assert store.query("SELECT count(*), count(DISTINCT row) FROM batch_rows") == [(rows, rows)]


def test_a_worker_killed_mid_job_loses_and_doubles_nothing(
    workers: Any, home: Path, tmp_path: Path
) -> None:
    wf, dataset = _files(tmp_path, rows=40, latency_ms=100)
    out = tmp_path / "out.jsonl"
    options = BatchOptions(
        executor="ray", workers=2, concurrency=4, chunk_rows=4, simulate=True, output=out
    )
    pids: list[int] = []
    killed: list[int] = []

    def on_executor(executor: Any) -> None:
        pids.extend(executor.worker_pids())

    def on_progress(progress: BatchProgress) -> None:
        # The first chunk is back: both workers hold more, one of them dies now.
        if not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    outcome = run_batch(
        load_batch(wf, dataset),
        options,
        on_executor=on_executor,
        on_progress=on_progress,
        ray_executor=workers,
    )
    assert killed and outcome.status == "finished", outcome.error
    assert outcome.ray is not None and outcome.ray["chunks"] == 10
    _check_exactly_once(home, out, 40)
    # One ledger key per chunk, whatever ran twice.
    keys = get_store(home).query(
        "SELECT count(*) FROM telemetry_segments WHERE segment LIKE 'segment:%'"
    )
    assert keys == [(10,)]
    # The workers used data folders of their own: nothing of theirs is in the driver's.
    assert not (home / "cache").exists()


def test_an_experiment_runs_its_cells_on_ray_once_each(
    workers: Any, home: Path, tmp_path: Path
) -> None:
    from core.experiments.loader import load_experiment
    from core.experiments.ray_cells import run_experiment_on_ray
    from core.experiments.report import experiment_report

    experiment = load_experiment(str(quiz_experiment(tmp_path, repeats=1, rows=6)))
    outcome = run_experiment_on_ray(experiment, workers, simulate=True)
    assert outcome.status == "finished" and outcome.cells_done == 12, outcome.error
    store = get_store(home)
    assert store.query("SELECT count(*), count(DISTINCT run_id) FROM runs") == [(12, 12)]
    assert store.query(
        "SELECT count(*), count(DISTINCT (item, variant)) FROM experiment_cells"
    ) == [(12, 12)]
    assert store.query("SELECT count(*) FROM experiment_scores") == [(24,)]
    report = experiment_report(outcome.experiment_id, items_shown=0)
    assert {v.name for v in report.variants} == {"big", "small"}


def test_the_command_joins_a_running_cluster(cluster: str, home: Path, tmp_path: Path) -> None:
    # Last in the module: the experiment test closed the shared workers, so the cluster
    # has a CPU for this command's worker.
    wf, dataset = _files(tmp_path, rows=6, latency_ms=0)
    out = tmp_path / "out.parquet"
    done = cli(
        "batch",
        wf,
        "--dataset",
        dataset,
        "-o",
        str(out),
        "--executor",
        "ray",
        "--ray-address",
        cluster,
        "--workers",
        "1",
        "--simulate",
        "--json",
        home=home,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "finished" and outcome["rows_done"] == 6
    assert outcome["executor"] == "ray" and outcome["ray"]["workers"] == 1
    assert ray.is_initialized()  # the driver left the cluster it joined running
    import duckdb

    assert duckdb.sql(f"SELECT count(*) FROM '{out}'").fetchall() == [(6,)]

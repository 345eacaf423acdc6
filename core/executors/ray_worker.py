"""The body of a Ray actor: runs chunks of rows on its own event loop, in a private data
folder, and returns each chunk's results with the telemetry its runs recorded.

Nothing of the driver's data folder is used here: the response cache and memory live in a
temporary folder of this worker (diskcache over a network share is not safe, and another
machine cannot see the driver's disk anyway), and telemetry is captured in memory rather
than spooled, so that it reaches the driver's database only with the chunk's results. A
worker that dies mid-chunk takes the chunk's telemetry with it, and the chunk, run again,
is recorded once.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.executors.jobs import Job, RowResult, RowTask
from core.executors.local import run_rows
from core.telemetry import get_store
from core.workflow import Workflow
from core.workflow.loader import parse_workflow

WORKER_PREFIX = "configurable-agents-worker-"


class ChunkWorker:
    """One actor: a private data folder, a captured telemetry store, one event loop. What a
    chunk is, the job says: `run_chunk` hands its items to `job.run_chunk(worker, items)`
    (rows of a batch: `RowsJob`; an experiment's cells: core.experiments.ray_cells)."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix=WORKER_PREFIX))
        atexit.register(shutil.rmtree, self.home, True)
        self.store = get_store(self.home)
        self.store.capture()
        self.loop = asyncio.new_event_loop()
        self.workflows: dict[str, Workflow] = {}

    def pid(self) -> int:
        """This worker's process id (a fault test kills it)."""
        return os.getpid()

    def run_chunk(self, job: Any, items: list[Any]) -> Any:
        return job.run_chunk(self, items)

    def close(self) -> None:
        """Removes the private data folder (Ray kills actors without running atexit)."""
        shutil.rmtree(self.home, ignore_errors=True)


@dataclass(frozen=True)
class RowsJob:
    """A batch's chunks: rows of one workflow."""

    job: Job

    def run_chunk(self, worker: ChunkWorker, rows: list[RowTask]) -> tuple[list[RowResult], bytes]:
        """Every row of the chunk, `job.concurrency` at a time; then the spool lines of the
        chunk's runs, node rows and workflow version."""
        job = self.job
        workflow = worker.workflows.get(job.job_id)
        if workflow is None:
            workflow = parse_workflow(job.workflow_source, job.workflow_file)
            worker.workflows[job.job_id] = workflow
        results: list[RowResult] = []
        worker.loop.run_until_complete(
            run_rows(workflow, job, rows, home=worker.home, on_result=results.append)
        )
        return results, worker.store.take_captured()

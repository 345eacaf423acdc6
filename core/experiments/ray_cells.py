"""An experiment's cells on Ray: chunks of cells, in the runner's order, handed to actors
that run and score them as the local runner does, in a private data folder, with telemetry
captured; each chunk's runs, node rows, cells and scores are loaded by the driver in one
transaction, once per chunk key (docs/batch.md explains the executor).

A whole-experiment `max_cost` cannot be one budget across machines. It is cut into slices:
each chunk may spend one slice, and a chunk is handed out only while every slice that could
be in flight still fits in what is left, so the experiment never spends past `max_cost` and
may stop short of it by up to a quarter of what was left when it started.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.engine import arun_workflow
from core.executors.ray_executor import IN_FLIGHT, RayExecutor
from core.executors.ray_worker import ChunkWorker
from core.experiments.loader import Experiment
from core.experiments.records import RUNNING
from core.experiments.runner import (
    Cell,
    Execution,
    Outcome,
    Progress,
    close_execution,
    outcome_of,
    prepare_execution,
)
from core.experiments.scoring import CellScorer

# Slices per chunk that may be in flight: the larger, the closer to max_cost a run gets.
SLICES = 4


@dataclass(frozen=True)
class CellChunk:
    states: dict[Cell, str]  # each recorded cell's run status
    cost_usd: float  # runs and judges of the chunk
    stop_reason: str | None
    error: str | None
    lines: bytes  # the chunk's telemetry: runs, node rows, cells, scores


@dataclass(frozen=True)
class CellJob:
    """An experiment's chunks: cells, run and scored in a worker as the local runner does."""

    experiment: Experiment
    experiment_id: str
    simulate: bool
    slice_usd: float | None  # what one chunk may spend (None: no max_cost)

    def run_chunk(self, worker: ChunkWorker, cells: list[Cell]) -> CellChunk:
        spec = self.experiment.spec
        # The runner's budget is max_cost less what was spent: that leaves this chunk a slice.
        before = spec.max_cost - self.slice_usd if self.slice_usd is not None else 0.0
        execution = Execution(
            self.experiment,
            self.experiment_id,
            cells,
            {},
            before,
            simulate=self.simulate,
            home=worker.home,
            run=arun_workflow,
            scorer=CellScorer(self.experiment, arun_workflow),
            on_progress=None,
        )
        worker.loop.run_until_complete(execution.execute())
        return CellChunk(
            states=execution.states,
            cost_usd=execution.progress.cost_usd - before,
            stop_reason=execution.stop_reason,
            error=execution.error,
            lines=worker.store.take_captured(),
        )


def run_cells(execution: Execution, executor: RayExecutor) -> None:
    """Runs the execution's cells on the executor's actors, recording each chunk as it lands
    and keeping the execution's states, progress and stop reason as the local run would."""
    executor.start()
    spec = execution.experiment.spec
    cells = list(execution.queue)
    slots = len(executor.actors) * IN_FLIGHT * SLICES
    left = spec.max_cost - execution.progress.cost_usd if spec.max_cost is not None else None
    slice_usd = left / slots if left is not None else None
    job = CellJob(execution.experiment, execution.experiment_id, execution.simulate, slice_usd)

    def stop() -> bool:
        if execution.stop_reason is None and slice_usd is not None:
            in_flight = len(executor.actors) * IN_FLIGHT * slice_usd
            if slice_usd <= 0 or execution.progress.cost_usd + in_flight > spec.max_cost:
                execution.stop_reason = "budget_exceeded"
        return execution.stop_reason is not None

    def landed(chunks: list[tuple[str, CellChunk]]) -> None:
        execution.store.record_segments([(key, chunk.lines) for key, chunk in chunks])
        progress = execution.progress
        for _, chunk in chunks:
            execution.states.update(chunk.states)
            progress.done += len(chunk.states)
            progress.ran += len(chunk.states)
            progress.cost_usd += chunk.cost_usd
            if chunk.stop_reason is not None and execution.stop_reason is None:
                execution.stop_reason, execution.error = chunk.stop_reason, chunk.error
        if execution.on_progress is not None:
            execution.on_progress(progress)

    executor.run(
        execution.experiment_id,
        job,
        cells,
        landed,
        concurrency=spec.concurrency,
        stop=stop,
    )


def run_experiment_on_ray(
    experiment: Experiment,
    executor: RayExecutor,
    *,
    simulate: bool = False,
    home: str | Path | None = None,
    resume: str | None = None,
    rerun_failed: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> Outcome:
    """`run_experiment` with the cells run in chunks on Ray actors, each chunk's runs, cells
    and scores recorded once when it comes back. Blocking, so that
    Ctrl-C reaches it as KeyboardInterrupt: recorded, then re-raised. The executor is closed."""
    clock = time.monotonic()
    try:
        execution = prepare_execution(
            experiment, simulate, home, resume, rerun_failed, on_progress, arun_workflow
        )
        if on_start is not None:
            on_start(execution.experiment_id)
        status, error = RUNNING, None
        try:
            run_cells(execution, executor)
        except KeyboardInterrupt:
            status, error = "cancelled", "cancelled: the cells finished so far are kept"
            raise
        except Exception as exc:  # workers lost: the cells recorded so far are kept
            execution.stop_reason, execution.error = "failed", str(exc)
        finally:
            status, error = close_execution(execution, status, error)
    finally:
        executor.close()
    return outcome_of(execution, status, error, clock)

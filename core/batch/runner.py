"""Running a batch: the workflow once per dataset row, on the local executor (this process's
event loop) or the Ray executor (actors across cores and machines), every row's outcome
recorded as it lands.

On the local executor a row's line follows its run through the spool; on Ray a chunk's runs,
node rows and row lines arrive together and load as one segment, once per chunk key. Either
way a row with a line is done: `--resume` runs the others, so a batch stopped by Ctrl-C or a
killed process finishes with every row exactly once. A run that fails is a failed row, not
tried again.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.batch.output import write_output
from core.batch.records import (
    FINISHED,
    RUNNING,
    check_resumable,
    find_batch,
    record_batch,
    record_row,
    record_status,
    recorded_rows,
    row_lines,
    totals,
)
from core.engine.keys import check_keys
from core.errors import Problem
from core.executors.jobs import Job, RowResult, RowTask
from core.executors.local import run_rows
from core.experiments.dataset import check_rows, read_rows
from core.settings import data_home
from core.telemetry import get_store
from core.workflow import Workflow, load_workflow

EXECUTORS = ("local", "ray")
CANCELLED = "cancelled"


class DatasetError(ValueError):
    """The dataset cannot run: every problem, located in the dataset file."""

    def __init__(self, problems: list[Problem], filename: str) -> None:
        self.problems = sorted(problems)
        self.filename = filename
        super().__init__("\n".join(p.format(filename) for p in self.problems))


@dataclass(frozen=True)
class BatchInput:
    """A workflow and the dataset rows it runs on, checked."""

    workflow: Workflow
    dataset: Path
    rows: list[RowTask]
    dataset_hash: str


def load_batch(workflow_path: str, dataset_path: str) -> BatchInput:
    """Raises WorkflowError or DatasetError, each problem with its file, line and column."""
    workflow = load_workflow(workflow_path)
    path = Path(dataset_path)
    rows, _, problems = read_rows(path)
    items, wrong = check_rows(rows, workflow, from_text=path.suffix.lower() == ".csv")
    if problems or wrong:
        raise DatasetError(problems + wrong, dataset_path)
    if not items:
        raise DatasetError([Problem(1, 1, "the dataset has no rows")], dataset_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return BatchInput(workflow, path, [(i.number, i.inputs) for i in items], digest)


@dataclass
class BatchProgress:
    """What a progress bar shows: rows done of all, spend so far, this process's pace."""

    done: int
    total: int
    cost_usd: float
    simulated: bool
    to_run: int
    ran: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def eta_seconds(self) -> float | None:
        if not self.ran:
            return None
        return (time.monotonic() - self.started) / self.ran * (self.to_run - self.ran)

    def add(self, results: list[RowResult]) -> None:
        self.ran += len(results)
        self.done += len(results)
        self.cost_usd += sum(r.cost_usd or 0.0 for r in results)


@dataclass
class BatchOutcome:
    batch_id: str
    status: str
    rows: int
    rows_done: int
    rows_failed: int
    unpriced_rows: int
    cost_usd: float
    simulated: bool
    executor: str
    seconds: float
    output: str | None = None
    error: str | None = None
    ray: dict[str, Any] | None = None  # workers, chunks, reassigned, start_seconds

    def to_json(self) -> dict[str, Any]:
        """The `batch --json` document."""
        return {
            "batch_id": self.batch_id,
            "status": self.status,
            "rows": self.rows,
            "rows_done": self.rows_done,
            "rows_failed": self.rows_failed,
            "unpriced_rows": self.unpriced_rows,
            "cost_usd": round(self.cost_usd, 6),
            "simulated": self.simulated,
            "executor": self.executor,
            "seconds": round(self.seconds, 2),
            "output": self.output,
            "error": self.error,
            "ray": self.ray,
        }


@dataclass
class BatchOptions:
    executor: str = "local"
    concurrency: int = 16
    simulate: bool = False
    use_cache: bool = True
    resume: str | None = None
    output: Path | None = None
    ray_address: str | None = None
    workers: int | None = None  # Ray actors (default: one per CPU of the cluster)
    chunk_rows: int | None = None  # rows per Ray chunk (default: executors.chunk_size)


def run_batch(
    batch: BatchInput,
    options: BatchOptions,
    *,
    home: str | Path | None = None,
    on_start: Callable[[str, BatchProgress], None] | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_executor: Callable[[Any], None] | None = None,
    ray_executor: Any = None,
) -> BatchOutcome:
    """Runs the rows (the missing ones with `options.resume`) and writes the output file.
    Raises ProviderConfigError, MissingExtra, UnknownBatch or BatchConflict before anything
    runs; KeyboardInterrupt is recorded (status cancelled, output written) and re-raised.
    `on_executor` sees the Ray executor once its workers are up (a fault test kills one);
    `ray_executor` is one already started, left open afterwards (bench/scale.py times warm
    workers)."""
    folder = data_home(home)
    clock = time.monotonic()
    workflow = batch.workflow
    simulated = options.simulate or workflow.only_simulated
    store = get_store(folder)
    todo = batch.rows
    if options.resume is not None:
        record = find_batch(folder, options.resume)
        check_resumable(folder, record, workflow, batch.dataset_hash, simulated)
        batch_id = record.batch_id
        done = recorded_rows(folder, batch_id)
        todo = [row for row in batch.rows if row[0] not in done]
    if not simulated:
        check_keys(workflow)
    executor = ray_executor or _executor(options)  # MissingExtra before anything is recorded
    if options.resume is None:
        batch_id = f"{workflow.name}-{secrets.token_hex(3)}"
        record_batch(
            store,
            batch_id,
            workflow,
            str(batch.dataset),
            batch.dataset_hash,
            len(batch.rows),
            simulated,
            options.executor,
        )
    else:
        record_status(store, batch_id, RUNNING)
    done_before, _, cost_before, _ = totals(folder, batch_id) if options.resume else (0, 0, 0, 0)
    progress = BatchProgress(done_before, len(batch.rows), cost_before, simulated, len(todo))
    if on_start is not None:
        on_start(batch_id, progress)
    job = Job(
        job_id=batch_id,
        workflow_source=workflow.source,
        workflow_file=workflow.filename,
        simulate=options.simulate,
        use_cache=options.use_cache,
        concurrency=options.concurrency,
    )
    status, error, ray_stats = RUNNING, None, None
    try:
        if executor is None:
            asyncio.run(_run_local(workflow, job, todo, folder, progress, on_progress))
        else:
            executor.start()
            if on_executor is not None:
                on_executor(executor)
            ray_stats = _run_ray(executor, job, todo, folder, progress, on_progress, options)
    except KeyboardInterrupt:
        status, error = CANCELLED, f"cancelled: finish it with --resume {batch_id}"
        raise
    except Exception as exc:  # workers lost, or a bug: the rows recorded so far are kept
        status, error = "failed", f"{exc}; finish it with --resume {batch_id}"
    finally:
        if executor is not None and executor is not ray_executor:
            executor.close()
        if status == RUNNING:
            missing = len(todo) - progress.ran
            status = FINISHED if not missing else "interrupted"
            if missing:
                error = f"{missing} rows not run: finish them with --resume {batch_id}"
        record_status(store, batch_id, status, error)
        store.flush()
        if options.output is not None:
            write_output(folder, batch_id, options.output)
    rows_done, rows_failed, cost, unpriced = totals(folder, batch_id)
    return BatchOutcome(
        batch_id=batch_id,
        status=status,
        rows=len(batch.rows),
        rows_done=rows_done,
        rows_failed=rows_failed,
        unpriced_rows=unpriced,
        cost_usd=cost,
        simulated=simulated,
        executor=options.executor,
        seconds=time.monotonic() - clock,
        output=str(options.output) if options.output else None,
        error=error,
        ray=ray_stats.__dict__ if ray_stats else None,
    )


def _executor(options: BatchOptions) -> Any:
    """None for the local executor; the (not yet started) Ray executor otherwise."""
    if options.executor == "local":
        return None
    from core.executors.ray_executor import RayExecutor

    return RayExecutor(options.ray_address, options.workers)


async def _run_local(
    workflow: Workflow,
    job: Job,
    todo: list[RowTask],
    home: Path,
    progress: BatchProgress,
    on_progress: Callable[[BatchProgress], None] | None,
) -> None:
    store = get_store(home)

    def landed(result: RowResult) -> None:
        record_row(store, job.job_id, result)
        progress.add([result])
        if on_progress is not None:
            on_progress(progress)

    await run_rows(workflow, job, todo, home=home, on_result=landed)


def _run_ray(
    executor: Any,
    job: Job,
    todo: list[RowTask],
    home: Path,
    progress: BatchProgress,
    on_progress: Callable[[BatchProgress], None] | None,
    options: BatchOptions,
) -> Any:
    store = get_store(home)

    def landed(chunks: list[tuple[str, tuple[list[RowResult], bytes]]]) -> None:
        store.record_segments(
            [(key, lines + row_lines(job.job_id, results)) for key, (results, lines) in chunks]
        )
        for _, (results, _) in chunks:
            progress.add(results)
        if on_progress is not None:
            on_progress(progress)

    from core.executors.ray_worker import RowsJob

    return executor.run(
        job.job_id,
        RowsJob(job),
        todo,
        landed,
        concurrency=job.concurrency,
        size=options.chunk_rows,
    )

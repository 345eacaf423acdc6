"""The local executor: rows run `concurrency` at a time on this process's event loop, each an
ordinary run of the engine. The Ray executor's workers run their chunks through it too."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from core.engine import arun_workflow
from core.executors.jobs import Job, RowResult, RowTask
from core.workflow import Workflow


async def run_rows(
    workflow: Workflow,
    job: Job,
    rows: Sequence[RowTask],
    *,
    home: Path,
    on_result: Callable[[RowResult], None],
) -> None:
    """Runs every row once and hands each result to `on_result` as it finishes. A run that
    fails is a failed result, never retried here (the engine already retried its calls);
    cancellation propagates, and the rows then in flight have no result."""
    queue = deque(rows)

    async def worker() -> None:
        while queue:
            number, inputs = queue.popleft()
            on_result(await _run_row(workflow, job, number, inputs, home))

    await asyncio.gather(*(worker() for _ in range(min(job.concurrency, len(queue)))))


async def _run_row(
    workflow: Workflow, job: Job, number: int, inputs: dict, home: Path
) -> RowResult:
    tags = {**job.tags, "batch": job.job_id, "row": str(number)}
    try:
        result = await arun_workflow(
            workflow,
            inputs,
            simulate=job.simulate,
            use_cache=job.use_cache,
            tags=tags,
            home=home,
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # one bad row must not stop the others
        return RowResult.crashed(number, f"{type(exc).__name__}: {exc}", job.simulate)
    return RowResult.of_run(number, result)

"""What an executor is given and what it hands back, as plain data: a job must travel to
another machine (pickled by Ray), so it carries the workflow's text, never a path or an
object of this process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.engine.results import RunResult

# A row to run: its number in the dataset (1-based) and its checked inputs.
RowTask = tuple[int, dict[str, Any]]


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to run rows of one workflow. The text includes the
    workflow's `pricing:` overrides, so a worker prices calls as the driver would."""

    job_id: str
    workflow_source: str
    workflow_file: str
    simulate: bool = False
    use_cache: bool = True
    concurrency: int = 16  # runs at once in each worker
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RowResult:
    """One row's outcome: what the batch output and its `batch_rows` line hold."""

    row: int
    run_id: str | None
    status: str
    error: str | None
    cost_usd: float | None  # real spend (None: unpriced), or simulated in a simulated run
    simulated_cost_usd: float | None
    simulated: bool
    duration_ms: float
    outputs: dict[str, Any]

    @classmethod
    def of_run(cls, row: int, result: RunResult) -> RowResult:
        return cls(
            row=row,
            run_id=result.run_id,
            status=result.status,
            error=result.error,
            cost_usd=result.cost_usd,
            simulated_cost_usd=result.simulated_cost_usd,
            simulated=result.simulated,
            duration_ms=result.duration_ms,
            outputs=result.outputs,
        )

    @classmethod
    def crashed(cls, row: int, error: str, simulated: bool) -> RowResult:
        """A row whose run raised instead of returning: failed, and not tried again."""
        return cls(row, None, "failed", error, None, None, simulated, 0.0, {})

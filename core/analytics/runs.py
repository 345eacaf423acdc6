"""Finding recorded runs: the latest ones, of one workflow or of all, real or simulated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.analytics.filters import FINISHED_RUN, Where
from core.settings import data_home
from core.telemetry import get_store


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    workflow: str
    started_at: datetime
    status: str
    duration_ms: float | None
    cost_usd: float | None
    simulated: bool
    error: str | None


def recent_runs(
    home: str | Path | None,
    workflow: str | None = None,
    simulated: bool | None = None,
    limit: int = 100,
    finished: bool = True,
) -> list[RunSummary]:
    """The latest runs, newest first: of one workflow (for picking one to profile) or of
    all; `finished=False` includes runs still going (the home page's list)."""
    where = Where()
    if workflow is not None:
        where.add("workflow = ?", workflow)
    if finished:
        where.add(FINISHED_RUN)
    if simulated is not None:
        where.add("coalesce(simulated, false) = ?", simulated)
    rows = get_store(data_home(home)).query(
        "SELECT run_id, workflow, started_at, status, duration_ms, cost_usd,"
        f" coalesce(simulated, false), error FROM runs WHERE {where.sql}"
        " ORDER BY started_at DESC LIMIT ?",
        [*where.params, limit],
    )
    return [RunSummary(*row) for row in rows]

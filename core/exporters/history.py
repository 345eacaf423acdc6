"""Finished runs, their node rows and their DAG, read from the telemetry tables in batches.

Every query opens its own short connection (other processes write the same file), and runs
are read in pages ordered by start time, so exporting years of history holds neither a
connection nor the whole history at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from core.settings import data_home
from core.telemetry import NODE_RUNS_COLUMNS, RUNS_COLUMNS, get_store
from core.workflow import parse_workflow

BATCH_RUNS = 100
_FINISHED = "status IS DISTINCT FROM 'running' AND started_at IS NOT NULL"


@dataclass(frozen=True)
class RecordedRun:
    """One finished run: its `runs` row, its `node_runs` rows in start order, and the DAG
    parents of each node (empty when the workflow version's source is not recorded)."""

    run: dict[str, Any]
    nodes: list[dict[str, Any]]
    parents: Mapping[str, tuple[str, ...]]

    @property
    def run_id(self) -> str:
        return self.run["run_id"]


def count_runs(
    home: str | os.PathLike[str] | None = None,
    *,
    days: int | None = None,
    workflow: str | None = None,
    simulated: bool | None = None,
) -> int:
    """How many finished runs `recorded_runs` yields for the same filters."""
    where, params = _filters(days, workflow, simulated)
    store = get_store(data_home(home))
    ((total,),) = store.query(f"SELECT count(*) FROM runs WHERE {where}", params)
    return int(total)


def recorded_runs(
    home: str | os.PathLike[str] | None = None,
    *,
    days: int | None = None,
    workflow: str | None = None,
    simulated: bool | None = None,
    batch_size: int = BATCH_RUNS,
) -> Iterator[list[RecordedRun]]:
    """Finished runs, oldest first, in lists of up to `batch_size`.

    `days` keeps the last N whole UTC days (today so far and the N - 1 before it), as the
    reports count them; None keeps everything. `workflow` keeps one workflow's runs;
    `simulated` True or False only simulated or only real runs (None: both).
    """
    store = get_store(data_home(home))
    where, params = _filters(days, workflow, simulated)
    run_cols = ", ".join(RUNS_COLUMNS)
    node_cols = ", ".join(NODE_RUNS_COLUMNS)
    dags: dict[str, Mapping[str, tuple[str, ...]]] = {}
    after: tuple[datetime, str] | None = None
    while True:
        page, page_params = where, list(params)
        if after is not None:
            page += " AND (started_at > ? OR (started_at = ? AND run_id > ?))"
            page_params += [after[0], after[0], after[1]]
        runs = _dicts(
            store,
            f"SELECT {run_cols} FROM runs WHERE {page} ORDER BY started_at, run_id LIMIT ?",
            [*page_params, batch_size],
        )
        if not runs:
            return
        ids = [run["run_id"] for run in runs]
        nodes: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in ids}
        for row in _dicts(
            store,
            f"SELECT {node_cols} FROM node_runs WHERE list_contains(?, run_id)"
            " ORDER BY started_at, node",
            [ids],
        ):
            nodes[row["run_id"]].append(row)
        _load_dags(store, {run["workflow_hash"] for run in runs} - dags.keys(), dags)
        yield [
            RecordedRun(run, nodes[run["run_id"]], dags.get(run["workflow_hash"], {}))
            for run in runs
        ]
        after = (runs[-1]["started_at"], runs[-1]["run_id"])


def _filters(
    days: int | None, workflow: str | None, simulated: bool | None
) -> tuple[str, list[Any]]:
    where, params = _FINISHED, []
    if simulated is not None:
        where += " AND coalesce(simulated, false) = ?"
        params.append(simulated)
    if days is not None:
        today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        where += " AND started_at >= ?"
        params.append(today - timedelta(days=max(days, 1) - 1))
    if workflow:
        where += " AND workflow = ?"
        params.append(workflow)
    return where, params


def _dicts(store: Any, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    with store.connect() as con:
        cursor = con.execute(sql, params)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _load_dags(
    store: Any, hashes: set[str | None], into: dict[str, Mapping[str, tuple[str, ...]]]
) -> None:
    """Each workflow version's DAG, parsed from its recorded source; a version whose source
    is missing or no longer parses gets none (its spans then carry no DAG links)."""
    wanted = sorted(h for h in hashes if h)
    if not wanted:
        return
    rows = store.query(
        "SELECT workflow_hash, workflow_file, source FROM workflows"
        " WHERE list_contains(?, workflow_hash)",
        [wanted],
    )
    for workflow_hash, filename, source in rows:
        try:
            into[workflow_hash] = parse_workflow(source, filename or "<workflow>").graph.parents
        except Exception:  # an old version the current schema rejects: export it unlinked
            into[workflow_hash] = {}
    for workflow_hash in wanted:
        into.setdefault(workflow_hash, {})

"""One recorded run, read back whole for the Runs page: its row, its nodes as the engine
returned them, the workflow version it ran (for the DAG and the critical path), and what each
node sent and received when the run stored content."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from core.engine.results import NodeResult
from core.errors import WorkflowError
from core.settings import data_home
from core.telemetry import NODE_RUNS_COLUMNS, get_store
from core.telemetry.content import NodeContent, read_node_content
from core.workflow import Workflow, parse_workflow

# A prefix shorter than this could match many runs by chance.
MIN_PREFIX = 6
_NODE_FIELDS = [c for c in NODE_RUNS_COLUMNS if c not in ("run_id", "workflow", "workflow_hash")]
_RESULT_FIELDS = set(NodeResult.__slots__)  # type: ignore[attr-defined]


class RunNotFound(LookupError):
    """No run, or more than one, has the id asked for; the message says which."""


@dataclass(frozen=True)
class RunDetail:
    run_id: str
    workflow_name: str
    workflow: Workflow | None  # None when the version it ran is not recorded or no longer parses
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None
    cost_usd: float | None
    simulated_cost_usd: float | None
    input_tokens: int
    output_tokens: int
    simulated: bool
    error: str | None
    tags: dict[str, Any]
    inputs: dict[str, Any]
    nodes: dict[str, NodeResult]
    content: dict[str, NodeContent]  # by node; empty when the run stored none

    @property
    def content_stored(self) -> bool:
        return bool(self.content)

    @property
    def outputs(self) -> dict[str, Any]:
        """The output nodes' results as stored: responses (JSON ones decoded) when content
        was stored, nothing otherwise."""
        names = self.workflow.outputs if self.workflow else list(self.nodes)
        found = {}
        for name in names:
            stored = self.content.get(name)
            if stored is None or stored.response is None:
                continue
            found[name] = _decoded(stored.response)
        return found


def _decoded(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, dict | list) else text


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def run_detail(run_id: str, home: str | Path | None = None) -> RunDetail:
    """The run whose id is `run_id` (or starts with it, from MIN_PREFIX characters)."""
    wanted = run_id.strip().lower()
    if len(wanted) < MIN_PREFIX:
        raise RunNotFound(f"run {run_id!r}: give at least {MIN_PREFIX} characters of its id")
    with get_store(data_home(home)).connect() as con:
        found = con.execute(
            "SELECT run_id, workflow, workflow_hash, status, started_at, finished_at,"
            " duration_ms, cost_usd, simulated_cost_usd, coalesce(input_tokens, 0),"
            " coalesce(output_tokens, 0), coalesce(simulated, false), error, tags, inputs"
            " FROM runs WHERE run_id = ? OR starts_with(run_id, ?) LIMIT 2",
            [wanted, wanted],
        ).fetchall()
        exact = [row for row in found if row[0] == wanted]
        if not found:
            raise RunNotFound(f"no run has the id {run_id!r}")
        if len(found) > 1 and not exact:
            raise RunNotFound(f"several runs have ids starting {run_id!r}: give more of it")
        row = (exact or found)[0]
        node_rows = _node_rows(con, row[0], row[4])
        source = con.execute(
            "SELECT source, workflow_file FROM workflows WHERE workflow_hash = ? LIMIT 1",
            [row[2]],
        ).fetchone()
        content = read_node_content(con, row[0])
    return RunDetail(
        run_id=row[0],
        workflow_name=row[1],
        workflow=_parsed(source),
        status=row[3],
        started_at=row[4],
        finished_at=row[5],
        duration_ms=row[6],
        cost_usd=row[7],
        simulated_cost_usd=row[8],
        input_tokens=int(row[9]),
        output_tokens=int(row[10]),
        simulated=bool(row[11]),
        error=row[12],
        tags=_json_object(row[13]),
        inputs=_json_object(row[14]),
        nodes={values[0]: _node_result(values) for values in node_rows},
        content=content,
    )


def _node_rows(
    con: duckdb.DuckDBPyConnection, run_id: str, started_at: datetime | None
) -> list[tuple[Any, ...]]:
    """The run's node rows. Run ids are random, so a lookup by id alone reads the whole
    column; every node row the engine writes carries its run's start, which rows arrive
    ordered by, so asking for that first lets DuckDB skip all but a few row groups. Rows
    without it (written by older versions) are found by id alone."""
    select = f"SELECT {', '.join(_NODE_FIELDS)} FROM node_runs WHERE run_id = ?"
    order = " ORDER BY started_at, node"
    if started_at is not None:
        rows = con.execute(f"{select} AND run_started_at = ?{order}", [run_id, started_at])
        found = rows.fetchall()
        if found:
            return found
    return con.execute(select + order, [run_id]).fetchall()


def _parsed(source: tuple[str | None, str | None] | None) -> Workflow | None:
    if source is None or source[0] is None:
        return None
    try:
        return parse_workflow(source[0], source[1] or "<recorded>")
    except WorkflowError:
        return None


def _node_result(values: tuple[Any, ...]) -> NodeResult:
    """A node row as the engine's NodeResult, so the Run page's table and Gantt draw it."""
    row = dict(zip(_NODE_FIELDS, values, strict=True))
    fields = {k: v for k, v in row.items() if k in _RESULT_FIELDS and v is not None}
    started = row["started_at"] or row["run_started_at"]
    return NodeResult(
        **fields
        | {
            "name": row["node"],
            "node_type": row["node_type"] or "llm",
            "status": row["status"] or "failed",
            "started_at": started,
            "finished_at": row["finished_at"] or started,
            "duration_ms": row["duration_ms"] or 0.0,
        }
    )

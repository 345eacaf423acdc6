"""The telemetry tables, and the SQL that loads spooled events into them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

# The single place that defines the tables: adding a column here adds it to new databases,
# to old ones on their next open, and to what ingest reads from the spool.
RUNS_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "workflow": "VARCHAR",
    "workflow_hash": "VARCHAR",
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
    "duration_ms": "DOUBLE",
    "status": "VARCHAR",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "simulated": "BOOLEAN",
    "experiment": "VARCHAR",
    "variant": "VARCHAR",
    "error": "VARCHAR",
    "tags": "VARCHAR",
    "inputs": "VARCHAR",
    "unpriced_calls": "INTEGER",
    "cache_hits": "INTEGER",
    "saved_cost_usd": "DOUBLE",
    "node_count": "INTEGER",
    "workflow_file": "VARCHAR",
    "writer_id": "VARCHAR",
    "host": "VARCHAR",
    "pid": "INTEGER",
    "simulated_cost_usd": "DOUBLE",
    "cached_tokens": "BIGINT",
    "reasoning_tokens": "BIGINT",
    "estimated_usage_calls": "INTEGER",
}
NODE_RUNS_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "node": "VARCHAR",
    "node_type": "VARCHAR",
    "provider": "VARCHAR",
    "model": "VARCHAR",
    "started_at": "TIMESTAMP",
    "finished_at": "TIMESTAMP",
    "duration_ms": "DOUBLE",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "cost_usd": "DOUBLE",
    "cache_hit": "BOOLEAN",
    "cache_enabled": "BOOLEAN",
    "saved_cost_usd": "DOUBLE",
    "attempts": "INTEGER",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "workflow": "VARCHAR",
    "workflow_hash": "VARCHAR",
    "simulated": "BOOLEAN",
    "request_hash": "VARCHAR",
    "queue_ms": "DOUBLE",
    "cpu_seconds": "DOUBLE",
    "peak_memory_mb": "DOUBLE",
    "exit_reason": "VARCHAR",
    "stdout": "VARCHAR",
    "cached_tokens": "BIGINT",
    "reasoning_tokens": "BIGINT",
    "usage_estimated": "BOOLEAN",
    "reserved_tokens": "BIGINT",
    "reserved_cost_usd": "DOUBLE",
    "run_started_at": "TIMESTAMP",
}
# Each version of a workflow file, by content hash: reports read the DAG and prompts of
# past runs from here even after the file has changed.
WORKFLOWS_COLUMNS: dict[str, str] = {
    "workflow_hash": "VARCHAR",
    "workflow": "VARCHAR",
    "workflow_file": "VARCHAR",
    "source": "VARCHAR",
    "first_seen": "TIMESTAMP",
}
# Experiments (docs/experiments.md): each cell (item, variant, repeat) is an ordinary run;
# these tables hold the experiment's definition, its items, which run answered each cell,
# and one score per cell and scorer. A cell's row is written after its scores, so a cell
# without one (its process died) is run again by --resume; reports read the latest row of
# each cell and the scores of that row's run.
EXPERIMENTS_COLUMNS: dict[str, str] = {
    "experiment_id": "VARCHAR",
    "name": "VARCHAR",
    "file": "VARCHAR",
    "workflow": "VARCHAR",
    "dataset": "VARCHAR",
    "baseline": "VARCHAR",
    "primary_scorer": "VARCHAR",
    "variants": "VARCHAR",  # JSON list of names, in the file's order
    "scorers": "VARCHAR",  # JSON list of {name, type, threshold, node}
    "items": "INTEGER",
    "repeats": "INTEGER",
    "cells": "INTEGER",
    "simulated": "BOOLEAN",
    "design_hash": "VARCHAR",
    "max_cost": "DOUBLE",
    "margin": "DOUBLE",
    "source": "VARCHAR",
    "created_at": "TIMESTAMP",
    "status": "VARCHAR",
    "updated_at": "TIMESTAMP",
    "writer_id": "VARCHAR",
    "error": "VARCHAR",
}
EXPERIMENT_ITEMS_COLUMNS: dict[str, str] = {
    "experiment_id": "VARCHAR",
    "item": "INTEGER",
    "inputs": "VARCHAR",
    "expected": "VARCHAR",
}
EXPERIMENT_CELLS_COLUMNS: dict[str, str] = {
    "experiment_id": "VARCHAR",
    "item": "INTEGER",
    "variant": "VARCHAR",
    "repeat": "INTEGER",
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "cost_usd": "DOUBLE",
    "duration_ms": "DOUBLE",
    "input_tokens": "BIGINT",
    "output_tokens": "BIGINT",
    "output": "VARCHAR",
    "recorded_at": "TIMESTAMP",
}
EXPERIMENT_SCORES_COLUMNS: dict[str, str] = {
    "experiment_id": "VARCHAR",
    "run_id": "VARCHAR",
    "item": "INTEGER",
    "variant": "VARCHAR",
    "repeat": "INTEGER",
    "scorer": "VARCHAR",
    "score": "DOUBLE",
    "passed": "BOOLEAN",
    "reason": "VARCHAR",
    "scorer_cost_usd": "DOUBLE",
    "recorded_at": "TIMESTAMP",
}
# Prompts and responses (docs/telemetry.md, "Content"): each distinct text once, keyed by
# its hash and zlib-compressed; node_content says which texts one node call sent and got
# back. Written only for runs that store content (simulated runs, or `store_content: true`).
CONTENT_COLUMNS: dict[str, str] = {
    "content_hash": "VARCHAR",
    "codec": "VARCHAR",
    "chars": "BIGINT",
    "compressed": "BLOB",
    "first_seen": "TIMESTAMP",
}
NODE_CONTENT_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "node": "VARCHAR",
    "run_started_at": "TIMESTAMP",
    "prompt_hash": "VARCHAR",
    "system_hash": "VARCHAR",
    "response_hash": "VARCHAR",
    "cache_key": "VARCHAR",
}
# Segments already loaded: a crash between a commit and the deletion of its files must not
# load them twice.
LEDGER_TABLE = "telemetry_segments"
LEDGER_COLUMNS: dict[str, str] = {"segment": "VARCHAR", "ingested_at": "TIMESTAMP"}
TABLES = {
    "runs": RUNS_COLUMNS,
    "node_runs": NODE_RUNS_COLUMNS,
    "workflows": WORKFLOWS_COLUMNS,
    LEDGER_TABLE: LEDGER_COLUMNS,
    "experiments": EXPERIMENTS_COLUMNS,
    "experiment_items": EXPERIMENT_ITEMS_COLUMNS,
    "experiment_cells": EXPERIMENT_CELLS_COLUMNS,
    "experiment_scores": EXPERIMENT_SCORES_COLUMNS,
    "content": CONTENT_COLUMNS,
    "node_content": NODE_CONTENT_COLUMNS,
}

# The moment a node row counts at in windows and daily breakdowns: its run's start, so a run
# that crosses midnight is one day's spend in every report and totals equal their parts.
NODE_COUNTS_AT = "coalesce(run_started_at, started_at)"

# A call that reached a model and was billed (or would have been, for a simulated one):
# retried failures cost nothing and cache hits cost $0, so both are left out of spend.
LLM_CALL = "node_type = 'llm' AND attempts > 0 AND NOT coalesce(cache_hit, false)"

# node_runs counted per UTC day and per everything the reports filter or group on, so a
# report over millions of node rows reads thousands. Every write to node_runs adds its rows
# here in the same transaction; `rollup_current` notices writes that went around this
# module (other tools, older versions) by the row count, and `rebuild_rollup` recounts.
# A row's keys are its own values, with NULL as '' or false, since a primary key admits no
# NULL and no name is empty; a row with no start time counts under day -infinity, which no
# window reaches, so that the rollup still counts every row of node_runs.
ROLLUP_TABLE = "node_daily"
ROLLUP_KEYS: dict[str, tuple[str, str]] = {
    "day": ("DATE", f"coalesce(CAST({NODE_COUNTS_AT} AS DATE), DATE '-infinity')"),
    "simulated": ("BOOLEAN", "coalesce(simulated, false)"),
    "workflow": ("VARCHAR", "coalesce(workflow, '')"),
    "node": ("VARCHAR", "coalesce(node, '')"),
    "node_type": ("VARCHAR", "coalesce(node_type, '')"),
    "provider": ("VARCHAR", "coalesce(provider, '')"),
    "model": ("VARCHAR", "coalesce(model, '')"),
    "status": ("VARCHAR", "coalesce(status, '')"),
    "called": ("BOOLEAN", f"coalesce({LLM_CALL}, false)"),
    "priced": ("BOOLEAN", "cost_usd IS NOT NULL"),
    "cache_hit": ("BOOLEAN", "coalesce(cache_hit, false)"),
    "cache_enabled": ("BOOLEAN", "coalesce(cache_enabled, false)"),
    "hashed": ("BOOLEAN", "request_hash IS NOT NULL"),
}
# Sums are never NULL, so that adding a batch to a row is plain addition.
ROLLUP_MEASURES: dict[str, tuple[str, str]] = {
    "node_rows": ("BIGINT", "count(*)"),
    "cost_usd": ("DOUBLE", "coalesce(sum(cost_usd), 0)"),
    "input_tokens": ("BIGINT", "coalesce(sum(input_tokens), 0)"),
    "output_tokens": ("BIGINT", "coalesce(sum(output_tokens), 0)"),
    "saved_cost_usd": ("DOUBLE", "coalesce(sum(saved_cost_usd), 0)"),
    "duration_ms": ("DOUBLE", "coalesce(sum(duration_ms), 0)"),
    "cached_tokens": ("BIGINT", "coalesce(sum(cached_tokens), 0)"),
    "reasoning_tokens": ("BIGINT", "coalesce(sum(reasoning_tokens), 0)"),
}
ROLLUP_COLUMNS = {c: t for c, (t, _) in (ROLLUP_KEYS | ROLLUP_MEASURES).items()}

INTERRUPTED_ERROR = "interrupted: the process running this workflow exited before it finished"
EXPERIMENT_INTERRUPTED = (
    "interrupted: the process running this experiment exited before it finished; "
    "finish it with --resume"
)

# Lines longer than this make DuckDB refuse a whole file; the engine's lines stay far below
# (core.telemetry.spool.MAX_FIELD_CHARS) and longer ones are quarantined.
_MAX_OBJECT_BYTES = 64 * 2**20

# Everything is read from the spool as text and cast in SQL: a badly typed value becomes
# NULL instead of making the parser drop the whole event.
_SPOOL_COLUMNS = {"event": "VARCHAR"} | {
    c: "VARCHAR"
    for c in RUNS_COLUMNS
    | NODE_RUNS_COLUMNS
    | WORKFLOWS_COLUMNS
    | EXPERIMENTS_COLUMNS
    | EXPERIMENT_ITEMS_COLUMNS
    | EXPERIMENT_CELLS_COLUMNS
    | EXPERIMENT_SCORES_COLUMNS
    | CONTENT_COLUMNS
    | NODE_CONTENT_COLUMNS
}


def _cast(column: str, sql_type: str) -> str:
    if sql_type == "VARCHAR":
        return column
    if sql_type == "BLOB":
        # Spooled as base64; a damaged value becomes NULL like any badly typed one.
        return f"TRY(from_base64({column}))"
    if sql_type == "TIMESTAMP":
        # Through TIMESTAMPTZ (the session is in UTC) so a string carrying an offset is
        # converted rather than having its offset silently ignored.
        return f"TRY_CAST(TRY_CAST({column} AS TIMESTAMPTZ) AS TIMESTAMP)"
    return f"TRY_CAST({column} AS {sql_type})"


def _select(columns: dict[str, str], event: str) -> str:
    casts = ", ".join(f"{_cast(c, t)} AS {c}" for c, t in columns.items())
    return f"SELECT {casts} FROM spool WHERE event = '{event}'"


def rollup_select(source: str) -> str:
    """node_daily's rows for the node rows of `source` (a table, or a parenthesised query,
    with a WHERE clause if need be): the one definition of what the rollup holds."""
    keys = ", ".join(f"{sql} AS {c}" for c, (_, sql) in ROLLUP_KEYS.items())
    measures = ", ".join(f"CAST({sql} AS {t}) AS {c}" for c, (t, sql) in ROLLUP_MEASURES.items())
    return f"SELECT {keys}, {measures} FROM {source} GROUP BY ALL"


def add_to_rollup(source: str) -> str:
    """The SQL that adds the node rows of `source` to node_daily: run it in the transaction
    that inserts them into node_runs."""
    keys = ", ".join(ROLLUP_KEYS)
    sums = ", ".join(f"{c} = {ROLLUP_TABLE}.{c} + excluded.{c}" for c in ROLLUP_MEASURES)
    return (
        f"INSERT INTO {ROLLUP_TABLE} {rollup_select(source)}"
        f" ON CONFLICT ({keys}) DO UPDATE SET {sums}"
    )


_RUN_COLS = ", ".join(RUNS_COLUMNS)
_NODE_COLS = ", ".join(NODE_RUNS_COLUMNS)
_INGEST_SQL = [
    f"INSERT INTO runs ({_RUN_COLS}) {_select(RUNS_COLUMNS, 'run_started')}",
    # A run's final row may arrive in a later ingest than its start; fields it leaves out
    # keep what the start said.
    "UPDATE runs SET "
    + ", ".join(f"{c} = coalesce(f.{c}, runs.{c})" for c in RUNS_COLUMNS if c != "run_id")
    + f" FROM ({_select(RUNS_COLUMNS, 'run_finished')}) AS f WHERE runs.run_id = f.run_id",
    f"INSERT INTO runs ({_RUN_COLS}) SELECT * FROM ({_select(RUNS_COLUMNS, 'run_finished')}) f"
    " WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = f.run_id)",
    f"INSERT INTO node_runs ({_NODE_COLS}) {_select(NODE_RUNS_COLUMNS, 'node')}",
    add_to_rollup(f"({_select(NODE_RUNS_COLUMNS, 'node')})"),
    f"INSERT INTO workflows ({', '.join(WORKFLOWS_COLUMNS)}) SELECT * FROM"
    f" ({_select(WORKFLOWS_COLUMNS, 'workflow')}) w"
    " WHERE NOT EXISTS (SELECT 1 FROM workflows k WHERE k.workflow_hash = w.workflow_hash)"
    " QUALIFY row_number() OVER (PARTITION BY workflow_hash ORDER BY first_seen) = 1",
    # An experiment's definition is written once; its status changes as processes run it.
    f"INSERT INTO experiments SELECT * FROM ({_select(EXPERIMENTS_COLUMNS, 'experiment')}) e"
    " WHERE NOT EXISTS (SELECT 1 FROM experiments x WHERE x.experiment_id = e.experiment_id)"
    " QUALIFY row_number() OVER (PARTITION BY experiment_id ORDER BY created_at) = 1",
    "UPDATE experiments SET status = f.status, updated_at = f.updated_at, error = f.error,"
    " writer_id = coalesce(f.writer_id, experiments.writer_id)"
    f" FROM ({_select(EXPERIMENTS_COLUMNS, 'experiment_status')}"
    " QUALIFY row_number() OVER (PARTITION BY experiment_id ORDER BY updated_at DESC) = 1) f"
    " WHERE experiments.experiment_id = f.experiment_id"
    " AND (experiments.updated_at IS NULL OR f.updated_at >= experiments.updated_at)",
    f"INSERT INTO experiment_items {_select(EXPERIMENT_ITEMS_COLUMNS, 'experiment_item')}",
    f"INSERT INTO experiment_cells {_select(EXPERIMENT_CELLS_COLUMNS, 'experiment_cell')}",
    f"INSERT INTO experiment_scores {_select(EXPERIMENT_SCORES_COLUMNS, 'experiment_score')}",
    # A text already stored is not stored again: the hash is its identity.
    f"INSERT INTO content SELECT * FROM ({_select(CONTENT_COLUMNS, 'content')}) c"
    " WHERE c.compressed IS NOT NULL"
    " AND NOT EXISTS (SELECT 1 FROM content k WHERE k.content_hash = c.content_hash)"
    " QUALIFY row_number() OVER (PARTITION BY content_hash ORDER BY first_seen) = 1",
    f"INSERT INTO node_content {_select(NODE_CONTENT_COLUMNS, 'node_content')}",
]
# Experiments a dead writer was running: interrupted, so that `--resume` can finish them.
_INTERRUPT_EXPERIMENTS_SQL = """
UPDATE experiments SET status = 'interrupted', error = $error, updated_at = $now
WHERE list_contains($writers, writer_id) AND status = 'running'
"""
EXPERIMENT_EVENTS = (
    "experiment",
    "experiment_status",
    "experiment_item",
    "experiment_cell",
    "experiment_score",
)
CONTENT_EVENTS = ("content", "node_content")
# Runs a dead writer left open. Their start row carries the totals of no node, so totals
# are recomputed from the nodes that finished (those calls were made and paid for), by the
# engine's rules (`_Run.totals`): the run's cost is that of its own kind of calls, simulated
# calls are kept apart, and a cost is unknown when calls were made and none had a price.
# The end is the last moment the run is known to have been alive.
_INTERRUPT_SQL = """
UPDATE runs SET
    status = 'failed', error = $error, finished_at = x.fin,
    duration_ms = date_diff('microsecond', runs.started_at, x.fin) / 1000.0,
    input_tokens = x.input_tokens, output_tokens = x.output_tokens,
    cached_tokens = x.cached_tokens, reasoning_tokens = x.reasoning_tokens,
    cost_usd = x.cost_usd, simulated_cost_usd = x.simulated_cost_usd,
    unpriced_calls = x.unpriced_calls, estimated_usage_calls = x.estimated_usage_calls,
    cache_hits = x.cache_hits, saved_cost_usd = x.saved_cost_usd
FROM (
    SELECT run_id,
        coalesce(max(finished_at), max(run_started_at), $now) AS fin,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        coalesce(sum(cached_tokens), 0) AS cached_tokens,
        coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,
        CASE WHEN count_if(own AND cost_usd IS NOT NULL) > 0 OR count_if(own) = 0
            THEN coalesce(sum(cost_usd) FILTER (WHERE own), 0) END AS cost_usd,
        CASE WHEN count_if(sim AND cost_usd IS NOT NULL) > 0
            THEN sum(cost_usd) FILTER (WHERE sim) END AS simulated_cost_usd,
        count_if(called AND cost_usd IS NULL) AS unpriced_calls,
        count_if(called AND coalesce(usage_estimated, false)) AS estimated_usage_calls,
        count_if(cache_hit) AS cache_hits,
        coalesce(sum(saved_cost_usd) FILTER (WHERE cache_hit), 0) AS saved_cost_usd
    FROM (
        SELECT *, called AND node_simulated = run_simulated AS own,
            called AND node_simulated AS sim
        FROM (
            SELECT r.run_id, r.started_at AS run_started_at, n.finished_at, n.input_tokens,
                n.output_tokens, n.cached_tokens, n.reasoning_tokens, n.cost_usd, n.cache_hit,
                n.saved_cost_usd, n.usage_estimated,
                coalesce(n.simulated, false) AS node_simulated,
                coalesce(r.simulated, false) AS run_simulated,
                n.node_type = 'llm' AND n.attempts > 0 AND NOT coalesce(n.cache_hit, false)
                    AS called
            FROM runs r LEFT JOIN node_runs n ON n.run_id = r.run_id
            WHERE list_contains($writers, r.writer_id) AND r.status = 'running'
        )
    )
    GROUP BY run_id
) AS x
WHERE runs.run_id = x.run_id
"""


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Creates the tables, and adds the columns an older version of this module lacked."""
    for table, columns in TABLES.items():
        defs = ", ".join(f"{c} {t}" for c, t in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({defs})")
        have = {
            row[0]
            for row in con.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'main' AND table_name = ?",
                [table],
            ).fetchall()
        }
        for column, sql_type in columns.items():
            if column not in have:
                con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
    _create_rollup(con)


def _create_rollup(con: duckdb.DuckDBPyConnection) -> None:
    """Creates node_daily and counts what node_runs already holds: once for a database
    older than the rollup, again whenever the rollup's definition has changed."""
    have = [
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [ROLLUP_TABLE],
        ).fetchall()
    ]
    if have == list(ROLLUP_COLUMNS):
        return
    defs = ", ".join(f"{c} {t}" for c, t in ROLLUP_COLUMNS.items())
    con.execute("BEGIN")
    con.execute(f"DROP TABLE IF EXISTS {ROLLUP_TABLE}")
    con.execute(f"CREATE TABLE {ROLLUP_TABLE} ({defs}, PRIMARY KEY ({', '.join(ROLLUP_KEYS)}))")
    _count_all(con)
    con.execute("COMMIT")


def _count_all(con: duckdb.DuckDBPyConnection) -> None:
    # Ten million rows take a few seconds: DuckDB's progress bar must not land in the
    # output of a command that happened to trigger it.
    con.execute("SET enable_progress_bar = false")
    con.execute(f"INSERT INTO {ROLLUP_TABLE} {rollup_select('node_runs')}")


def rollup_current(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether node_daily counts every row of node_runs; both counts cost next to nothing.
    A write that went around this module and changed node_runs without changing its row
    count would go unnoticed: tools that rewrite rows in place must call rebuild_rollup."""
    (current,) = con.execute(
        f"SELECT (SELECT count(*) FROM node_runs)"
        f" = (SELECT coalesce(sum(node_rows), 0) FROM {ROLLUP_TABLE})"
    ).fetchone()
    return bool(current)


def rebuild_rollup(con: duckdb.DuckDBPyConnection) -> None:
    """Recounts node_daily from node_runs, in one transaction so no reader sees it empty."""
    con.execute("BEGIN")
    con.execute(f"DELETE FROM {ROLLUP_TABLE}")
    _count_all(con)
    con.execute("COMMIT")


def _read_spool(files: list[str]) -> tuple[str, list]:
    """SQL reading spool files (and its parameters): every field as text, bad lines skipped."""
    return (
        "SELECT * FROM read_json(?, columns = ?, format = 'newline_delimited',"
        f" ignore_errors = true, maximum_object_size = {_MAX_OBJECT_BYTES})",
        [files, _SPOOL_COLUMNS],
    )


def unreadable(path: Path) -> str | None:
    """Why DuckDB cannot read the spool file `path`, or None. In a database of its own, in
    memory, and counting only what is about the file (its content, its type, its access):
    running out of memory says nothing against it."""
    sql, params = _read_spool([str(path)])
    try:
        with duckdb.connect(":memory:") as con:
            con.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()
    except (duckdb.InvalidInputException, duckdb.IOException, duckdb.ConversionException) as exc:
        return str(exc).splitlines()[0]
    return None


def load(
    con: duckdb.DuckDBPyConnection,
    segments: list[Path],
    dead_writers: list[str],
    ids: list[str] | None = None,
) -> None:
    """Loads `segments` not loaded before, then closes the runs `dead_writers` left open,
    all in one transaction: either every row and the ledger entries land, or none. `ids`
    are the segments' ledger ids when a file stands in for a segment (a salvaged copy)."""
    ids = ids or [segment_id(p) for p in segments]
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute("BEGIN")
    done = {
        row[0]
        for row in con.execute(
            f"SELECT segment FROM {LEDGER_TABLE} WHERE list_contains(?, segment)", [ids]
        ).fetchall()
    }
    fresh = [(p, i) for p, i in zip(segments, ids, strict=True) if i not in done]
    if fresh:
        sql, params = _read_spool([str(p) for p, _ in fresh])
        con.execute(f"CREATE OR REPLACE TEMP TABLE spool AS {sql}", params)
        for statement in _INGEST_SQL:
            con.execute(statement)
        con.execute(f"INSERT INTO {LEDGER_TABLE} SELECT unnest(?), ?", [[i for _, i in fresh], now])
        con.execute("DROP TABLE spool")
    if dead_writers:
        params = {"error": INTERRUPTED_ERROR, "now": now, "writers": dead_writers}
        con.execute(_INTERRUPT_SQL, params)
        con.execute(_INTERRUPT_EXPERIMENTS_SQL, {**params, "error": EXPERIMENT_INTERRUPTED})
    con.execute("COMMIT")


def segment_id(path: Path) -> str:
    """A segment's id in the ledger: its writer's directory and its file name."""
    return f"{path.parent.name}/{path.name}"


# Batch runs (docs/batch.md): a workflow run once per dataset row. `batches` holds the job
# (written once, its status updated as processes run it); `batch_rows` which run answered
# each row, so `--resume` runs exactly the rows that have none. A row's line is written after
# its run, in the same segment as the run's telemetry when a Ray worker ran it.
BATCHES_COLUMNS: dict[str, str] = {
    "batch_id": "VARCHAR",
    "workflow": "VARCHAR",
    "workflow_hash": "VARCHAR",
    "workflow_file": "VARCHAR",
    "dataset": "VARCHAR",
    "dataset_hash": "VARCHAR",
    "rows": "INTEGER",
    "simulated": "BOOLEAN",
    "executor": "VARCHAR",
    "created_at": "TIMESTAMP",
    "status": "VARCHAR",
    "updated_at": "TIMESTAMP",
    "writer_id": "VARCHAR",
    "error": "VARCHAR",
}
BATCH_ROWS_COLUMNS: dict[str, str] = {
    "batch_id": "VARCHAR",
    "row": "INTEGER",
    "run_id": "VARCHAR",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "cost_usd": "DOUBLE",
    "simulated_cost_usd": "DOUBLE",
    "simulated": "BOOLEAN",
    "duration_ms": "DOUBLE",
    "outputs": "VARCHAR",  # JSON object: output node -> output
    "recorded_at": "TIMESTAMP",
}
BATCH_EVENTS = ("batch", "batch_status", "batch_row")
TABLES |= {"batches": BATCHES_COLUMNS, "batch_rows": BATCH_ROWS_COLUMNS}
_SPOOL_COLUMNS |= {c: "VARCHAR" for c in BATCHES_COLUMNS | BATCH_ROWS_COLUMNS}
_INGEST_SQL += [
    f"INSERT INTO batches SELECT * FROM ({_select(BATCHES_COLUMNS, 'batch')}) b"
    " WHERE NOT EXISTS (SELECT 1 FROM batches x WHERE x.batch_id = b.batch_id)"
    " QUALIFY row_number() OVER (PARTITION BY batch_id ORDER BY created_at) = 1",
    "UPDATE batches SET status = f.status, updated_at = f.updated_at, error = f.error,"
    " writer_id = coalesce(f.writer_id, batches.writer_id)"
    f" FROM ({_select(BATCHES_COLUMNS, 'batch_status')}"
    " QUALIFY row_number() OVER (PARTITION BY batch_id ORDER BY updated_at DESC) = 1) f"
    " WHERE batches.batch_id = f.batch_id"
    " AND (batches.updated_at IS NULL OR f.updated_at >= batches.updated_at)",
    f"INSERT INTO batch_rows {_select(BATCH_ROWS_COLUMNS, 'batch_row')}",
]

# Events other than a run's own that `TelemetryStore.record` writes through the spool.
RECORDED_EVENTS = frozenset(EXPERIMENT_EVENTS + CONTENT_EVENTS + BATCH_EVENTS)

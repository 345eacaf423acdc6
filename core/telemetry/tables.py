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
# Segments already loaded: a crash between a commit and the deletion of its files must not
# load them twice.
LEDGER_TABLE = "telemetry_segments"
LEDGER_COLUMNS: dict[str, str] = {"segment": "VARCHAR", "ingested_at": "TIMESTAMP"}
TABLES = {
    "runs": RUNS_COLUMNS,
    "node_runs": NODE_RUNS_COLUMNS,
    "workflows": WORKFLOWS_COLUMNS,
    LEDGER_TABLE: LEDGER_COLUMNS,
}

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
    "day": ("DATE", "coalesce(CAST(started_at AS DATE), DATE '-infinity')"),
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
}
ROLLUP_COLUMNS = {c: t for c, (t, _) in (ROLLUP_KEYS | ROLLUP_MEASURES).items()}

INTERRUPTED_ERROR = "interrupted: the process running this workflow exited before it finished"

# Lines longer than this make DuckDB refuse a whole file; the engine's lines stay far below
# (core.telemetry.spool.MAX_FIELD_CHARS) and longer ones are quarantined.
_MAX_OBJECT_BYTES = 64 * 2**20

# Everything is read from the spool as text and cast in SQL: a badly typed value becomes
# NULL instead of making the parser drop the whole event.
_SPOOL_COLUMNS = {"event": "VARCHAR"} | {
    c: "VARCHAR" for c in RUNS_COLUMNS | NODE_RUNS_COLUMNS | WORKFLOWS_COLUMNS
}


def _cast(column: str, sql_type: str) -> str:
    if sql_type == "VARCHAR":
        return column
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
]
# Runs a dead writer left open. Their start row carries the totals of no node, so totals
# are recomputed from the nodes that finished (those calls were made and paid for), by the
# engine's rules: cost counts calls actually made, and is unknown when none of them has a
# price. The end is the last moment the run is known to have been alive.
_INTERRUPT_SQL = """
UPDATE runs SET
    status = 'failed', error = $error, finished_at = x.fin,
    duration_ms = date_diff('microsecond', runs.started_at, x.fin) / 1000.0,
    input_tokens = x.input_tokens, output_tokens = x.output_tokens, cost_usd = x.cost_usd,
    unpriced_calls = x.unpriced_calls, cache_hits = x.cache_hits,
    saved_cost_usd = x.saved_cost_usd
FROM (
    SELECT run_id,
        coalesce(max(finished_at), max(run_started_at), $now) AS fin,
        coalesce(sum(input_tokens), 0) AS input_tokens,
        coalesce(sum(output_tokens), 0) AS output_tokens,
        CASE WHEN count_if(called AND cost_usd IS NOT NULL) > 0 OR count_if(called) = 0
            THEN coalesce(sum(cost_usd) FILTER (WHERE called), 0) END AS cost_usd,
        count_if(called AND cost_usd IS NULL) AS unpriced_calls,
        count_if(cache_hit) AS cache_hits,
        coalesce(sum(saved_cost_usd) FILTER (WHERE cache_hit), 0) AS saved_cost_usd
    FROM (
        SELECT r.run_id, r.started_at AS run_started_at, n.finished_at, n.input_tokens,
            n.output_tokens, n.cost_usd, n.cache_hit, n.saved_cost_usd,
            n.node_type = 'llm' AND n.attempts > 0 AND NOT coalesce(n.cache_hit, false) AS called
        FROM runs r LEFT JOIN node_runs n ON n.run_id = r.run_id
        WHERE list_contains($writers, r.writer_id) AND r.status = 'running'
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
        con.execute(
            _INTERRUPT_SQL, {"error": INTERRUPTED_ERROR, "now": now, "writers": dead_writers}
        )
    con.execute("COMMIT")


def segment_id(path: Path) -> str:
    """A segment's id in the ledger: its writer's directory and its file name."""
    return f"{path.parent.name}/{path.name}"

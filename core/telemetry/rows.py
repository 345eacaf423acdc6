"""Rows of the telemetry tables, built in one place for the engine, the demo history and the
tests: a column added to `tables.py` reaches every writer through these builders, and a
misspelt column name fails loudly instead of landing as NULL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core.telemetry.tables import NODE_RUNS_COLUMNS, RUNS_COLUMNS, TABLES, WORKFLOWS_COLUMNS

if TYPE_CHECKING:
    import pyarrow as pa

# node_runs columns a node's result carries under the same name; the rest describe the run.
_RESULT_COLUMNS = tuple(
    c for c in NODE_RUNS_COLUMNS if c not in ("run_id", "node", "workflow", "workflow_hash")
)


def _row(columns: Mapping[str, str], table: str, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = values.keys() - columns.keys()
    if unknown:
        raise TypeError(f"{table} has no column {', '.join(sorted(unknown))}")
    return {column: values.get(column) for column in columns}


def run_row(**values: Any) -> dict[str, Any]:
    """A `runs` row: every column in table order, None where not given."""
    return _row(RUNS_COLUMNS, "runs", values)


def node_row(result: object | None = None, /, **values: Any) -> dict[str, Any]:
    """A `node_runs` row from keyword values, the rest read from `result` (a NodeResult, or
    anything with attributes named like the columns), else None."""
    if result is not None:
        values = {c: getattr(result, c, None) for c in _RESULT_COLUMNS} | values
    return _row(NODE_RUNS_COLUMNS, "node_runs", values)


def workflow_row(**values: Any) -> dict[str, Any]:
    """A `workflows` row: one version of a workflow file, by content hash."""
    return _row(WORKFLOWS_COLUMNS, "workflows", values)


def table_row(table: str, **values: Any) -> dict[str, Any]:
    """A row of any table in `tables.TABLES` (the experiment tables are written this way)."""
    return _row(TABLES[table], table, values)


def arrow_table(table: str, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows as an Arrow table typed like `table`, for `TelemetryStore.bulk_load`; timestamps
    may be datetimes or epoch microseconds (the demo generator's fast path)."""
    import pyarrow as pa

    types = {
        "VARCHAR": pa.string(),
        "TIMESTAMP": pa.timestamp("us"),
        "DOUBLE": pa.float64(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "BOOLEAN": pa.bool_(),
        "BLOB": pa.binary(),
    }
    columns = TABLES[table]
    names = list(rows[0]) if rows else list(columns)
    arrays = {}
    for name in names:
        values = [row[name] for row in rows]
        sql_type = columns[name]
        if sql_type == "TIMESTAMP" and any(isinstance(v, int) for v in values):
            arrays[name] = pa.array(values, pa.int64()).cast(types[sql_type])
        else:
            arrays[name] = pa.array(values, types[sql_type])
    return pa.table(arrays)

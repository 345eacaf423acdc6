"""The batch's output file: one record per row that ran, in dataset order, with its outputs,
status, cost and run id. Written from `batch_rows` after the batch stops, so a resumed
batch's file holds the rows of every attempt; JSON lines or Parquet, both written by DuckDB.
"""

from __future__ import annotations

from pathlib import Path

from core.telemetry import get_store

FORMATS = {".jsonl": "json", ".parquet": "parquet"}

# Each row's latest line (a row has one, unless an older version of it was recorded twice).
_ROWS_SQL = """
SELECT row, status, run_id, cost_usd, simulated_cost_usd, simulated, duration_ms, error,
    outputs
FROM batch_rows WHERE batch_id = ?
QUALIFY row_number() OVER (PARTITION BY row ORDER BY recorded_at DESC) = 1
ORDER BY row
"""


def check_output_path(path: Path) -> str | None:
    """Why `path` cannot take the output (checked before anything runs), or None."""
    if path.suffix.lower() not in FORMATS:
        return f"--output: {path} must end in .jsonl or .parquet"
    if not path.parent.is_dir():
        return f"--output: folder {path.parent} does not exist"
    return None


def write_output(home: Path, batch_id: str, path: Path) -> int:
    """Writes the file (replacing it) and returns how many rows it holds: one statement, so
    the database is held no longer than one query."""
    fmt = FORMATS[path.suffix.lower()]
    target = str(path).replace("'", "''")
    # A row's outputs are a JSON object in the file; one cut for length stays text.
    select = (
        "SELECT * REPLACE (CASE WHEN json_valid(outputs) THEN outputs::JSON"
        f" ELSE to_json(outputs) END AS outputs) FROM ({_ROWS_SQL}) ORDER BY row"
    )
    with get_store(home).connect() as con:
        (written,) = con.execute(
            f"COPY ({select}) TO '{target}' (FORMAT {fmt})", [batch_id]
        ).fetchone()
    return int(written)

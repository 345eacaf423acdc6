"""A batch in telemetry: its definition and status (`batches`), and one `batch_rows` line per
row that ran. Rows are read back for `--resume` (which rows have a line) and for the output
file (each row's latest line)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core.executors.jobs import RowResult
from core.telemetry import TelemetryStore, get_store
from core.telemetry.rows import table_row
from core.telemetry.spool import encode, writer_alive
from core.workflow import Workflow

RUNNING = "running"
FINISHED = "finished"


class UnknownBatch(LookupError):
    """`--resume ID` names no recorded batch."""


class BatchConflict(ValueError):
    """`--resume` cannot go on: another workflow or dataset, another mode, a live process."""


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    workflow_hash: str
    dataset_hash: str
    rows: int
    simulated: bool
    status: str
    writer_id: str | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record_batch(
    store: TelemetryStore,
    batch_id: str,
    workflow: Workflow,
    dataset: str,
    dataset_hash: str,
    rows: int,
    simulated: bool,
    executor: str,
) -> None:
    now = _now()
    row = table_row(
        "batches",
        batch_id=batch_id,
        workflow=workflow.name,
        workflow_hash=workflow.hash,
        workflow_file=workflow.filename,
        dataset=dataset,
        dataset_hash=dataset_hash,
        rows=rows,
        simulated=simulated,
        executor=executor,
        created_at=now,
        status=RUNNING,
        updated_at=now,
        writer_id=store.writer_id,
    )
    store.record("batch", row)


def record_status(
    store: TelemetryStore, batch_id: str, status: str, error: str | None = None
) -> None:
    row = table_row(
        "batches",
        batch_id=batch_id,
        status=status,
        updated_at=_now(),
        error=error,
        writer_id=store.writer_id if status == RUNNING else None,
    )
    store.record("batch_status", row)


def _row(batch_id: str, result: RowResult) -> dict[str, Any]:
    return table_row(
        "batch_rows",
        batch_id=batch_id,
        row=result.row,
        run_id=result.run_id,
        status=result.status,
        error=result.error,
        cost_usd=result.cost_usd,
        simulated_cost_usd=result.simulated_cost_usd,
        simulated=result.simulated,
        duration_ms=result.duration_ms,
        outputs=orjson.dumps(result.outputs, default=str).decode(),
        recorded_at=_now(),
    )


def record_row(store: TelemetryStore, batch_id: str, result: RowResult) -> None:
    """A row run in this process: its line follows its run's events through the spool."""
    store.record("batch_row", _row(batch_id, result))


def row_lines(batch_id: str, results: list[RowResult]) -> bytes:
    """Spool lines of rows run elsewhere, to load with their runs' telemetry as one segment."""
    return b"".join(encode({"event": "batch_row", **_row(batch_id, r)}) for r in results)


def find_batch(home: Path, batch_id: str) -> BatchRecord:
    found = get_store(home).query(
        "SELECT batch_id, workflow_hash, dataset_hash, rows, simulated, status, writer_id"
        " FROM batches WHERE batch_id = ?",
        [batch_id],
    )
    if not found:
        raise UnknownBatch(f"no batch '{batch_id}' in {home}")
    return BatchRecord(*found[0])


def check_resumable(
    home: Path, record: BatchRecord, workflow: Workflow, dataset_hash: str, simulated: bool
) -> None:
    """Raises BatchConflict unless `--resume` would finish the same batch, alone."""
    if record.workflow_hash != workflow.hash or record.dataset_hash != dataset_hash:
        raise BatchConflict(
            f"batch {record.batch_id} ran another version of the workflow or the dataset: "
            "start a new batch instead of --resume"
        )
    if record.simulated != simulated:
        mode = "with --simulate" if record.simulated else "without --simulate"
        raise BatchConflict(f"batch {record.batch_id}: --resume it {mode}")
    spool = get_store(home).spool
    if record.status == RUNNING and record.writer_id and writer_alive(spool, record.writer_id):
        raise BatchConflict(f"batch {record.batch_id} is still running in another process")


def recorded_rows(home: Path, batch_id: str) -> set[int]:
    """The rows that already have a line: `--resume` runs the others."""
    found = get_store(home).query(
        "SELECT DISTINCT row FROM batch_rows WHERE batch_id = ?", [batch_id]
    )
    return {row for (row,) in found}


def totals(home: Path, batch_id: str) -> tuple[int, int, float, int]:
    """(rows done, rows failed, cost, rows with a run but no price) over every attempt."""
    (done, failed, cost, unpriced) = get_store(home).query(
        "SELECT count(*), count(*) FILTER (WHERE status <> 'success'),"
        " coalesce(sum(cost_usd), 0), count(*) FILTER (WHERE cost_usd IS NULL"
        " AND run_id IS NOT NULL)"
        " FROM (SELECT * FROM batch_rows WHERE batch_id = ?"
        " QUALIFY row_number() OVER (PARTITION BY row ORDER BY recorded_at DESC) = 1)",
        [batch_id],
    )[0]
    return done, failed, cost, unpriced

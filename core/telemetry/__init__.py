"""Node-level telemetry: cheap to record, safe with many processes, never lost when one dies.

Why it is built this way:

- Opening a DuckDB file costs ~20 ms and a one-row insert ~0.8 ms, against an engine budget
  of well under 50 µs per node. So recording an event only appends one JSON line, with one
  write(), to a spool segment this process owns (`spool/<writer_id>/000001.jsonl`, ...).
  The OS keeps what was written even if the process is killed the next instant; at worst
  the line being written is cut short, and the loader skips it.
- DuckDB admits one writing process at a time, and even a read-only connection blocks
  writers. So no process keeps a connection: segments are loaded in batches, each with one
  short connection and one transaction, retried with jittered backoff while another process
  holds the file. If it stays busy the segments simply wait on disk for the next ingest;
  the engine never sees an error and no event is dropped.
- A crash between the commit and the deletion of the loaded files must not duplicate rows,
  so the ids of loaded segments go into a ledger table in the same transaction.
- A killed process cannot load its own spool. Each writer holds an flock on its directory
  for its whole life, which the OS drops when the process dies, however it dies. Whoever
  ingests next takes over unlocked directories, loads what the dead process finished and
  marks its unfinished runs as interrupted, so they do not read 'running' forever.

All access to the database file goes through a store (`get_store(home).connect()`), which
also keeps this process's own connections from colliding.
"""

from core.telemetry.store import TelemetryBusy, TelemetryStore, get_store
from core.telemetry.tables import INTERRUPTED_ERROR, NODE_RUNS_COLUMNS, RUNS_COLUMNS

__all__ = [
    "INTERRUPTED_ERROR",
    "NODE_RUNS_COLUMNS",
    "RUNS_COLUMNS",
    "TelemetryBusy",
    "TelemetryStore",
    "get_store",
]

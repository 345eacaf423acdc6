"""Node-level telemetry: cheap to record (one appended line per event), safe with many
processes (no process holds the database), never lost when one dies (a dead writer's spool
is taken over). The design is in docs/telemetry-write-path.md; the tables in
docs/telemetry.md.

May import: the base modules only. All access to the database goes through a store
(`get_store(home)`), which also keeps this process's own connections from colliding.
"""

from core.telemetry.store import TelemetryBusy, TelemetryStore, TelemetryUnavailable, get_store
from core.telemetry.tables import INTERRUPTED_ERROR, NODE_RUNS_COLUMNS, RUNS_COLUMNS

__all__ = [
    "INTERRUPTED_ERROR",
    "NODE_RUNS_COLUMNS",
    "RUNS_COLUMNS",
    "TelemetryBusy",
    "TelemetryStore",
    "TelemetryUnavailable",
    "get_store",
]

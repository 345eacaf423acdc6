"""Node-level telemetry: cheap to record, safe with many processes, never lost when one dies.

Why it is built this way:

- Opening a DuckDB file costs ~20 ms and a one-row insert ~1 ms, against an engine budget of
  well under 50 µs per node. So recording an event only appends one JSON line, with a single
  write(), to a spool segment this process owns (`spool/<writer_id>/000001.jsonl`, ...).
  The OS keeps what was written even when the process is killed the next instant; at worst
  the line being written is cut short, and DuckDB's parser skips it.
- DuckDB admits one writing process at a time, and even a read-only connection blocks
  writers. So no process keeps a connection: a batch of segments is loaded with one short
  connection and one transaction, retried with jittered backoff when another process holds
  the file. When the file stays busy the segments simply wait on disk for the next ingest;
  the engine never sees an error and no event is dropped.
- A crash between the commit and the deletion of the loaded files must not duplicate rows,
  so the ids of loaded segments go into a ledger table in the same transaction.
- A killed process cannot ingest its own spool. Each writer holds an flock on its
  `owner.lock` for its whole life; the OS drops it when the process dies, however it dies,
  which tells a live owner from a dead one without trusting PIDs that may have been reused.
  Whoever ingests next takes over unlocked directories, loads what the dead process
  finished and marks its unfinished runs as interrupted, so they do not read 'running'
  forever.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import random
import secrets
import shutil
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas

log = logging.getLogger(__name__)

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
LEDGER_TABLE = "telemetry_segments"
LEDGER_COLUMNS: dict[str, str] = {"segment": "VARCHAR", "ingested_at": "TIMESTAMP"}
TABLES = {"runs": RUNS_COLUMNS, "node_runs": NODE_RUNS_COLUMNS, LEDGER_TABLE: LEDGER_COLUMNS}

INTERRUPTED_ERROR = "interrupted: the process running this workflow exited before it finished"

DB_FILE = "telemetry.duckdb"
SPOOL_DIR = "spool"
OWNER_LOCK = "owner.lock"
SEGMENT_GLOB = "*.jsonl"
# A directory is created under this prefix and renamed once its lock is held, so nobody can
# mistake a writer that is still starting up for a dead one.
STARTING_PREFIX = ".starting-"

# Retry budgets (seconds) for a busy database file.
EXIT_BUDGET = 10.0
BACKGROUND_BUDGET = 2.0
READ_BUDGET = 10.0
# Delays (seconds) before the background thread retries an ingest that failed.
RETRY_MIN = 1.0
RETRY_MAX = 60.0

# Everything is read from the spool as text and cast in SQL: a badly typed value becomes
# NULL instead of making the parser drop the whole event.
_SPOOL_COLUMNS = {"event": "VARCHAR"} | {c: "VARCHAR" for c in RUNS_COLUMNS | NODE_RUNS_COLUMNS}


class TelemetryBusy(TimeoutError):
    """The database stayed locked by another process for the whole retry budget."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _jsonable(value: Any) -> Any:
    """Times are stored as naive UTC, so aware datetimes are converted before they are lost."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


# Built once: a pre-made encoder skips json.dumps' per-call setup, a large share of the cost.
_ENCODER = json.JSONEncoder(default=_jsonable, separators=(",", ":"))


def _is_lock_error(exc: duckdb.Error) -> bool:
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


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
]
# Runs a dead writer left open. Totals are filled from the nodes it finished, since those
# calls were made and paid for; the end time is the last thing known to have happened.
_INTERRUPT_SQL = """
UPDATE runs SET
    status = 'failed', error = $error, finished_at = x.fin,
    duration_ms = date_diff('microsecond', runs.started_at, x.fin) / 1000.0,
    input_tokens = coalesce(runs.input_tokens, x.input_tokens),
    output_tokens = coalesce(runs.output_tokens, x.output_tokens),
    cost_usd = coalesce(runs.cost_usd, x.cost_usd),
    unpriced_calls = coalesce(runs.unpriced_calls, x.unpriced_calls),
    cache_hits = coalesce(runs.cache_hits, x.cache_hits),
    saved_cost_usd = coalesce(runs.saved_cost_usd, x.saved_cost_usd),
    node_count = coalesce(runs.node_count, x.node_count)
FROM (
    SELECT r.run_id,
        coalesce(max(n.finished_at), max(r.started_at), $now) AS fin,
        sum(n.input_tokens) AS input_tokens, sum(n.output_tokens) AS output_tokens,
        sum(n.cost_usd) AS cost_usd,
        count_if(n.node_type = 'llm' AND n.cost_usd IS NULL) AS unpriced_calls,
        count_if(n.cache_hit) AS cache_hits, sum(n.saved_cost_usd) AS saved_cost_usd,
        count(n.run_id) AS node_count
    FROM runs r LEFT JOIN node_runs n ON n.run_id = r.run_id
    WHERE list_contains($writers, r.writer_id) AND r.status = 'running'
    GROUP BY r.run_id
) AS x
WHERE runs.run_id = x.run_id
"""


def _try_lock(directory: Path) -> int | None:
    """The fd holding `directory`'s owner lock, or None while its owner is alive."""
    try:
        fd = os.open(directory / OWNER_LOCK, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _segments(directory: Path) -> list[Path]:
    try:
        return sorted(directory.glob(SEGMENT_GLOB))
    except FileNotFoundError:
        return []


def _remove_dir(directory: Path) -> None:
    """Segments first, lock last: a half-removed directory still reads as dead, never live."""
    for path in _segments(directory):
        path.unlink(missing_ok=True)
    (directory / OWNER_LOCK).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


class _Writer:
    """This process's spool directory and its current segment."""

    def __init__(self, spool: Path, writer_id: str) -> None:
        self.spool = spool
        self.dir = spool / writer_id
        self.seq = 0
        self.fd = -1
        self.lock_fd = -1
        self._make_dir()

    def _make_dir(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        starting = self.spool / f"{STARTING_PREFIX}{self.dir.name}"
        starting.mkdir()
        self.lock_fd = os.open(starting / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        starting.rename(self.dir)

    def _open_segment(self) -> int:
        path = self.dir / f"{self.seq:06d}.jsonl"
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def append(self, line: bytes) -> None:
        if self.fd < 0:
            # Numbering never restarts, so segment ids stay unique for the ledger.
            self.seq += 1
            try:
                self.fd = self._open_segment()
            except FileNotFoundError:
                # The data folder was removed under us: recreate our directory.
                os.close(self.lock_fd)
                self._make_dir()
                self.fd = self._open_segment()
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:
            # Whatever part of the line got out must end its segment, not prefix the next line.
            self.take_segments()
            raise

    def take_segments(self) -> list[Path]:
        """Closes the current segment, so every segment on disk is complete and can be loaded."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        return _segments(self.dir)

    def close(self, remove: bool) -> None:
        self.take_segments()
        if remove:
            _remove_dir(self.dir)
        os.close(self.lock_fd)


class _Orphan:
    """A dead writer's directory, locked by us while we take it over."""

    def __init__(self, directory: Path, lock_fd: int) -> None:
        self.dir = directory
        self.lock_fd = lock_fd
        self.segments = _segments(directory)


class TelemetryStore:
    """Telemetry for one data folder; use `get_store` to share one per process."""

    def __init__(self, home: Path) -> None:
        self.home = Path(home).resolve()
        self.db_path = self.home / DB_FILE
        self.spool = self.home / SPOOL_DIR
        self._reset()
        _all_stores.add(self)
        atexit.register(self._at_exit)

    def _reset(self) -> None:
        """Fresh per-process state; also run in a forked child, which must not share a spool."""
        host, pid = socket.gethostname(), os.getpid()
        self.writer_id = f"{host}-{pid}-{secrets.token_hex(4)}"
        # Stamped on each run so a dead writer's unfinished runs can be found.
        self._origin = {"writer_id": self.writer_id, "host": host, "pid": pid}
        self._writer: _Writer | None = None
        self._open_runs: set[str] = set()
        self._append_lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._wake = threading.Condition()
        self._requested = False
        self._thread: threading.Thread | None = None
        self._schema_ready = False

    # ----------------------------------------------------------------- recording events

    def run_started(self, row: dict) -> None:
        run_id = row.get("run_id")
        if run_id is not None:
            self._open_runs.add(run_id)
        self._append({"event": "run_started", **self._origin, **row})

    def node_finished(self, row: dict) -> None:
        self._append({"event": "node", **row})

    def run_finished(self, row: dict) -> None:
        self._append({"event": "run_finished", **row})
        self._open_runs.discard(row.get("run_id"))

    def _append(self, event: dict) -> None:
        line = (_ENCODER.encode(event) + "\n").encode()
        with self._append_lock:
            try:
                if self._writer is None:
                    self._writer = _Writer(self.spool, self.writer_id)
                self._writer.append(line)
            except OSError as exc:
                log.warning("telemetry event dropped, cannot write to %s: %s", self.spool, exc)

    # ----------------------------------------------------------------- ingesting

    def flush(self, timeout: float | None = None) -> bool:
        """Loads everything recorded so far; False if the database stayed busy for `timeout`
        seconds (default 10): the events then wait on disk for a later flush."""
        return self._ingest(EXIT_BUDGET if timeout is None else timeout)

    def flush_soon(self) -> None:
        """Asks the background thread for an ingest; requests made while one runs collapse
        into a single follow-up, so a busy engine never queues more than one."""
        with self._wake:
            self._requested = True
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._background, name="telemetry-ingest", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _background(self) -> None:
        # After a failed ingest the thread tries again by itself, backing off, so events of
        # an idle process do not wait for its next run or its exit to become visible.
        retry: float | None = None
        while True:
            with self._wake:
                if not self._requested:
                    self._wake.wait(retry)
                self._requested = False
            if self._ingest(BACKGROUND_BUDGET):
                retry = None
            else:
                retry = min(retry * 2, RETRY_MAX) if retry else RETRY_MIN

    def _ingest(self, budget: float) -> bool:
        """One ingest of our own segments and of any dead writer's; never raises, since
        telemetry must not fail a run. True when nothing we could load is left behind."""
        deadline = time.monotonic() + budget
        if not self._ingest_lock.acquire(timeout=max(budget, 0)):
            return False
        orphans: list[_Orphan] = []
        try:
            with self._append_lock:
                own = self._writer.take_segments() if self._writer else []
            orphans = self._claim_orphans()
            if not own and not orphans and self._schema_ready and self.db_path.exists():
                return True
            segments = own + [p for o in orphans for p in o.segments]
            with self._open(read_only=False, deadline=deadline) as con:
                self._load(con, segments, [o.dir.name for o in orphans])
            for path in own:
                path.unlink(missing_ok=True)
            for orphan in orphans:
                _remove_dir(orphan.dir)
            return True
        except TelemetryBusy:
            log.info("telemetry database busy; %s stays in the spool for later", self.spool)
            return False
        except Exception:
            log.exception("telemetry ingest failed; events stay in %s", self.spool)
            return False
        finally:
            for orphan in orphans:
                os.close(orphan.lock_fd)
            self._ingest_lock.release()

    def _claim_orphans(self) -> list[_Orphan]:
        try:
            entries = list(os.scandir(self.spool))
        except FileNotFoundError:
            return []
        orphans = []
        for entry in entries:
            directory = Path(entry.path)
            if not entry.is_dir() or entry.name == self.writer_id:
                continue
            fd = _try_lock(directory)
            if entry.name.startswith(STARTING_PREFIX):
                # Died before it got going: it never wrote a segment.
                if fd is not None:
                    shutil.rmtree(directory, ignore_errors=True)
                    os.close(fd)
            elif fd is not None:
                orphans.append(_Orphan(directory, fd))
            elif not (directory / OWNER_LOCK).exists():
                # Left by a takeover that crashed after removing the lock: nothing left in it.
                with contextlib.suppress(OSError):
                    directory.rmdir()
        return orphans

    def _load(self, con: duckdb.DuckDBPyConnection, segments: list[Path], dead: list[str]) -> None:
        ids = [f"{p.parent.name}/{p.name}" for p in segments]
        con.execute("BEGIN")
        done = {
            row[0]
            for row in con.execute(
                f"SELECT segment FROM {LEDGER_TABLE} WHERE list_contains(?, segment)", [ids]
            ).fetchall()
        }
        fresh = [(p, i) for p, i in zip(segments, ids, strict=True) if i not in done]
        now = _utcnow()
        if fresh:
            con.execute(
                "CREATE TEMP TABLE spool AS SELECT * FROM read_json(?, columns = ?,"
                " format = 'newline_delimited', ignore_errors = true)",
                [[str(p) for p, _ in fresh], _SPOOL_COLUMNS],
            )
            for sql in _INGEST_SQL:
                con.execute(sql)
            con.execute(
                f"INSERT INTO {LEDGER_TABLE} SELECT unnest(?), ?", [[i for _, i in fresh], now]
            )
        if dead:
            con.execute(_INTERRUPT_SQL, {"error": INTERRUPTED_ERROR, "now": now, "writers": dead})
        con.execute("COMMIT")

    # ----------------------------------------------------------------- reading

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one query. Hold it briefly: while open, no other process can
        write. Whatever is waiting in the spool is loaded first, so reads are current."""
        self._ingest(BACKGROUND_BUDGET)
        with self._open(read_only, time.monotonic() + READ_BUDGET) as con:
            yield con

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with self.connect() as con:
            return con.execute(sql, params).fetchall()

    def query_df(self, sql: str, params: list | None = None) -> pandas.DataFrame:
        with self.connect() as con:
            return con.execute(sql, params).df()

    def data_version(self) -> str:
        """Changes whenever the data may have: a cache key that costs a few stat() calls."""
        parts = []
        for path in (self.db_path, self.db_path.with_name(DB_FILE + ".wal")):
            try:
                st = path.stat()
                parts.append(f"{st.st_mtime_ns}:{st.st_size}")
            except FileNotFoundError:
                parts.append("-")
        try:
            dirs = [Path(e.path) for e in os.scandir(self.spool) if e.is_dir()]
        except FileNotFoundError:
            dirs = []
        parts.append(str(sum(len(_segments(d)) for d in dirs)))
        return "/".join(parts)

    @contextlib.contextmanager
    def _open(self, read_only: bool, deadline: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried with jittered backoff while another process has the file.
        Connections within the process are serialised: DuckDB refuses a read-only and a
        read-write connection to one file in the same process."""
        lock = _db_lock(self.db_path)
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise TelemetryBusy(f"{self.db_path} is busy in this process")
        try:
            needs_schema = not self._schema_ready or not self.db_path.exists()
            if needs_schema and read_only:
                # Even a reader may be the first user: a brief write creates the tables.
                with contextlib.closing(self._connect(False, deadline)) as con:
                    self._create_schema(con)
            con = self._connect(read_only, deadline)
            try:
                if needs_schema and not read_only:
                    self._create_schema(con)
                self._schema_ready = True
                con.execute("SET TimeZone = 'UTC'")
                yield con
            finally:
                con.close()
        finally:
            lock.release()

    def _connect(self, read_only: bool, deadline: float) -> duckdb.DuckDBPyConnection:
        delay = 0.005
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except duckdb.Error as exc:
                remaining = deadline - time.monotonic()
                if not _is_lock_error(exc):
                    raise
                if remaining <= 0:
                    raise TelemetryBusy(f"{self.db_path} stayed locked: {exc}") from exc
                time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
                delay = min(delay * 2, 0.25)

    def _create_schema(self, con: duckdb.DuckDBPyConnection) -> None:
        """Creates the tables, and adds columns an older version of this module did not have."""
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

    # ----------------------------------------------------------------- lifecycle

    def _at_exit(self) -> None:
        """Loads what this process recorded. Its directory goes only when nothing is left
        to take over: leftover segments, or runs that never finished, make it an orphan
        that the next process to touch the store will load and mark as interrupted."""
        if self._writer is None:
            return
        done = self.flush(EXIT_BUDGET)
        with self._append_lock:
            if self._writer is not None:
                remove = done and not self._open_runs and not self._writer.take_segments()
                self._writer.close(remove=remove)
                self._writer = None

    def _after_fork(self) -> None:
        if self._writer is not None:
            # The child's copies only: the parent keeps its lock and segment.
            for fd in (self._writer.fd, self._writer.lock_fd):
                if fd >= 0:
                    os.close(fd)
        self._reset()


_all_stores: weakref.WeakSet[TelemetryStore] = weakref.WeakSet()
_stores: dict[Path, TelemetryStore] = {}
_db_locks: dict[Path, threading.RLock] = {}
_registry_lock = threading.Lock()


def get_store(home: Path) -> TelemetryStore:
    """The process's store for `home`: one writer directory and one background thread each."""
    key = Path(home).resolve()
    with _registry_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = TelemetryStore(key)
        return store


def _db_lock(db_path: Path) -> threading.RLock:
    with _registry_lock:
        return _db_locks.setdefault(db_path, threading.RLock())


def _after_fork_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    _db_locks.clear()
    for store in list(_all_stores):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

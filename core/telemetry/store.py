"""TelemetryStore: records events into the spool, loads them into DuckDB, serves queries."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import logging
import os
import random
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from core.settings import DB_FILE, SPOOL_DIR
from core.telemetry import content, quarantine, spool, tables
from core.telemetry.spool import Orphan, Writer

if TYPE_CHECKING:
    import pandas

log = logging.getLogger("core.telemetry")


# Retry budgets (seconds) for a database file another process holds. Once a flush has found it
# busy, the flush at exit waits only SHORT_EXIT_BUDGET: the events wait in the spool anyway,
# and a command must not hang for long because someone holds the database.
EXIT_BUDGET = 10.0
SHORT_EXIT_BUDGET = 0.5
BACKGROUND_BUDGET = 2.0
BEFORE_READ_BUDGET = 1.0
READ_BUDGET = 2.0
# Delays (seconds) before the background thread retries an ingest that failed.
RETRY_MIN = 1.0
RETRY_MAX = 60.0
# Longest pause (seconds) between two tries for the database: short, since under contention
# a long sleep leaves the file idle while several processes wait for it.
MAX_RETRY_DELAY = 0.05
# Least time (seconds) between two background ingests.
BACKGROUND_INTERVAL = 0.5


class TelemetryBusy(TimeoutError):
    """The database stayed locked by another process for the whole retry budget."""


class TelemetryUnavailable(RuntimeError):
    """The database file cannot be opened for another reason than someone holding it: damaged,
    truncated, not a database, on a read-only disk. The message says what to do."""


def is_lock_error(exc: duckdb.Error) -> bool:
    """DuckDB's refusal because another process has the file (an IOException in duckdb 2.0,
    whether the other holds it read-write or read-only)."""
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


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
        self._writer: Writer | None = None
        self._open_runs: set[str] = set()
        self._versions_seen: set[str] = set()
        self._append_lock = threading.Lock()
        self._ingest_lock = threading.Lock()
        self._wake = threading.Condition()
        self._requested = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._schema_ready = False
        self._lock_fd = -1  # the cross-process lock file, opened on first use
        self._lock_depth = 0  # connections open under it (nested ones in one thread)
        self._warned: set[str] = set()
        self._impatient = False  # a flush found the database unusable: do not wait at exit
        self._retention_applied = False  # content retention runs once per process
        self._captured: list[bytes] | None = None  # see capture()

    # ----------------------------------------------------------------- recording events

    def run_started(self, row: dict) -> None:
        run_id = row.get("run_id")
        if run_id is not None:
            self._open_runs.add(run_id)
        self._append({"event": "run_started", **row, **self._origin})

    def workflow_seen(self, row: dict) -> None:
        """Records a workflow version (hash, name, file, source) once per process."""
        if row["workflow_hash"] in self._versions_seen:
            return
        self._versions_seen.add(row["workflow_hash"])
        self._append({"event": "workflow", **row})

    def node_finished(self, row: dict) -> None:
        """Takes `row` over (it gains its event key): one per node, so no copy is made."""
        row["event"] = "node"
        self._append(row)

    def run_finished(self, row: dict) -> None:
        self._append({"event": "run_finished", **row})
        self._open_runs.discard(row.get("run_id"))

    def record(self, event: str, row: dict) -> None:
        """An experiment's event (tables.EXPERIMENT_EVENTS): its definition, a status, an
        item, a cell or a score; a batch's (tables.BATCH_EVENTS); or a node call's stored
        text or its reference to them (tables.CONTENT_EVENTS): written through the spool
        like a run's."""
        if event not in tables.RECORDED_EVENTS:
            raise ValueError(f"unknown telemetry event {event!r}")
        self._append({"event": event, **row})

    def capture(self) -> None:
        """From now on, keeps this store's events in memory for `take_captured` instead of
        spooling them: an executor's worker ships them to the machine that owns the
        telemetry, which records them with `record_segments`."""
        with self._append_lock:
            self._captured = []

    def take_captured(self) -> bytes:
        """The spool lines captured since the last call (see `capture`)."""
        with self._append_lock:
            lines, self._captured = b"".join(self._captured or []), []
        return lines

    def record_segments(
        self, segments: list[tuple[str, bytes]], timeout: float = EXIT_BUDGET
    ) -> bool:
        """Loads spool lines recorded elsewhere (a worker's runs, node rows and batch rows),
        given as (key, lines) segments, in one transaction, each at most once per key: the
        ledger keeps the keys, so a segment that arrives again (a chunk re-run after its
        worker died) is not counted twice. True when loaded (now or before); False when the
        database stayed busy: the lines then wait in this process's spool, to be loaded with
        its other events."""
        token = secrets.token_hex(4)
        files = [
            self.spool / f".incoming-{self.writer_id}-{token}-{n}.jsonl"
            for n in range(len(segments))
        ]
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            for path, (_, lines) in zip(files, segments, strict=True):
                path.write_bytes(lines)
            with self._open(read_only=False, deadline=time.monotonic() + timeout) as con:
                tables.load(con, files, [], ids=[f"segment:{key}" for key, _ in segments])
            return True
        except (TelemetryBusy, TelemetryUnavailable):
            self._impatient = True
            for _, lines in segments:
                self._append_lines(lines)
            return False
        finally:
            for path in files:
                path.unlink(missing_ok=True)

    def _append(self, event: dict) -> None:
        self._append_lines(spool.encode(event))

    def _append_lines(self, lines: bytes) -> None:
        with self._append_lock:
            if self._captured is not None:
                self._captured.append(lines)
                return
            try:
                if self._writer is None:
                    self._writer = Writer(self.spool, self.writer_id)
                self._writer.append(lines)
            except OSError as exc:
                self._warn_once(
                    "write",
                    f"telemetry: cannot write to {self.spool} ({exc.strerror or exc}); "
                    "events of this process are not recorded",
                )

    @property
    def dropped_events(self) -> bool:
        """Whether an event could not even be written to the spool (and so is lost)."""
        return "write" in self._warned

    def _warn_once(self, kind: str, message: str) -> None:
        """One line per kind of trouble and process: a command prints it once, not per event."""
        if kind not in self._warned:
            self._warned.add(kind)
            log.warning("%s", message)

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
        while not self._stop.is_set():
            with self._wake:
                if not self._requested:
                    self._wake.wait(retry)
                self._requested = False
            if self._stop.is_set():
                return
            if self._ingest(BACKGROUND_BUDGET):
                retry = None
            else:
                retry = min(retry * 2, RETRY_MAX) if retry else RETRY_MIN
            # Let requests pile up between ingests: an engine finishing runs every millisecond
            # would otherwise keep this thread ingesting back to back, taking the GIL from the
            # event loop each time it touches Python.
            self._stop.wait(BACKGROUND_INTERVAL)

    def _ingest(self, budget: float, before_read: bool = False) -> bool:
        """Loads our own segments and any dead writer's. Never raises, since telemetry must
        not fail a run; True when nothing we could load is left behind. `before_read`: an
        unusable database goes unmentioned, since the read that follows reports it."""
        deadline = time.monotonic() + budget
        if not self._ingest_lock.acquire(timeout=max(budget, 0)):
            self._impatient = True  # another ingest of ours is waiting for the database
            return False
        orphans: list[Orphan] = []
        try:
            with self._append_lock:
                own = self._writer.take_segments() if self._writer else []
            orphans = spool.claim_orphans(self.spool, self.writer_id)
            if not own and not orphans:
                return True
            batch = self._screen(own + [p for o in orphans for p in o.segments])
            with self._open(read_only=False, deadline=deadline) as con:
                self._load(con, batch, [o.dir.name for o in orphans])
                self._apply_retention(con)
            for path in own:
                path.unlink(missing_ok=True)
            for orphan in orphans:
                spool.remove_dir(orphan.dir)
            self._impatient = False
            return True
        except TelemetryBusy:
            self._impatient = True
            log.info("telemetry database busy; %s stays in the spool for later", self.spool)
            return False
        except TelemetryUnavailable as exc:
            self._impatient = True
            if not before_read:
                self._warn_once("unavailable", f"telemetry: {exc}")
            return False
        except Exception as exc:
            self._impatient = True
            self._warn_once(
                "ingest",
                f"telemetry: loading {self.spool} failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); its events wait there",
            )
            log.debug("telemetry ingest failed", exc_info=True)
            return False
        finally:
            for orphan in orphans:
                orphan.release()
            self._ingest_lock.release()

    def _apply_retention(self, con: duckdb.DuckDBPyConnection) -> None:
        """Once per process, after its first load: prompts and responses older than the
        retention setting go (docs/telemetry.md). A bad setting is one warning, never a
        failed load."""
        if self._retention_applied:
            return
        self._retention_applied = True
        try:
            days = content.retention_days()
        except content.RetentionError as exc:
            self._warn_once("retention", f"telemetry: {exc}; content is kept")
            return
        if days is not None:
            content.prune_content(con, content.retention_cutoff(days))

    def _screen(self, segments: list[Path]) -> list[tuple[Path, Path]]:
        """(file to read, segment it stands for) for each segment that can be loaded: not a
        regular file, it is quarantined; long enough to hold a line over the limit, its lines
        are screened first (the engine's segments are far smaller, so this costs one stat)."""
        batch = []
        for number, path in enumerate(segments):
            reason = quarantine.not_a_file(path)
            if reason is not None:
                if reason != "vanished":
                    quarantine.move_aside(self.spool, path, reason)
                continue
            try:
                large = path.stat().st_size > quarantine.MAX_LINE_BYTES
            except OSError:
                continue
            if not large:
                batch.append((path, path))
                continue
            copy = self._salvaged(path, number)
            if copy is not None:
                batch.append((copy, path))
        return batch

    def _salvaged(self, segment: Path, number: int) -> Path | None:
        """A copy of `segment` without the lines that cannot be events (quarantined)."""
        copy = self.spool / quarantine.QUARANTINE_DIR / f".salvage-{self.writer_id}-{number}"
        copy.parent.mkdir(exist_ok=True)
        return quarantine.salvage(self.spool, segment, copy)

    def _load(
        self, con: duckdb.DuckDBPyConnection, batch: list[tuple[Path, Path]], dead: list[str]
    ) -> None:
        """Loads the batch in one transaction; if DuckDB refuses it because of some file,
        that segment is quarantined and the rest loads without it. Stand-in copies go once
        their segment's rows have landed."""
        try:
            self._load_batch(con, batch, dead)
            return
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            faults = {pair: tables.unreadable(pair[0]) for pair in batch}
            if not any(faults.values()):
                raise  # the database's fault, not a file's: everything stays in the spool
        for (file, segment), fault in faults.items():
            if fault is not None:
                if file != segment:
                    file.unlink(missing_ok=True)
                quarantine.move_aside(self.spool, segment, f"cannot be loaded ({fault})")
        self._load_batch(con, [pair for pair, fault in faults.items() if fault is None], dead)

    def _load_batch(
        self, con: duckdb.DuckDBPyConnection, batch: list[tuple[Path, Path]], dead: list[str]
    ) -> None:
        tables.load(con, [f for f, _ in batch], dead, ids=[tables.segment_id(s) for _, s in batch])
        for file, segment in batch:
            if file != segment:
                file.unlink(missing_ok=True)

    def bulk_load(self, data: Mapping[str, Any], timeout: float = EXIT_BUDGET) -> None:
        """Inserts whole columnar tables (Arrow tables or DataFrames, keyed by table name) in
        one transaction: the path for generated history, where spooling one event per row
        would take hours. Columns a table leaves out are NULL."""
        unknown = set(data) - set(tables.TABLES)
        if unknown:
            raise ValueError(f"unknown telemetry tables: {', '.join(sorted(unknown))}")
        with self._open(read_only=False, deadline=time.monotonic() + timeout) as con:
            con.execute("BEGIN")
            for table, rows in data.items():
                columns = list(getattr(rows, "column_names", None) or rows.columns)
                listed = ", ".join(columns)
                con.register("bulk_rows", rows)
                con.execute(f"INSERT INTO {table} ({listed}) SELECT {listed} FROM bulk_rows")
                if table == "node_runs":
                    con.execute(tables.add_to_rollup(_as_node_runs("bulk_rows", columns)))
                con.unregister("bulk_rows")
            con.execute("COMMIT")

    # ----------------------------------------------------------------- reading

    @contextlib.contextmanager
    def connect(self, read_only: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one query. Hold it briefly: while it is open no other process
        can write. Whatever waits in the spool is loaded first, so reads are current.
        Raises TelemetryBusy if other processes keep the file for too long."""
        self._ingest(BEFORE_READ_BUDGET, before_read=True)
        deadline = time.monotonic() + READ_BUDGET
        with self._open(read_only, deadline) as con:
            if tables.rollup_current(con):
                yield con
                return
        # Someone wrote node_runs around the store: recount before anyone reads the rollup,
        # unless another process did while this one waited for the file.
        with self._open(False, deadline) as con:
            if not tables.rollup_current(con):
                tables.rebuild_rollup(con)
        with self._open(read_only, deadline) as con:
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
        parts.append(str(spool.count_segments(self.spool)))
        return "/".join(parts)

    @contextlib.contextmanager
    def _open(self, read_only: bool, deadline: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried with jittered backoff while another process has the file.
        Connections within the process take turns: DuckDB refuses a read-only and a
        read-write connection to one file in the same process."""
        lock = _db_lock(self.db_path)
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0)):
            raise TelemetryBusy(f"{self.db_path} is busy in this process")
        try:
            needs_schema = not self._schema_ready or not self.db_path.exists()
            if needs_schema and read_only:
                # Even a reader may be the first user: a brief write creates the tables. On a
                # read-only disk the reader reads what is there.
                try:
                    self.home.mkdir(parents=True, exist_ok=True)
                    with self._connection(False, deadline) as con:
                        tables.create_schema(con)
                except (TelemetryUnavailable, OSError):
                    if not self.db_path.is_file():
                        raise
            with self._connection(read_only, deadline) as con:
                try:
                    if needs_schema and not read_only:
                        tables.create_schema(con)
                    self._schema_ready = True
                    con.execute("SET TimeZone = 'UTC'")
                    yield con
                except duckdb.IOException as exc:
                    # Past the connection, an I/O error is the file's: truncated, damaged, or
                    # on a full disk. Nothing a caller could catch by any other name.
                    raise TelemetryUnavailable(self._unusable(exc)) from exc
        finally:
            lock.release()

    @contextlib.contextmanager
    def _connection(self, read_only: bool, deadline: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB connection, made and closed while holding `telemetry.duckdb.lock`
        (shared to read, exclusive to write).

        DuckDB's own lock is not enough: with several processes opening, committing and
        closing the same file in turn, DuckDB 2.0 loses a committed transaction now and then
        (1 to 5 in 900 with six processes), and the spool, told the commit succeeded,
        deletes the segment. Holding a lock of our own from before the connection is made
        until after it is closed serialises those hand-overs; no loss has been seen since.
        """
        delay = 0.005
        while True:
            if self._lock_file(exclusive=not read_only):
                try:
                    con = duckdb.connect(str(self.db_path), read_only=read_only)
                except duckdb.Error as exc:
                    self._unlock_file()
                    if not is_lock_error(exc):
                        raise TelemetryUnavailable(self._unusable(exc)) from exc
                else:
                    try:
                        yield con
                    finally:
                        con.close()
                        self._unlock_file()
                    return
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (
                self._stop.is_set() and threading.current_thread() is self._thread
            ):
                raise TelemetryBusy(
                    f"{self.db_path} is held by another process; try again in a moment"
                )
            time.sleep(min(remaining, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def _lock_file(self, exclusive: bool) -> bool:
        """Takes the lock file without waiting; False while another process holds it. A
        folder where the lock cannot be created cannot be written either: readers go on.
        Only one thread at a time gets here (the process's database lock), so a depth count
        keeps a nested connection from releasing the lock its outer one still needs."""
        if self._lock_depth:
            self._lock_depth += 1
            return True
        if self._lock_fd < 0:
            try:
                self._lock_fd = os.open(
                    self.db_path.with_name(DB_FILE + ".lock"),
                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                    0o644,
                )
            except OSError as exc:
                if exclusive:
                    raise TelemetryUnavailable(
                        f"cannot write in {self.home} ({exc.strerror}); set "
                        "CONFIGURABLE_AGENTS_HOME to a writable folder"
                    ) from exc
                return True
        try:
            mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            fcntl.flock(self._lock_fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self._lock_depth = 1
        return True

    def _unlock_file(self) -> None:
        self._lock_depth = max(self._lock_depth - 1, 0)
        if self._lock_depth == 0 and self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _unusable(self, exc: duckdb.Error) -> str:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return (
            f"{self.db_path} cannot be used ({reason}). If the file is damaged, move it aside "
            f"(the next command starts a new one); until then events wait in {self.spool}"
        )

    # ----------------------------------------------------------------- lifecycle

    def _at_exit(self) -> None:
        """Loads what this process recorded. Its directory goes only when nothing is left
        to take over: leftover segments, or runs that never finished, make it an orphan
        that the next process to touch the store loads and marks as interrupted."""
        # The ingest thread must be out of DuckDB before the interpreter finalises, or the
        # process can abort while tearing down a connection in use.
        self._stop.set()
        with self._wake:
            self._wake.notify()
        if self._thread is not None:
            # Waiting for the database, the thread gives up as soon as it sees the stop; in
            # the middle of a load, it must be let finish.
            self._thread.join(EXIT_BUDGET)
        if self._writer is None:
            return
        done = self.flush(SHORT_EXIT_BUDGET if self._impatient else EXIT_BUDGET)
        with self._append_lock:
            if self._writer is not None:
                remove = done and not self._open_runs and not self._writer.take_segments()
                self._writer.close(remove=remove)
                self._writer = None

    def _after_fork(self) -> None:
        if self._writer is not None:
            self._writer.forget()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # shared with the parent: a lock taken on it would be its
        self._reset()


def _as_node_runs(relation: str, columns: list[str]) -> str:
    """`relation` with node_runs' columns and types, as the insert stored it: what the
    rollup counts must be what node_runs holds."""
    typed = ", ".join(
        f"CAST({c if c in columns else 'NULL'} AS {t}) AS {c}"
        for c, t in tables.NODE_RUNS_COLUMNS.items()
    )
    return f"(SELECT {typed} FROM {relation})"


_all_stores: weakref.WeakSet[TelemetryStore] = weakref.WeakSet()
_stores: dict[Path | str, TelemetryStore] = {}
_db_locks: dict[Path, threading.RLock] = {}
_registry_lock = threading.Lock()


def get_store(home: Path) -> TelemetryStore:
    """The process's store for `home`: one writer directory and one background thread each."""
    store = _stores.get(home)  # every run asks; resolving the path each time costs syscalls
    if store is not None:
        return store
    key = Path(home).resolve()
    with _registry_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = TelemetryStore(key)
        _stores[home] = store
        return store


def _db_lock(db_path: Path) -> threading.RLock:
    with _registry_lock:
        return _db_locks.setdefault(db_path, threading.RLock())


def _after_fork_in_child() -> None:
    """Locks may have been held by threads that do not exist in the child."""
    global _registry_lock
    _registry_lock = threading.Lock()
    _db_locks.clear()
    for store in list(_all_stores):
        store._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

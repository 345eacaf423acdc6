"""The spool: per-process directories of JSON-lines segments waiting to be loaded.

A writer directory is `spool/<writer_id>/` holding `owner.lock` and `000001.jsonl`, ...
Its process holds an flock on `owner.lock` for its whole life. The OS releases it when the
process dies, however it dies, so anyone can tell a live owner from a dead one without
trusting a PID that may have been reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from core.telemetry.quarantine import QUARANTINE_DIR

OWNER_LOCK = "owner.lock"
SEGMENT_GLOB = "*.jsonl"
# A directory is created under this prefix and renamed once its lock is held, so nobody can
# mistake a writer that is still starting up for a dead one; after STARTING_GRACE seconds
# under that name it is a leftover of a process that died while starting.
STARTING_PREFIX = ".starting-"
STARTING_GRACE = 60.0
_SEGMENT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC


# A text field longer than this is cut, with a marker saying how much went, before it reaches
# the spool: a 40 MB input must not make a 40 MB line (and a 40 MB cell in `runs.inputs`).
# A workflow's source is kept whole: the workflow file limit already bounds it; so is a
# compressed prompt or response, which a cut would make unreadable (content.py bounds it).
MAX_FIELD_CHARS = 65_536
_WHOLE_FIELDS = frozenset({"source", "compressed"})


def _jsonable(value: Any) -> Any:
    """Fallback for types orjson does not know (datetimes, dates and times it writes itself)."""
    return str(value)


def encode(event: dict) -> bytes:
    """One spool line. orjson is ~10x faster than the json module here, and this runs once
    per node on the engine's hot path, so fields are measured only when the whole line is
    longer than one field may be."""
    line = orjson.dumps(event, default=_jsonable, option=orjson.OPT_APPEND_NEWLINE)
    if len(line) <= MAX_FIELD_CHARS:
        return line
    return orjson.dumps(
        {key: _cut(key, value) for key, value in event.items()},
        default=_jsonable,
        option=orjson.OPT_APPEND_NEWLINE,
    )


def _cut(key: str, value: Any) -> Any:
    if key in _WHOLE_FIELDS or not isinstance(value, str) or len(value) <= MAX_FIELD_CHARS:
        return value
    cut = len(value) - MAX_FIELD_CHARS
    return f"{value[:MAX_FIELD_CHARS]}… [truncated: {cut:,} more characters]"


def segments(directory: Path) -> list[Path]:
    try:
        return sorted(directory.glob(SEGMENT_GLOB))
    except FileNotFoundError:
        return []


def count_segments(spool: Path) -> int:
    try:
        return sum(
            len(segments(Path(e.path)))
            for e in os.scandir(spool)
            if e.is_dir() and e.name != QUARANTINE_DIR
        )
    except FileNotFoundError:
        return 0


def _try_lock(directory: Path) -> int | None:
    """The fd holding `directory`'s owner lock, or None while its owner is alive."""
    try:
        fd = os.open(directory / OWNER_LOCK, os.O_RDWR | os.O_CLOEXEC)
    except OSError:  # gone, or a folder we cannot write: either way not ours to take over
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def remove_dir(directory: Path) -> None:
    """Segments first, lock last: a half-removed directory still reads as dead, never live."""
    for path in segments(directory):
        path.unlink(missing_ok=True)
    (directory / OWNER_LOCK).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        directory.rmdir()


class Writer:
    """This process's spool directory and its current segment. Not thread-safe: the store
    serialises calls."""

    def __init__(self, spool: Path, writer_id: str) -> None:
        self.spool = spool
        self.dir = spool / writer_id
        self.seq = 0
        self.fd = -1
        self.written = False  # whether the open segment holds any event yet
        self.lock_fd = -1
        self._make_dir()

    def _make_dir(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        starting = self.spool / f"{STARTING_PREFIX}{self.dir.name}"
        starting.mkdir()
        self.lock_fd = os.open(starting / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        starting.rename(self.dir)

    def _segment(self, seq: int) -> Path:
        return self.dir / f"{seq:06d}.jsonl"

    def _open_next_segment(self) -> None:
        # Numbering never restarts, so segment ids stay unique for the ledger.
        self.seq += 1
        self.written = False
        path = self._segment(self.seq)
        try:
            self.fd = os.open(path, _SEGMENT_FLAGS, 0o644)
        except FileNotFoundError:
            # The data folder was removed under us: recreate our directory.
            os.close(self.lock_fd)
            self._make_dir()
            self.fd = os.open(path, _SEGMENT_FLAGS, 0o644)

    def _close_segment(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def append(self, line: bytes) -> None:
        if self.fd < 0:
            self._open_next_segment()
        self.written = True
        try:
            sent = os.write(self.fd, line)
            if sent < len(line):  # rare (a full disk, a signal): finish the line
                view = memoryview(line)[sent:]
                while view:
                    view = view[os.write(self.fd, view) :]
        except OSError:
            # Whatever part of the line got out must end its segment, not prefix the next line.
            self._close_segment()
            raise

    def take_segments(self) -> list[Path]:
        """The complete segments, ready to load; the one being written is never among them.

        A segment holding events is closed and the next one opened here, on the ingesting
        thread: creating a file costs a few hundred µs, which the engine's next event would
        otherwise pay on the event loop.
        """
        if self.fd >= 0 and not self.written:
            current = self._segment(self.seq)
            return [path for path in segments(self.dir) if path != current]
        self._close_segment()
        complete = segments(self.dir)
        if complete:
            # On failure the next append tries again, and reports the error then.
            with contextlib.suppress(OSError):
                self._open_next_segment()
        return complete

    def close(self, remove: bool) -> None:
        self._close_segment()
        if remove:
            remove_dir(self.dir)
        os.close(self.lock_fd)

    def forget(self) -> None:
        """In a forked child: drops the inherited descriptors; the parent keeps its lock."""
        for fd in (self.fd, self.lock_fd):
            if fd >= 0:
                os.close(fd)


class Orphan:
    """A dead writer's directory, locked by us while we take it over."""

    def __init__(self, directory: Path, lock_fd: int) -> None:
        self.dir = directory
        self.lock_fd = lock_fd
        self.segments = segments(directory)

    def release(self) -> None:
        os.close(self.lock_fd)


def claim_orphans(spool: Path, own_id: str) -> list[Orphan]:
    """Locks every directory whose owner is dead; the caller loads them, then releases."""
    try:
        entries = list(os.scandir(spool))
    except FileNotFoundError:
        return []
    orphans = []
    for entry in entries:
        directory = Path(entry.path)
        if not entry.is_dir(follow_symlinks=False) or entry.name in (own_id, QUARANTINE_DIR):
            continue
        if entry.name.startswith(STARTING_PREFIX):
            # Its lock file exists a moment before it is locked, so only a directory left
            # for long is known dead; it died before writing any segment.
            with contextlib.suppress(FileNotFoundError):
                if time.time() - entry.stat().st_mtime > STARTING_GRACE:
                    fd = _try_lock(directory)
                    if fd is not None:
                        shutil.rmtree(directory, ignore_errors=True)
                        os.close(fd)
            continue
        fd = _try_lock(directory)
        if fd is not None:
            orphans.append(Orphan(directory, fd))
        elif not (directory / OWNER_LOCK).exists():
            # Left by a takeover that crashed after removing the lock: nothing left in it.
            with contextlib.suppress(OSError):
                directory.rmdir()
    return orphans


def writer_alive(spool: Path, writer_id: str) -> bool:
    """Whether the process owning `writer_id`'s directory still runs (it holds its lock)."""
    directory = spool / writer_id
    if not (directory / OWNER_LOCK).exists():
        return False
    fd = _try_lock(directory)
    if fd is None:
        return True
    os.close(fd)
    return False

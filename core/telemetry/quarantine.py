"""Spool entries that cannot be loaded, moved aside so that they never block the rest.

A loader that fails on one segment would fail on it at every ingest, in every process using
the data folder: one oversized line, or a directory someone named `x.jsonl`, would stop all
telemetry for good. So an entry that is not a regular file goes straight to
`spool/quarantine/`, and a segment DuckDB cannot read is salvaged line by line: the lines that
are too long or not JSON objects are quarantined, the rest loads. Each is reported once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

log = logging.getLogger("core.telemetry")

QUARANTINE_DIR = "quarantine"
MAX_LINE_BYTES = 32 * 2**20  # no event the engine writes comes near (see spool.MAX_FIELD_CHARS)
_CHUNK = 2**20


def not_a_file(path: Path) -> str | None:
    """Why `path` cannot be a segment (a directory, a link, a device, gone), or None."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "vanished"
    except OSError as exc:
        return f"cannot be examined: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    return "is a directory" if stat.S_ISDIR(mode) else "is not a regular file"


def move_aside(spool: Path, path: Path, reason: str) -> Path | None:
    """Moves `path` into the quarantine folder under a unique name and says so; None if it
    could not be moved (it is then left where it is, and the caller skips it)."""
    folder = spool / QUARANTINE_DIR
    name = f"{path.parent.name}--{path.name}"
    try:
        folder.mkdir(exist_ok=True)
        target = _free_name(folder, name)
        os.rename(path, target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("telemetry: %s %s and cannot be moved aside (%s)", path, reason, exc.strerror)
        return None
    log.warning("telemetry: %s %s; moved to %s, other events load as usual", path, reason, target)
    return target


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    number = 1
    while target.exists() or target.is_symlink():
        number += 1
        target = folder / f"{name}.{number}"
    return target


def salvage(spool: Path, segment: Path, work: Path) -> Path | None:
    """The loadable lines of `segment` copied to `work`, the others quarantined (of a line
    too long, its first MiB); None when the segment cannot be read at all (it is then
    quarantined whole). The segment stays in place for the caller to delete once the copy
    has loaded under the segment's id."""
    kept = rejected = 0
    rejects = None
    try:
        with open(segment, "rb") as source, open(work, "wb") as good:
            for line, too_long in _lines(source):
                if not line.strip():
                    continue
                if not too_long and _is_event(line):
                    good.write(line.rstrip(b"\n") + b"\n")
                    kept += 1
                    continue
                if rejects is None:
                    (spool / QUARANTINE_DIR).mkdir(exist_ok=True)
                    name = f"{segment.parent.name}--{segment.name}"
                    rejects = open(_free_name(spool / QUARANTINE_DIR, name), "wb")  # noqa: SIM115
                rejects.write(line.rstrip(b"\n") + b"\n")
                rejected += 1
    except OSError as exc:
        with contextlib.suppress(OSError):
            work.unlink()
        move_aside(spool, segment, f"cannot be read ({exc.strerror})")
        return None
    finally:
        if rejects is not None:
            rejects.close()
    if rejected:
        log.warning(
            "telemetry: %s held %d line(s) too long or not JSON events; they are in %s, its"
            " %d other line(s) load as usual",
            segment,
            rejected,
            spool / QUARANTINE_DIR,
            kept,
        )
    return work


def _lines(source: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """(line, too_long) pairs; a line over MAX_LINE_BYTES comes as its first megabyte, marked
    too long, and is never held in memory whole."""
    while True:
        line = source.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) <= MAX_LINE_BYTES:
            yield line, False
            continue
        rest = line
        while rest and not rest.endswith(b"\n"):  # skip to the end of the long line
            rest = source.readline(_CHUNK)
        yield line[:_CHUNK], True


def _is_event(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False

"""Who owns a sandbox: a user id of its own per run, and the engine it must not outlive.

A root engine runs each code node under a user id no account uses, claimed for the run by
an flock on `uids/<uid>.lock` in a folder only root can write: two runs, in one process or
in two, never share an id, so one run's code cannot signal or read the other's. The lock
also tells a live sandbox from a leftover: a process under one of these ids whose lock is
free belongs to no running engine, and `configurable-agents sandbox reap` ends it.

Engines are named host:pid:start-time, the start time telling a live engine from a new
process that happens to reuse its pid; Docker containers carry that name in a label.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import stat
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.sandbox.base import SandboxUnavailable

FIRST_UID = 200_000
UID_COUNT = 60_000


def _as_root() -> bool:
    return os.geteuid() == 0


@cache
def state_dir() -> Path:
    """A folder only this user can write: /run/configurable-agents for root, else one in the
    temp dir; refused if someone else made it first."""
    root_only = _as_root() and os.access("/run", os.W_OK)
    base = Path("/run") if root_only else Path(tempfile.gettempdir())
    folder = base / f"configurable-agents-{os.geteuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise SandboxUnavailable(
            f"{folder} is not a private folder of this user; remove it so the sandbox can "
            "make its own"
        )
    return folder


@dataclass
class UidClaim:
    uid: int
    fd: int

    def release(self) -> None:
        os.close(self.fd)


def claim_uid() -> UidClaim:
    """A user id no other sandbox holds, until `release()` (or this process dies)."""
    folder = state_dir() / "uids"
    folder.mkdir(mode=0o700, exist_ok=True)
    start = secrets.randbelow(UID_COUNT)  # engines starting at once rarely meet
    for step in range(UID_COUNT):
        uid = FIRST_UID + (start + step) % UID_COUNT
        fd = os.open(folder / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return UidClaim(uid, fd)
    raise SandboxUnavailable("no free sandbox user id: too many code nodes running at once")


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (after the command, which may hold spaces)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]


def engine_id() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def engine_alive(engine: str) -> bool | None:
    """Whether the engine named so is running; None when it ran on another host."""
    host, _, rest = engine.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _start_time(int(pid)) == started


def reap_processes() -> int:
    """Kills every process under a sandbox user id that no engine holds; returns how many.
    Only a root engine gives code ids of its own, so only root has any to reap."""
    if not _as_root():
        return 0
    folder = state_dir() / "uids"
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            uid = entry.stat().st_uid
        except OSError:
            continue
        if not FIRST_UID <= uid < FIRST_UID + UID_COUNT or _held(folder / f"{uid}.lock"):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(entry.name), signal.SIGKILL)
            killed += 1
    return killed


def _held(lock: Path) -> bool:
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False

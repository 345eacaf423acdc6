"""The `process` sandbox: a separate OS process with hard limits, isolated by the kernel
in new mount and PID namespaces (and a network namespace of its own) under a user id of its
own (docs/sandbox.md).

The namespaces are set up with util-linux's own tools so that no Python runs between fork
and exec, which is unsafe in a threaded engine. A host that cannot create them refuses the
node with the fix; code never runs unisolated. Nothing of a run touches the host's disk: the
payload comes in on stdin, the report goes out on stdout, and the working directory is a
tmpfs of the preset's size that disappears with the run's mount namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path

from core.sandbox.base import (
    MAX_REPORT_BYTES,
    RUNNER,
    Job,
    Outcome,
    SandboxUnavailable,
    parse_report,
    payload,
)
from core.sandbox.limits import Limits
from core.sandbox.ownership import UidClaim, claim_uid
from core.sandbox.slirp import NETWORK_SETUP, Slirp, slirp_missing

STDERR_TAIL = 2_000
# Host folders no code may read, besides the data folder each run names: people's homes and
# mounts. /run (runtime sockets) becomes the sandbox's own; the temp folders, the run's tmpfs.
PRIVATE_FOLDERS = ("/home", "/root", "/srv", "/mnt", "/media")

# Runs as (namespace) root inside the new namespaces; "$@" is the final command. /run becomes a
# small tmpfs holding the runner (copied while its folder can still be seen) and, with a
# network, the resolver's address. Then everything mounted is made read-only, each folder in
# $PRIVATE gets an empty read-only tmpfs over it, and the run gets its own /tmp (the working
# directory, also seen at /var/tmp and /dev/shm) of $DISK_BYTES. Standard output is the
# report's channel: until the runner starts, whatever a tool prints goes to stderr.
_ISOLATE = (
    r"""
set -e
exec 3>&1 1>&2
mount --make-rprivate /
mount -t tmpfs -o size=1m,mode=0755 sandbox /run
cp "$RUNNER" /run/runner.py
"""
    + NETWORK_SETUP
    + r"""
awk '{print $5}' /proc/self/mountinfo | while read -r point; do
  case "$point" in
    /proc|/proc/*|/sys|/sys/*|/dev|/dev/pts|/dev/mqueue) ;;
    *) mount -o remount,bind,ro "$point" 2>/dev/null || true ;;
  esac
done
printf '%s\n' "$PRIVATE" | while IFS= read -r hidden; do
  if [ -d "$hidden" ]; then
    mount -t tmpfs -o ro,size=4k,mode=0555 private "$hidden"
  elif [ -e "$hidden" ]; then
    mount --bind -o ro /dev/null "$hidden"
  fi
done
mount -t tmpfs -o "size=$DISK_BYTES,mode=0700,uid=$RUN_UID,gid=$RUN_UID,nosuid,nodev" work /tmp
for also in /var/tmp /dev/shm; do
  if [ -d "$also" ]; then mount --bind /tmp "$also"; fi
done
if [ -w / ]; then echo "the root file system stayed writable" >&2; exit 97; fi
cd /tmp
exec "$@" 1>&3 3>&-
"""
)


@cache
def _as_root() -> bool:
    return os.geteuid() == 0


def _unshare_flags() -> list[str]:
    # A network namespace always: with `network: true` slirp4netns connects it to the outside
    # (never to the host's loopback); without, it has no interface up at all.
    flags = ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--net"]
    if not _as_root():
        flags[:0] = ["--user", "--map-root-user"]
    return flags


@cache
def _check_isolation() -> None:
    """Fails once, clearly, when this host cannot create the namespaces."""
    tools = ("unshare", "setpriv", "prlimit", "taskset", "mount", "awk")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        raise SandboxUnavailable(
            f"the process sandbox needs {', '.join(missing)} (util-linux); install it, or use "
            "sandbox.backend: docker"
        )
    probe = subprocess.run(["unshare", *_unshare_flags(), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(
            "this host cannot isolate code nodes (unshare failed: "
            f"{probe.stderr.strip() or probe.returncode}); run the engine as root, enable "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or use "
            "sandbox.backend: docker — code is never run without isolation"
        )


@cache
def _interpreter() -> str:
    """A Python the sandbox user can execute and that no hidden folder holds: the system's,
    as the host's may sit in a private home folder."""
    system = Path("/usr/bin/python3")
    return str(system) if system.exists() else sys.executable


def _private(job: Job) -> str:
    """The folders to hide, one per line: the job's, the usual private ones, and the
    engine's working directory (a checkout's .env), never the interpreter's own."""
    interpreter = Path(_interpreter()).resolve()
    folders = [*job.private, *PRIVATE_FOLDERS, os.getcwd()]
    keep = []
    for folder in dict.fromkeys(os.path.realpath(f) for f in folders):
        if folder != "/" and not interpreter.is_relative_to(folder):
            keep.append(folder)
    return "\n".join(keep)


def _cpu_list(count: int) -> str:
    allowed = sorted(os.sched_getaffinity(0))
    return ",".join(str(cpu) for cpu in allowed[: max(1, min(count, len(allowed)))])


def _own_processes() -> int:
    uid = os.getuid()
    return sum(
        1 for entry in Path("/proc").iterdir() if entry.name.isdigit() and _owner(entry) == uid
    )


def _owner(entry: Path) -> int | None:
    try:
        return entry.stat().st_uid
    except OSError:
        return None


def _command(limits: Limits, uid: int | None) -> list[str]:
    # A root engine gives the code a user of its own, so the process limit counts only the
    # code's processes; otherwise the limit counts all of this user's processes.
    processes = limits.max_processes if uid is not None else _own_processes() + limits.max_processes
    cpu_seconds = math.ceil(limits.timeout) + 1
    command = [
        # The sandbox dies with the engine's thread that started it, however the engine dies:
        # the kernel kills unshare, and --kill-child takes the namespace down with it.
        "setpriv", "--pdeathsig", "KILL", "--",
        "unshare", *_unshare_flags(),
        "sh", "-c", _ISOLATE, "isolate",
        "taskset", "-c", _cpu_list(limits.cpus),
        "prlimit", f"--as={limits.memory_mb * 2**20}", f"--cpu={cpu_seconds}",
        f"--nproc={processes}", f"--fsize={limits.max_file_mb * 2**20}", "--core=0",
        "--nofile=256", "--",
    ]  # fmt: skip
    # No capability survives into the code: not as its own user (root engine), not as the
    # namespace's root (otherwise), which could otherwise unmount what hides the host. A new
    # user id clears the parent-death signal --kill-child gave the namespace's first process,
    # so it is set again: the code dies with unshare, which dies with the engine.
    drop = ["--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--pdeathsig=KILL"]
    if uid is not None:
        command += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *drop, "--"]
    else:
        command += ["setpriv", *drop, "--"]
    environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp"]
    return [*command, "env", "-i", *environment, _interpreter(), "-I", "-S", "/run/runner.py", "-"]


class ProcessSandbox:
    async def run(self, job: Job) -> Outcome:
        _check_isolation()
        if job.limits.network:
            missing = slirp_missing()
            if missing:
                raise SandboxUnavailable(missing)
        claim: UidClaim | None = claim_uid() if _as_root() else None
        try:
            return await self._run(job, claim.uid if claim else None)
        finally:
            if claim is not None:
                claim.release()

    async def _run(self, job: Job, uid: int | None) -> Outcome:
        limits = job.limits
        environment = {
            **os.environ,
            "PRIVATE": _private(job),
            "DISK_BYTES": str(limits.disk_mb * 2**20),
            "RUN_UID": str(uid if uid is not None else 0),
            "NETWORK": "1" if limits.network else "0",
            "RUNNER": str(RUNNER),
        }
        started = asyncio.get_running_loop().time()
        process = await asyncio.create_subprocess_exec(
            *_command(limits, uid),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        slirp = Slirp(process.pid) if limits.network else None
        timed_out = False
        try:
            if slirp is not None:
                await slirp.start()
            reading = asyncio.gather(
                _read_capped(process.stdout, MAX_REPORT_BYTES),
                _read_capped(process.stderr, STDERR_TAIL * 4),
                _feed(process, payload(job)),
                process.wait(),
            )
            try:
                report, stderr, _, _ = await asyncio.wait_for(reading, limits.timeout)
            except TimeoutError:
                timed_out = True
                report, stderr = b"", b""
        finally:
            _kill(process)
            await process.wait()
            if slirp is not None:
                await slirp.stop()
        elapsed = asyncio.get_running_loop().time() - started
        outcome = parse_report(report)
        if outcome is not None and not timed_out:
            return outcome
        return _failure(limits, process.returncode, timed_out, elapsed, stderr)


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    """Writes the payload and closes stdin; a runner that died early is not an error here."""
    assert process.stdin is not None
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        process.stdin.write(data)
        await process.stdin.drain()
    process.stdin.close()


async def _read_capped(stream: asyncio.StreamReader | None, limit: int) -> bytes:
    """Up to `limit` bytes, then drains the rest unread so the writer never blocks on us."""
    assert stream is not None
    kept = bytearray()
    while chunk := await stream.read(65536):
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return bytes(kept)


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the launcher's group; --kill-child then takes the whole PID namespace down."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _failure(
    limits: Limits, code: int | None, timed_out: bool, elapsed: float, stderr: bytes
) -> Outcome:
    if timed_out:
        return Outcome(False, "timeout", error=f"timed out after {limits.timeout:g}s",
                       cpu_seconds=None)  # fmt: skip
    if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return Outcome(False, "timeout", error=f"used up its {limits.timeout:g}s of CPU time")
    if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
        return Outcome(
            False,
            "memory",
            error=f"killed, most likely for exceeding its {limits.memory_mb} MB memory limit",
        )
    tail = stderr[-STDERR_TAIL:].decode(errors="replace").strip()
    return Outcome(
        False,
        "sandbox_error",
        error=f"the sandbox ended without a result (exit {code}, {elapsed:.1f}s)"
        + (f": {tail}" if tail else ""),
    )

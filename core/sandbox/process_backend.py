"""The `process` sandbox: a separate OS process with hard limits, isolated by the kernel
in new network, mount and PID namespaces under a user id of its own (docs/sandbox.md).

The namespaces are set up with util-linux's own tools so that no Python runs between fork
and exec, which is unsafe in a threaded engine. A host that cannot create them refuses the
node with the fix; code never runs unisolated.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path

from core.sandbox.base import RUNNER, Job, Outcome, SandboxUnavailable, read_outcome, write_payload
from core.sandbox.limits import Limits

FIRST_UID = 200_000  # ids no account uses; one per concurrent sandbox
_uids = itertools.cycle(range(FIRST_UID, FIRST_UID + 60_000))
STDERR_TAIL = 2_000

# Runs as (namespace) root inside the new namespaces; "$@" is the final command.
_ISOLATE = r"""
set -e
mount --make-rprivate /
mount --bind "$WORK" "$WORK"
awk '{print $5}' /proc/self/mountinfo | while read -r point; do
  case "$point" in
    /proc|/proc/*|/sys|/sys/*|/dev|/dev/pts|/dev/mqueue|"$WORK") ;;
    *) mount -o remount,bind,ro "$point" 2>/dev/null || true ;;
  esac
done
if [ -w / ]; then echo "the root file system stayed writable" >&2; exit 97; fi
cd "$WORK"
exec "$@"
"""


@cache
def _as_root() -> bool:
    return os.geteuid() == 0


def _unshare_flags(network: bool) -> list[str]:
    flags = ["--mount", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if not network:
        flags.append("--net")
    if not _as_root():
        flags[:0] = ["--user", "--map-root-user"]
    return flags


@cache
def _check_isolation(network: bool) -> None:
    """Fails once, clearly, when this host cannot create the namespaces."""
    missing = [
        tool for tool in ("unshare", "prlimit", "taskset", "mount", "awk") if not shutil.which(tool)
    ]
    if missing:
        raise SandboxUnavailable(
            f"the process sandbox needs {', '.join(missing)} (util-linux); install it, or use "
            "sandbox.backend: docker"
        )
    probe = subprocess.run(
        ["unshare", *_unshare_flags(network), "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        raise SandboxUnavailable(
            "this host cannot isolate code nodes (unshare failed: "
            f"{probe.stderr.strip() or probe.returncode}); run the engine as root, enable "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), or use "
            "sandbox.backend: docker — code is never run without isolation"
        )


def _interpreter() -> str:
    """A Python the sandbox user can execute: the host's may sit in a private home folder."""
    system = Path("/usr/bin/python3")
    if _as_root() and system.exists():
        return str(system)
    return sys.executable


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


def _command(limits: Limits, workdir: Path, uid: int | None) -> list[str]:
    # A root engine gives the code a user of its own, so the process limit counts only the
    # code's processes; otherwise the limit counts all of this user's processes.
    processes = limits.max_processes if uid is not None else _own_processes() + limits.max_processes
    cpu_seconds = math.ceil(limits.timeout) + 1
    command = [
        "unshare", *_unshare_flags(limits.network),
        "sh", "-c", _ISOLATE, "isolate",
        "taskset", "-c", _cpu_list(limits.cpus),
        "prlimit", f"--as={limits.memory_mb * 2**20}", f"--cpu={cpu_seconds}",
        f"--nproc={processes}", f"--fsize={limits.max_file_mb * 2**20}", "--core=0",
        "--nofile=256", "--",
    ]  # fmt: skip
    if uid is not None:
        command += [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={uid}",
            "--clear-groups",
            "--no-new-privs",
            "--",
        ]
    environment = ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", f"HOME={workdir}"]
    return [
        *command,
        "env",
        "-i",
        *environment,
        _interpreter(),
        "-I",
        "-S",
        str(workdir.parent / "runner.py"),
        str(workdir),
    ]


class ProcessSandbox:
    async def run(self, job: Job) -> Outcome:
        _check_isolation(job.limits.network)
        outer = Path(tempfile.mkdtemp(prefix="ca-sandbox-"))
        outer.chmod(0o711)  # the sandbox user may pass through to its working directory
        try:
            return await self._run_in(outer, job)
        finally:
            shutil.rmtree(outer, ignore_errors=True)

    async def _run_in(self, outer: Path, job: Job) -> Outcome:
        workdir = outer / "work"
        workdir.mkdir()
        uid = next(_uids) if _as_root() else None
        write_payload(workdir, job)
        # Beside the working directory, not in it: the code starts in an empty folder, and
        # the host's copy may sit where the sandbox user cannot read.
        shutil.copyfile(RUNNER, outer / "runner.py")
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(workdir / "payload.json", uid, uid)
        workdir.chmod(0o700)
        started = time.monotonic()
        with open(outer / "stderr", "wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                *_command(job.limits, workdir, uid),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env={**os.environ, "WORK": str(workdir)},
                start_new_session=True,
            )
            timed_out = False
            try:
                await asyncio.wait_for(process.wait(), job.limits.timeout)
            except TimeoutError:
                timed_out = True
            finally:
                _kill(process)
                await process.wait()
        elapsed = time.monotonic() - started
        outcome = read_outcome(workdir)
        if outcome is not None and not timed_out:
            return outcome
        return _failure(job.limits, process.returncode, timed_out, elapsed, outer / "stderr")


def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill the launcher's group; --kill-child then takes the whole PID namespace down."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def _failure(
    limits: Limits, code: int | None, timed_out: bool, elapsed: float, stderr: Path
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
    tail = stderr.read_bytes()[-STDERR_TAIL:].decode(errors="replace").strip()
    return Outcome(
        False,
        "sandbox_error",
        error=f"the sandbox ended without a result (exit {code}, {elapsed:.1f}s)"
        + (f": {tail}" if tail else ""),
    )

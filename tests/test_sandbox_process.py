"""The hostile-code suite against the process sandbox (the same cases run against Docker),
and what only a sandbox made of processes can show: runs under user ids of their own, and
nothing left once the engine is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_hostile import (
    CASES,
    NETWORK_CASES,
    HostileCase,
    check_case,
    check_runs_are_apart,
    host_side,
)

from core.sandbox.process_backend import ProcessSandbox
from core.sandbox.slirp import slirp_missing

ROOT = Path(__file__).resolve().parent.parent
ENGINE = Path(__file__).resolve().parent / "sandbox_engine.py"


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_hostile_code_is_contained(case: HostileCase) -> None:
    with host_side() as host:
        await check_case(ProcessSandbox(), case, host)


@pytest.mark.skipif(slirp_missing() is not None, reason=slirp_missing() or "")
@pytest.mark.parametrize("case", NETWORK_CASES, ids=str)
async def test_network_true_reaches_the_outside_not_the_host(case: HostileCase) -> None:
    with host_side() as host:
        await check_case(ProcessSandbox(), case, host)


async def test_two_runs_at_once_cannot_see_each_other() -> None:
    with host_side() as host:
        first, second = await check_runs_are_apart(ProcessSandbox(), host)
    if os.geteuid() == 0:
        assert first.result["uid"] != second.result["uid"]
        assert first.result["uid"] >= 200_000


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=str)
def test_the_code_dies_with_the_engine(signum: signal.Signals, tmp_path: Path) -> None:
    """However the engine dies, its sandbox follows, and leaves nothing on the host's disk
    (the working directory is a tmpfs of the run's own): the engine's temp folder, which
    used to keep a ca-sandbox-* folder per killed run, stays empty."""
    temp = tmp_path / "engine-tmp"
    temp.mkdir()
    engine = subprocess.Popen(
        [sys.executable, str(ENGINE), "process"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert engine.stdout is not None
    engine.stdout.readline()
    deadline = time.monotonic() + 30
    sandbox: set[int] = set()
    while len(sandbox) < 2 and time.monotonic() < deadline:  # unshare and the code, at least
        time.sleep(0.2)
        sandbox = _descendants(engine.pid)
    assert len(sandbox) >= 2, "the sandbox never started"
    engine.send_signal(signum)
    engine.wait(timeout=30)
    deadline = time.monotonic() + 20
    while [pid for pid in sandbox if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [pid for pid in sandbox if _alive(pid)] == [], "sandbox processes outlived the engine"
    assert list(temp.iterdir()) == []


def test_user_ids_are_never_shared_between_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another engine process claims half of a small range of ids; this one gets the rest."""
    from core.sandbox import ownership

    other = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time, core.sandbox.ownership as o\n"
            "o.UID_COUNT = 64\n"
            "held = [o.claim_uid() for _ in range(32)]\n"
            "print(' '.join(str(c.uid) for c in held), flush=True)\n"
            "time.sleep(60)\n",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        theirs = {int(uid) for uid in other.stdout.readline().split()}
        monkeypatch.setattr(ownership, "UID_COUNT", 64)
        ours = [ownership.claim_uid() for _ in range(32)]
        assert len(theirs) == 32 and not theirs & {claim.uid for claim in ours}
        with pytest.raises(ownership.SandboxUnavailable, match="no free sandbox user id"):
            ownership.claim_uid()
        for claim in ours:
            claim.release()
    finally:
        other.kill()
        other.wait()

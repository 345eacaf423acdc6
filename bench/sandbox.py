"""Sandbox cost and containment: start-to-result overhead per backend, and the hostile suite.

Overhead is the wall time from handing a trivial code node (`result = 1`) to the sandbox to
having its result, median of repeated runs. Targets: process under 100 ms, Docker under 1.5 s.
The hostile suite (tests/sandbox_hostile.py) runs against each backend and prints how each
case ended. Docker is measured only when a daemon and the image are available.

    python bench/sandbox.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox_hostile import CASES, check_case, host_side

from core.sandbox.base import Job, Sandbox, SandboxUnavailable
from core.sandbox.limits import Limits
from core.sandbox.process_backend import ProcessSandbox


def backends() -> dict[str, Sandbox]:
    found: dict[str, Sandbox] = {"process": ProcessSandbox()}
    try:
        from core.sandbox.docker_backend import DockerSandbox

        found["docker"] = DockerSandbox()
    except ImportError:
        pass
    return found


async def overhead(sandbox: Sandbox, repeats: int) -> list[float]:
    job = Job("result = 1", {}, {}, None, Limits(cpus=1, memory_mb=512, timeout=30, network=False))
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        outcome = await sandbox.run(job)
        times.append(time.perf_counter() - start)
        if not outcome.ok:
            raise SandboxUnavailable(outcome.error or outcome.exit_reason)
    return times[1:]  # the first run pays one-off set-up (isolation probe, client, image)


async def hostile(sandbox: Sandbox) -> list[tuple[str, str, float, str]]:
    rows = []
    for case in CASES:
        with host_side() as host:
            start = time.perf_counter()
            try:
                outcome = await check_case(sandbox, case, host)
                verdict, reason = "contained", outcome.exit_reason
            except AssertionError as failure:
                verdict, reason = "NOT CONTAINED", str(failure).splitlines()[0][:60]
            rows.append((case.name, reason, time.perf_counter() - start, verdict))
    return rows


async def main(repeats: int) -> None:
    targets = {"process": 0.100, "docker": 1.5}
    for name, sandbox in backends().items():
        try:
            times = await overhead(sandbox, repeats)
        except SandboxUnavailable as exc:
            print(f"{name}: unavailable here ({exc})")
            continue
        median = statistics.median(times)
        print(
            f"{name}: start-to-result overhead {median * 1000:.0f} ms median "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {repeats} runs; "
            f"target < {targets[name] * 1000:.0f} ms)"
        )
        for case, reason, seconds, verdict in await hostile(sandbox):
            print(f"    {case:<26} {verdict:<14} {reason:<18} {seconds:6.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    asyncio.run(main(parser.parse_args().repeats))

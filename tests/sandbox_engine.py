"""An engine in a process of its own, for the tests that kill it: it runs one code node that
sleeps a minute in the given backend, printing its pid first.

Usage: sandbox_engine.py process|docker
"""

from __future__ import annotations

import asyncio
import os
import sys

from core.sandbox.base import Job
from core.sandbox.limits import Limits


async def main(backend: str) -> None:
    if backend == "docker":
        from core.sandbox.docker_backend import DockerSandbox

        sandbox = DockerSandbox()
    else:
        from core.sandbox.process_backend import ProcessSandbox

        sandbox = ProcessSandbox()
    print(os.getpid(), flush=True)
    job = Job("import time\ntime.sleep(60)\n", {}, {}, None, Limits(1, 512, 60, False))
    await sandbox.run(job)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

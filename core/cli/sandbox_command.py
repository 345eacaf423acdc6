"""`configurable-agents sandbox reap`: remove what killed engines left of their sandboxes.

A process sandbox dies with its engine (the kernel sees to it); a Docker container does not,
and the next engine to use Docker removes leftovers anyway. This command does it on demand:
after a crash, or from cron on a host where engines get killed.
"""

from __future__ import annotations

import argparse

from core.cli.exit_codes import EXIT_OK


def command(args: argparse.Namespace) -> int:
    from core.sandbox.base import SandboxUnavailable
    from core.sandbox.ownership import reap_processes

    ended = reap_processes()
    print(f"process sandbox: {ended} leftover process{'es' * (ended != 1)} ended")
    try:
        from core.sandbox.docker_backend import connect_and_reap

        removed = connect_and_reap()
    except SandboxUnavailable as exc:
        print(f"docker sandbox: skipped ({exc})")
    else:
        print(f"docker sandbox: {removed} leftover container{'s' * (removed != 1)} removed")
    return EXIT_OK

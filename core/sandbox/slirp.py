"""`network: true` for the process sandbox: the outside world, not the host.

Sharing the host's network namespace would let code reach every service listening on the
host's loopback (the app, a database, a metadata proxy). Instead the sandbox keeps a network
namespace of its own and slirp4netns, a user-mode NAT, connects it: with
`--disable-host-loopback` nothing reaches 127.0.0.1 of the host, and a `prohibit` route set
up inside before the code starts refuses link-local addresses (169.254.0.0/16, where clouds
answer with credentials). The sandbox has no IPv6.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess

from core.sandbox.base import SandboxUnavailable

NAMESPACE_WAIT = 5.0  # seconds for the sandbox to have its own network namespace

# Inside the namespace, as its root, while /run is the sandbox's own writable tmpfs: wait for
# slirp4netns to bring tap0 up, refuse link-local destinations, and answer DNS through
# slirp4netns' resolver (the host's resolv.conf may name 127.0.0.53, which in the sandbox is
# its own loopback).
NETWORK_SETUP = r"""
if [ "$NETWORK" = 1 ]; then
  tries=0
  until ip -4 addr show tap0 2>/dev/null | grep -q "inet "; do
    tries=$((tries + 1))
    if [ "$tries" -gt 500 ]; then echo "the sandbox's network did not come up" >&2; exit 98; fi
    sleep 0.01
  done
  ip route add prohibit 169.254.0.0/16
  printf 'nameserver 10.0.2.3\n' > /run/resolv.conf
  resolv=$(readlink -m /etc/resolv.conf)
  case "$resolv" in
    /run/resolv.conf) ;;
    /run/*) mkdir -p "$(dirname "$resolv")"; cp /run/resolv.conf "$resolv" ;;
    *) mount --bind /run/resolv.conf /etc/resolv.conf ;;
  esac
fi
"""


def slirp_missing() -> str | None:
    """What to install for `network: true` on this backend, or None when all is there."""
    missing = [tool for tool in ("slirp4netns", "ip") if not shutil.which(tool)]
    if not missing:
        return None
    return (
        f"network: true on the process sandbox needs {' and '.join(missing)} (apt-get install "
        "slirp4netns iproute2), or use sandbox.backend: docker"
    )


class Slirp:
    """slirp4netns attached to the namespace of the sandbox process `pid`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        own = os.readlink("/proc/self/ns/net")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NAMESPACE_WAIT
        while (namespace := _namespace(self.pid)) == own:
            if loop.time() > deadline:
                raise SandboxUnavailable("the sandbox did not get a network namespace of its own")
            await asyncio.sleep(0.002)
        if namespace is None:
            return  # the sandbox is already gone; its outcome will say why
        command = ["setpriv", "--pdeathsig", "KILL", "--", "slirp4netns", "--configure",
                   "--mtu=65520", "--disable-host-loopback"]  # fmt: skip
        if os.geteuid() != 0:
            command.append(f"--userns-path=/proc/{self.pid}/ns/user")
        self.process = await asyncio.create_subprocess_exec(
            *command,
            str(self.pid),
            "tap0",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            await self.process.wait()


def _namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None

"""The `docker` sandbox: each code node in a throwaway container, through the Docker Engine API.

The container gets no network (unless the node allows it), a read-only root file system, no
capabilities, an unprivileged user, cgroup limits on memory (no swap beyond it), CPUs and
processes, and only a minimal PATH/LANG as its environment, so API keys never reach it. Its
working directory /work (and /tmp) is a tmpfs of the preset's disk size; the payload comes in
as one read-only file, the report goes out on the container's stdout. The `docker` package is
imported only when a node asks for this backend, so the engine runs without it. Images are
never pulled: a missing one is an error naming the fix.

A container outlives an engine that is killed: each is labelled with its engine and deadline,
and the next engine to use Docker (or `configurable-agents sandbox reap`) removes those whose
engine is gone or whose deadline has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.sandbox.base import RUNNER, Job, Outcome, SandboxUnavailable, parse_report, payload
from core.sandbox.limits import Limits
from core.sandbox.ownership import engine_alive, engine_id, state_dir

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

IMAGE_ENV = "CONFIGURABLE_AGENTS_SANDBOX_IMAGE"
DEFAULT_IMAGE = "python:3.11-slim"
LABEL = "configurable-agents.sandbox"  # on every container, so leftovers can be found
ENGINE_LABEL = "configurable-agents.engine"  # host:pid:start-time of the engine that made it
DEADLINE_LABEL = "configurable-agents.deadline"  # epoch seconds after which it is garbage
DEADLINE_GRACE = 60  # seconds past a node's timeout before its container counts as left over
UNLABELLED_AGE = 900  # seconds after which a container of an older version counts too
NOBODY = 65534  # uid and gid of `nobody` in Debian-based images
WORKDIR = "/work"
RUNNER_PATH = "/sandbox/runner.py"
PAYLOAD_PATH = "/sandbox/payload.json"
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
LOG_MAX_SIZE = "16m"  # the report (stdout) and the runner's own errors (stderr)
LOG_TAIL_CHARS = 2_000
# With `network: true` the runner starts as root with these, refuses link-local addresses
# (cloud metadata), then drops to the unprivileged user and every capability.
NETWORK_CAPS = ["NET_ADMIN", "SETUID", "SETGID"]
OOM_EXIT = 137  # 128 + SIGKILL
# Containers in flight at once per process. Each holds a thread and a pooled connection while
# it waits, so neither may be the bottleneck: asyncio's default executor has only a few
# threads on a small machine, and other work in the engine may need them.
MAX_PARALLEL = 32
T = TypeVar("T")
_threads = ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="docker-sandbox")


def default_image() -> str:
    return os.environ.get(IMAGE_ENV) or DEFAULT_IMAGE


def _daemon_address() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _unreachable(reason: object) -> SandboxUnavailable:
    return SandboxUnavailable(
        f"Docker daemon not reachable at {_daemon_address()} ({reason}): start it (sudo "
        "systemctl start docker, or scripts/start-docker.sh) or use sandbox.backend: process"
    )


_clients_lock = threading.Lock()
_clients: dict[tuple[int, str], tuple[DockerClient, int]] = {}


def _daemon() -> tuple[DockerClient, int]:
    """A client, and the daemon's CPU count (it refuses a CPU limit above that).

    One per process and daemon address: creating one costs round trips to the daemon, and
    its connection pool is what lets parallel nodes share it.
    """
    key = (os.getpid(), _daemon_address())
    with _clients_lock:
        if key not in _clients:
            _clients[key] = _connect()
            # The first use in a process clears what killed engines left running.
            reap(_clients[key][0])
        return _clients[key]


def _connect() -> tuple[DockerClient, int]:
    try:
        import docker
        import requests
    except ImportError as exc:
        raise SandboxUnavailable(
            "sandbox.backend: docker needs the docker extra: pip install "
            "'configurable-agents[docker]', or use sandbox.backend: process"
        ) from exc
    try:
        client = docker.from_env(max_pool_size=MAX_PARALLEL)
        return client, int(client.info()["NCPU"])
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _unreachable(exc) from exc


def container_config(
    job: Job, image: str, payload_file: Path, name: str, host_cpus: int
) -> dict[str, Any]:
    """Arguments for `containers.create`: every limit and isolation setting in one place."""
    from docker.types import LogConfig, Ulimit

    limits = job.limits
    file_bytes = limits.max_file_mb * 2**20
    tmpfs = f"size={limits.disk_mb}m,mode=1777,nosuid,nodev"
    config = {
        "image": image,
        # The runner goes to WORKDIR itself: as Docker's working_dir, the tmpfs would lose
        # its mode (Docker 20.10 creates the directory 0755 over it).
        "command": ["python3", "-I", "-S", RUNNER_PATH, PAYLOAD_PATH, WORKDIR],
        "name": name,
        "labels": {
            LABEL: "1",
            ENGINE_LABEL: engine_id(),
            DEADLINE_LABEL: str(int(time.time() + limits.timeout + DEADLINE_GRACE)),
        },
        "user": _container_user(),
        "environment": ENVIRONMENT,
        "volumes": {
            str(payload_file): {"bind": PAYLOAD_PATH, "mode": "ro"},
            str(RUNNER): {"bind": RUNNER_PATH, "mode": "ro"},
        },
        "network_mode": "bridge" if limits.network else "none",
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",
        "nano_cpus": int(min(limits.cpus, host_cpus) * 1e9),
        "pids_limit": limits.max_processes,
        "ulimits": [
            Ulimit(name="fsize", soft=file_bytes, hard=file_bytes),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "read_only": True,
        # The working directory and /tmp hold at most the preset's disk size each.
        "tmpfs": {WORKDIR: tmpfs, "/tmp": tmpfs},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "stdin_open": False,
        "hostname": "sandbox",
        "log_config": LogConfig(
            type="json-file", config={"max-size": LOG_MAX_SIZE, "max-file": "1"}
        ),
    }
    if limits.network:
        # No IPv6: the link-local guard below covers IPv4, where the metadata services are.
        config["sysctls"] = {"net.ipv6.conf.all.disable_ipv6": "1"}
        config["cap_add"] = NETWORK_CAPS
        config["user"] = "0:0"
    return config


def _payload(job: Job) -> bytes:
    """The payload, telling a networked runner which user to become once its guard is up."""
    if not job.limits.network:
        return payload(job)
    uid, gid = (int(part) for part in _container_user().split(":"))
    return payload(job, drop_to=(uid, gid))


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_threads, function, *args)


class DockerSandbox:
    def __init__(self, image: str | None = None) -> None:
        self.image = image or default_image()

    async def run(self, job: Job) -> Outcome:
        client, host_cpus = await _in_thread(_daemon)
        name = f"configurable-agents-sandbox-{uuid.uuid4().hex[:12]}"
        payload_file = _payloads() / f"{name}.json"
        cancelled = threading.Event()
        try:
            return await _in_thread(
                self._run_blocking, client, host_cpus, job, payload_file, name, cancelled
            )
        except asyncio.CancelledError:
            # The thread cannot be interrupted and would wait out the node's timeout: keep it
            # from starting the container, or remove (so kill) the running one now.
            cancelled.set()
            await _in_thread(_clean_up, client, name, payload_file)
            raise

    def _run_blocking(
        self,
        client: DockerClient,
        host_cpus: int,
        job: Job,
        payload_file: Path,
        name: str,
        cancelled: threading.Event,
    ) -> Outcome:
        import docker
        import requests

        try:
            payload_file.write_bytes(_payload(job))
            payload_file.chmod(0o644)  # the container's unprivileged user reads it
            container = client.containers.create(
                **container_config(job, self.image, payload_file, name, host_cpus)
            )
            if cancelled.is_set():
                return Outcome(False, "killed", error="cancelled before it started")
            container.start()
            if _timed_out(container, job.limits.timeout):
                # Removing the container, which always comes next, kills it.
                return Outcome(False, "timeout", error=f"timed out after {job.limits.timeout:g}s")
            report = container.logs(stdout=True, stderr=False)
            return parse_report(report) or _without_result(container, job.limits)
        except docker.errors.ImageNotFound as exc:
            raise SandboxUnavailable(
                f"image {self.image} not found locally: docker pull {self.image}, or build one "
                "with scripts/build-sandbox-image.sh"
            ) from exc
        except docker.errors.APIError as exc:
            return Outcome(
                False, "sandbox_error", error=f"Docker refused the container: {exc.explanation}"
            )
        except requests.exceptions.ConnectionError as exc:
            raise _unreachable(exc) from exc
        finally:
            _clean_up(client, name, payload_file)


def _payloads() -> Path:
    """Where payload files wait for their container: a folder only this user can read."""
    folder = state_dir() / "docker"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _engine_is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _container_user() -> str:
    """`nobody` when the engine runs as root. Otherwise the engine's own ids: only root could
    delete what `nobody` leaves in the working dir, and inside the container they are just
    as unprivileged (no capabilities, no new privileges, only the working dir to write)."""
    if _engine_is_root() or not hasattr(os, "geteuid"):
        return f"{NOBODY}:{NOBODY}"
    return f"{os.geteuid()}:{os.getegid()}"


def _timed_out(container: Container, timeout: float) -> bool:
    """Whether the container was still running after `timeout` seconds."""
    import requests

    try:
        container.wait(timeout=timeout)
    except requests.exceptions.ConnectionError:
        # The SDK reports its read timeout as a connection error. A daemon that went away
        # looks the same, but then this reload fails too.
        container.reload()
        return container.status == "running"
    return False


def _without_result(container: Container, limits: Limits) -> Outcome:
    """Why the runner never reported: the kernel's OOM killer, or something else killed it."""
    container.reload()
    state = container.attrs["State"]
    code = state.get("ExitCode")
    if state.get("OOMKilled"):
        return Outcome(
            False,
            "memory",
            error=f"ran out of its {limits.memory_mb} MB memory limit",
            peak_memory_mb=float(limits.memory_mb),
        )
    if code == OOM_EXIT:
        return Outcome(
            False,
            "memory",
            error=f"killed (exit code {code}), most likely for running out of its "
            f"{limits.memory_mb} MB memory limit",
        )
    logs = container.logs(stdout=False, stderr=True).decode(errors="replace").strip()
    tail = logs[-LOG_TAIL_CHARS:]
    return Outcome(
        False,
        "killed",
        error=f"the code's process ended without a result (exit code {code})"
        + (f": {tail}" if tail else ""),
    )


def _clean_up(client: DockerClient, name: str, payload_file: Path) -> None:
    import docker
    import requests

    # Not created, or the daemon went away: then there is nothing we could remove, and a
    # failed clean-up must not hide the node's outcome; `sandbox reap` finds anything left.
    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        client.api.remove_container(name, force=True)
    payload_file.unlink(missing_ok=True)


def connect_and_reap() -> int:
    """`reap` on the daemon this process would use; SandboxUnavailable when there is none."""
    client, _ = _connect()
    return reap(client)


def reap(client: DockerClient) -> int:
    """Removes the sandbox containers no engine will come back for (their engine is gone,
    their deadline passed), and payload files without a container; returns how many
    containers went."""
    import docker
    import requests

    now = time.time()
    removed = 0
    try:
        containers = client.containers.list(all=True, filters={"label": LABEL})
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return 0
    names = set()
    for container in containers:
        names.add(container.name)
        if not _left_over(container.labels, container.attrs.get("Created", ""), now):
            continue
        with contextlib.suppress(docker.errors.DockerException, requests.RequestException):
            container.remove(force=True)
            removed += 1
            names.discard(container.name)
    for path in _payloads().glob("*.json"):
        with contextlib.suppress(OSError):
            if path.stem not in names and now - path.stat().st_mtime > DEADLINE_GRACE:
                path.unlink()
    return removed


def _left_over(labels: dict[str, str], created: str, now: float) -> bool:
    deadline = labels.get(DEADLINE_LABEL)
    if deadline is not None:
        engine = labels.get(ENGINE_LABEL, "")
        return now > float(deadline) or engine_alive(engine) is False
    # Made by a version that set no deadline: garbage once no node could still be running.
    try:
        made = datetime.fromisoformat(created[:19] + "+00:00").timestamp()
    except ValueError:
        return False
    return now - made > UNLABELLED_AGE

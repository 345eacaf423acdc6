"""The `docker` sandbox: each code node in a throwaway container, through the Docker Engine API.

The container gets no network (unless the node allows it), a read-only root file system, no
capabilities, an unprivileged user, cgroup limits on memory (no swap beyond it), CPUs and
processes, and only a minimal PATH/LANG as its environment, so API keys never reach it. The
node's payload travels in a host temp dir bind-mounted at /work, where the runner also writes
its result. The `docker` package is imported only when a node asks for this backend, so the
engine runs without it. Images are never pulled: a missing one is an error naming the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.sandbox.base import RUNNER, Job, Outcome, SandboxUnavailable, read_outcome, write_payload
from core.sandbox.limits import Limits

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

IMAGE_ENV = "CONFIGURABLE_AGENTS_SANDBOX_IMAGE"
DEFAULT_IMAGE = "python:3.11-slim"
LABEL = "configurable-agents.sandbox"  # on every container, so leftovers can be found
NOBODY = 65534  # uid and gid of `nobody` in Debian-based images
WORKDIR = "/work"
RUNNER_PATH = "/sandbox/runner.py"
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
TMPFS = {"/tmp": "size=64m,mode=1777"}
LOG_MAX_SIZE = "1m"  # output written straight to fd 1/2 bypasses the runner's cap
LOG_TAIL_CHARS = 2_000
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
    job: Job, image: str, workdir: Path, name: str, host_cpus: int
) -> dict[str, Any]:
    """Arguments for `containers.create`: every limit and isolation setting in one place."""
    from docker.types import LogConfig, Ulimit

    limits = job.limits
    file_bytes = limits.max_file_mb * 2**20
    return {
        "image": image,
        "command": ["python3", "-I", "-S", RUNNER_PATH, WORKDIR],
        "name": name,
        "labels": {LABEL: "1"},
        "user": _container_user(),
        "environment": ENVIRONMENT,
        "working_dir": WORKDIR,
        "volumes": {
            str(workdir): {"bind": WORKDIR, "mode": "rw"},
            str(RUNNER): {"bind": RUNNER_PATH, "mode": "ro"},
        },
        "network_mode": "bridge" if limits.network else "none",
        "mem_limit": f"{limits.memory_mb}m",
        "memswap_limit": f"{limits.memory_mb}m",
        "nano_cpus": int(min(limits.cpus, host_cpus) * 1e9),
        "pids_limit": limits.max_processes,
        # The working dir is on the host's disk: cap each file the code writes there.
        "ulimits": [
            Ulimit(name="fsize", soft=file_bytes, hard=file_bytes),
            Ulimit(name="core", soft=0, hard=0),
        ],
        "read_only": True,
        "tmpfs": TMPFS,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "stdin_open": False,
        "hostname": "sandbox",
        "log_config": LogConfig(
            type="json-file", config={"max-size": LOG_MAX_SIZE, "max-file": "1"}
        ),
    }


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(_threads, function, *args)


class DockerSandbox:
    def __init__(self, image: str | None = None) -> None:
        self.image = image or default_image()

    async def run(self, job: Job) -> Outcome:
        client, host_cpus = await _in_thread(_daemon)
        outer = Path(tempfile.mkdtemp(prefix="ca-docker-"))
        name = f"configurable-agents-sandbox-{uuid.uuid4().hex[:12]}"
        cancelled = threading.Event()
        try:
            return await _in_thread(
                self._run_blocking, client, host_cpus, job, outer, name, cancelled
            )
        except asyncio.CancelledError:
            # The thread cannot be interrupted and would wait out the node's timeout: keep it
            # from starting the container, or remove (so kill) the running one now.
            cancelled.set()
            await _in_thread(_clean_up, client, name, outer)
            raise

    def _run_blocking(
        self,
        client: DockerClient,
        host_cpus: int,
        job: Job,
        outer: Path,
        name: str,
        cancelled: threading.Event,
    ) -> Outcome:
        import docker
        import requests

        workdir = outer / "work"
        try:
            workdir.mkdir()
            write_payload(workdir, job)
            _hand_over(workdir)
            container = client.containers.create(
                **container_config(job, self.image, workdir, name, host_cpus)
            )
            if cancelled.is_set():
                return Outcome(False, "killed", error="cancelled before it started")
            container.start()
            if _timed_out(container, job.limits.timeout):
                # Removing the container, which always comes next, kills it.
                return Outcome(False, "timeout", error=f"timed out after {job.limits.timeout:g}s")
            return read_outcome(workdir) or _without_result(container, job.limits)
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
            _clean_up(client, name, outer)


def _engine_is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _container_user() -> str:
    """`nobody` when the engine runs as root. Otherwise the engine's own ids: only root could
    delete what `nobody` leaves in the working dir, and inside the container they are just
    as unprivileged (no capabilities, no new privileges, only the working dir to write)."""
    if _engine_is_root() or not hasattr(os, "geteuid"):
        return f"{NOBODY}:{NOBODY}"
    return f"{os.geteuid()}:{os.getegid()}"


def _hand_over(workdir: Path) -> None:
    """Lets `nobody` read the payload and write its result, when the engine is root."""
    if _engine_is_root():
        for path in (workdir, workdir / "payload.json"):
            os.chown(path, NOBODY, NOBODY)


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


def _clean_up(client: DockerClient, name: str, outer: Path) -> None:
    import docker
    import requests

    # Not created, or the daemon went away: then there is nothing we could remove, and a
    # failed clean-up must not hide the node's outcome. `docker container prune --filter
    # label=configurable-agents.sandbox` finds anything left.
    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        client.api.remove_container(name, force=True)
    shutil.rmtree(outer, ignore_errors=True)

"""The Docker sandbox, run for real against a local daemon.

Without a daemon (or the image) these tests skip, saying how to get one; with
CONFIGURABLE_AGENTS_REQUIRE_DOCKER set (CI) a missing daemon or image fails them instead, so
CI cannot pass by skipping. The tests that need no daemon (the daemon-not-running error, the
container settings) always run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
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

from core.sandbox.base import Job, SandboxUnavailable
from core.sandbox.docker_backend import (
    DEADLINE_LABEL,
    ENGINE_LABEL,
    LABEL,
    DockerSandbox,
    container_config,
    default_image,
)
from core.sandbox.limits import Limits
from core.sandbox.ownership import engine_alive, state_dir

REQUIRE = "CONFIGURABLE_AGENTS_REQUIRE_DOCKER"
ROOT = Path(__file__).resolve().parent.parent
ENGINE = Path(__file__).resolve().parent / "sandbox_engine.py"
LOW = Limits(cpus=1, memory_mb=512, timeout=10, network=False)
# `nobody` for a root engine; otherwise the engine's own ids (see _container_user).
UID = 65534 if os.geteuid() == 0 else os.geteuid()


def _docker_missing() -> str | None:
    """Why these tests cannot run here, or None."""
    if not shutil.which("docker"):
        return "the docker client is not installed: run scripts/start-docker.sh"
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        return "no Docker daemon answers `docker info`: run scripts/start-docker.sh"
    image = default_image()
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        return f"image {image} is missing: run scripts/build-sandbox-image.sh {image}"
    return None


MISSING = None if os.environ.get(REQUIRE) else _docker_missing()
needs_docker = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


def _leftover_containers() -> list[str]:
    listing = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def _leftover_payloads() -> set[Path]:
    return set((state_dir() / "docker").glob("*.json"))


@needs_docker
@pytest.mark.parametrize("case", CASES, ids=str)
async def test_hostile_code_is_contained(case: HostileCase) -> None:
    with host_side() as host:
        await check_case(DockerSandbox(), case, host)


@needs_docker
@pytest.mark.parametrize("case", NETWORK_CASES, ids=str)
async def test_network_true_reaches_the_outside_not_the_host(case: HostileCase) -> None:
    with host_side() as host:
        await check_case(DockerSandbox(), case, host)


@needs_docker
async def test_two_runs_at_once_cannot_see_each_other() -> None:
    with host_side() as host:
        first, _ = await check_runs_are_apart(DockerSandbox(), host)
    assert first.result["cwd"] == "/work"


@needs_docker
def test_a_container_left_by_a_killed_engine_is_reaped(tmp_path: Path) -> None:
    """Docker keeps a container whose engine died; `sandbox reap` (and the next engine to use
    Docker) removes it, as its engine is gone."""
    engine = subprocess.Popen(
        [sys.executable, str(ENGINE), "docker"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert engine.stdout is not None
    pid = engine.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while not _containers_of(pid) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert _containers_of(pid), "the container never started"
    engine.kill()
    engine.wait()
    assert _containers_of(pid), "Docker removed it by itself: nothing to reap"
    done = subprocess.run(
        [sys.executable, "-m", "core", "sandbox", "reap"],
        cwd=ROOT,
        env={**os.environ, "CONFIGURABLE_AGENTS_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "docker sandbox: 1 leftover container removed" in done.stdout
    assert _containers_of(pid) == []


def _containers_of(engine_pid: str) -> list[str]:
    """Containers labelled as made by the engine with that pid on this host."""
    found = []
    for name in _leftover_containers():
        labels = json.loads(
            subprocess.run(
                ["docker", "inspect", "--format", "{{json .Config.Labels}}", name],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            or "{}"
        )
        if labels.get(ENGINE_LABEL, "").split(":")[1:2] == [engine_pid]:
            found.append(name)
    return found


async def test_daemon_not_running_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailable) as raised:
        await DockerSandbox().run(Job("result = 1", {}, {}, None, LOW))
    message = str(raised.value)
    assert "Docker daemon not reachable at unix:///nonexistent/docker.sock" in message
    assert "scripts/start-docker.sh" in message
    assert "sandbox.backend: process" in message


def test_image_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONFIGURABLE_AGENTS_SANDBOX_IMAGE", raising=False)
    assert DockerSandbox().image == "python:3.11-slim"
    monkeypatch.setenv("CONFIGURABLE_AGENTS_SANDBOX_IMAGE", "local/sandbox:1")
    assert DockerSandbox().image == "local/sandbox:1"
    assert DockerSandbox(image="other:2").image == "other:2"


def test_container_config_isolates_and_limits(tmp_path: Path) -> None:
    limits = Limits(cpus=8, memory_mb=1024, timeout=60, network=False)
    job = Job("result = 1", {}, {}, None, limits)
    config = container_config(job, "img:1", tmp_path, "name", host_cpus=2)
    assert config["nano_cpus"] == 2_000_000_000  # capped at the daemon's CPUs
    assert config["mem_limit"] == config["memswap_limit"] == "1024m"
    assert config["pids_limit"] == limits.max_processes
    assert config["network_mode"] == "none"
    assert config["read_only"] is True
    assert config["cap_drop"] == ["ALL"]
    assert config["security_opt"] == ["no-new-privileges"]
    assert config["user"].split(":")[0] == str(UID)
    assert set(config["environment"]) == {"PATH", "LANG"}
    assert config["labels"][LABEL] == "1"
    assert engine_alive(config["labels"][ENGINE_LABEL]) is True
    assert float(config["labels"][DEADLINE_LABEL]) > time.time() + limits.timeout
    assert config["command"] == [
        "python3", "-I", "-S", "/sandbox/runner.py", "/sandbox/payload.json", "/work"
    ]  # fmt: skip
    assert config["volumes"][str(tmp_path)] == {"bind": "/sandbox/payload.json", "mode": "ro"}
    assert {"bind": "/sandbox/runner.py", "mode": "ro"} in config["volumes"].values()
    assert config["tmpfs"]["/work"].startswith(f"size={limits.disk_mb}m,")
    assert "cap_add" not in config
    networked = Job("", {}, {}, None, Limits(cpus=1, memory_mb=512, timeout=1, network=True))
    wide = container_config(networked, "i", tmp_path, "n", 2)
    assert wide["network_mode"] == "bridge"
    # Root only until the runner has refused link-local addresses; then it drops to nobody.
    assert wide["user"] == "0:0" and set(wide["cap_add"]) == {"NET_ADMIN", "SETUID", "SETGID"}


@needs_docker
async def test_missing_image_names_the_fix() -> None:
    with pytest.raises(SandboxUnavailable) as raised:
        await DockerSandbox(image="configurable-agents-test/no-such-image:0").run(
            Job("result = 1", {}, {}, None, LOW)
        )
    message = str(raised.value)
    assert "image configurable-agents-test/no-such-image:0 not found locally" in message
    assert "docker pull" in message and "scripts/build-sandbox-image.sh" in message


# Reads what the kernel enforces on the container, under cgroup v1 or v2.
LIMITS_PROBE = """
import os

def first(*paths):
    for path in paths:
        if os.path.exists(path):
            return open(path).read().strip()
    return None

status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
try:
    open('/probe', 'w')
    root_writable = True
except OSError:
    root_writable = False
result = {
    'memory': first('/sys/fs/cgroup/memory.max',
                    '/sys/fs/cgroup/memory/memory.limit_in_bytes'),
    'pids': first('/sys/fs/cgroup/pids.max', '/sys/fs/cgroup/pids/pids.max'),
    'cpu_v2': first('/sys/fs/cgroup/cpu.max'),
    'cpu_quota': first('/sys/fs/cgroup/cpu/cpu.cfs_quota_us',
                       '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us'),
    'cpu_period': first('/sys/fs/cgroup/cpu/cpu.cfs_period_us',
                        '/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us'),
    'uid': os.getuid(),
    'caps': status['CapEff'].strip(),
    'no_new_privs': status['NoNewPrivs'].strip(),
    'root_writable': root_writable,
    'interfaces': sorted(os.listdir('/sys/class/net')),
    'cwd': os.getcwd(),
}
"""


@needs_docker
async def test_limits_are_applied_inside_the_container() -> None:
    limits = Limits(cpus=1, memory_mb=512, timeout=10, network=False, max_processes=16)
    outcome = await DockerSandbox().run(Job(LIMITS_PROBE, {}, {}, None, limits))
    assert outcome.ok, outcome
    seen = outcome.result
    assert int(seen["memory"]) == 512 * 2**20
    assert int(seen["pids"]) == 16
    if seen["cpu_v2"]:
        quota, period = seen["cpu_v2"].split()
    else:
        quota, period = seen["cpu_quota"], seen["cpu_period"]
    assert int(quota) / int(period) == 1.0
    assert seen["uid"] == UID
    assert int(seen["caps"], 16) == 0
    assert seen["no_new_privs"] == "1"
    assert seen["root_writable"] is False
    assert seen["interfaces"] == ["lo"]
    assert seen["cwd"] == "/work"


@needs_docker
async def test_network_when_the_node_allows_it() -> None:
    limits = Limits(cpus=1, memory_mb=512, timeout=10, network=True)
    code = "import os\nresult = sorted(os.listdir('/sys/class/net'))"
    outcome = await DockerSandbox().run(Job(code, {}, {}, None, limits))
    assert outcome.ok, outcome
    assert len(outcome.result) > 1  # an interface besides loopback


@needs_docker
async def test_parallel_nodes_run_at_once() -> None:
    code = "import time\ntime.sleep(2)\nresult = inputs['n'] * 2"
    jobs = [Job(code, {"n": n}, {}, None, LOW) for n in range(8)]
    started = time.monotonic()
    outcomes = await asyncio.gather(*(DockerSandbox().run(job) for job in jobs))
    assert [outcome.result for outcome in outcomes] == [n * 2 for n in range(8)]
    assert time.monotonic() - started < 10, "the nodes ran one after another"


@needs_docker
async def test_nothing_is_left_behind_even_when_cancelled() -> None:
    before = _leftover_payloads()
    endless = Job("while True:\n    pass\n", {}, {}, None, LOW)
    task = asyncio.create_task(DockerSandbox().run(endless))
    await asyncio.sleep(1.5)  # long enough for the container to be running
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 5, "cancelling waited for the node's timeout"
    await DockerSandbox().run(Job("1/0", {}, {}, None, LOW))
    assert _leftover_containers() == []
    assert _leftover_payloads() == before


@needs_docker
async def test_start_to_result_overhead() -> None:
    sandbox = DockerSandbox()
    trivial = Job("result = 1", {}, {}, None, LOW)
    await sandbox.run(trivial)  # the first run connects to the daemon
    times = []
    for _ in range(10):
        started = time.perf_counter()
        outcome = await sandbox.run(trivial)
        times.append(time.perf_counter() - started)
        assert outcome.ok, outcome
    median = statistics.median(times)
    print(f"docker sandbox start-to-result: median {median:.3f}s of {len(times)} runs")
    assert median < 1.5

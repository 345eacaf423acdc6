"""Hostile code every sandbox backend must contain: the cases as data, run by each backend's tests.

Usage from a backend's test module:

    @pytest.mark.parametrize("case", CASES, ids=str)
    async def test_hostile_code_is_contained(case: HostileCase) -> None:
        with host_side() as host:
            await check_case(MySandbox(), case, host)

Every case must end as a clean `Outcome` (a sandbox never raises for what the code does),
with an expected exit_reason, an error that says what happened, and within a time bound, so
a bomb that is merely slowed down still fails. `host_side()` provides what the cases probe on
the host: a listening socket that must never see a connection, API keys in the environment
that must never reach the code, a marker file name that must never appear on the host, a
host file the code must not get read back to it through its result.json, and a data folder
(telemetry, memory of other namespaces) the code must not read at all.

Beyond single cases: `check_runs_are_apart` runs two jobs at once and checks neither can
read the other's working directory, and `network_cases` are run with `network: true`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.sandbox.base import Job, Outcome, Sandbox
from core.sandbox.limits import STDOUT_KEEP_BYTES, Limits

SECRET = "sk-test-secret-do-not-leak"
SECRET_VARIABLES = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "CONFIGURABLE_AGENTS_TEST_SECRET")
MEMORY_MB = 512


@dataclass
class Host:
    listener: socket.socket
    marker: str  # a file name the escape cases try to create outside their working directory
    decoy: Path  # a host file, JSON shaped like a runner's report, holding the secret
    data: Path  # a data folder holding the secret: telemetry, another namespace's memory

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    def connections(self) -> int:
        """How many connections reached the listener (accepting them, so none linger)."""
        count = 0
        while True:
            try:
                connection, _ = self.listener.accept()
            except BlockingIOError:
                return count
            connection.close()
            count += 1

    def escape_paths(self) -> list[Path]:
        """Where an escaping write would land: the backends' working directories live in the
        temp dir, `..` of them is the temp dir itself, and /etc is the obvious target."""
        roots = {Path("/etc"), Path("/tmp"), Path("/var/tmp"), Path(tempfile.gettempdir()),
                 Path("/"), Path.cwd(), Path.cwd().parent}  # fmt: skip
        return [root / self.marker for root in roots]


@contextlib.contextmanager
def host_side() -> Iterator[Host]:
    """The listener, secrets in the environment and the marker; all undone afterwards."""
    saved = {name: os.environ.get(name) for name in SECRET_VARIABLES}
    os.environ.update(dict.fromkeys(SECRET_VARIABLES, SECRET))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    marker = f"ca-escape-{uuid.uuid4().hex[:8]}"
    decoy = Path(tempfile.gettempdir()) / f"{marker}-decoy.json"
    decoy.write_text(json.dumps({"ok": True, "result": SECRET}), encoding="utf-8")
    data = Path(tempfile.mkdtemp(prefix=f"{marker}-data-"))
    (data / "memory" / "other_team").mkdir(parents=True)
    (data / "memory" / "other_team" / "cache.db").write_text(SECRET, encoding="utf-8")
    (data / "telemetry.duckdb").write_text(SECRET, encoding="utf-8")
    data.chmod(0o755)  # readable by anyone on the host: the sandbox must still not see it
    host = Host(listener=listener, marker=marker, decoy=decoy, data=data)
    try:
        yield host
    finally:
        listener.close()
        decoy.unlink(missing_ok=True)
        shutil.rmtree(data, ignore_errors=True)
        for path in host.escape_paths():
            path.unlink(missing_ok=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass(frozen=True)
class HostileCase:
    name: str
    code: str
    reasons: frozenset[str]  # the exit_reason values that count as contained
    mentions: tuple[str, ...] = ()  # the error must mention one of these (any case)
    inputs: Callable[[Host], dict[str, Any]] = lambda host: {}
    nodes: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] | None = None
    timeout: float = 10.0
    within: float = 20.0  # seconds the whole run may take, sandbox start-up included
    check: Callable[[Outcome, Host], None] | None = None
    network: bool = False

    def __str__(self) -> str:
        return self.name


async def check_case(sandbox: Sandbox, case: HostileCase, host: Host) -> Outcome:
    """Runs `case` and asserts it was contained, the host unharmed; returns the outcome."""
    limits = Limits(cpus=1, memory_mb=MEMORY_MB, timeout=case.timeout, network=case.network)
    job = Job(case.code, case.inputs(host), case.nodes, case.memory, limits, (str(host.data),))
    started = time.monotonic()
    outcome = await sandbox.run(job)
    elapsed = time.monotonic() - started
    assert isinstance(outcome, Outcome)
    assert outcome.exit_reason in case.reasons, outcome
    assert outcome.ok == (outcome.exit_reason == "ok"), outcome
    if case.mentions:
        error = (outcome.error or "").lower()
        assert any(word in error for word in case.mentions), outcome
    assert elapsed < case.within, f"{case.name} took {elapsed:.1f}s"
    assert SECRET not in repr(outcome), "a host secret reached the outcome"
    if case.check:
        case.check(outcome, host)
    assert host.connections() == 0, "code reached the host's listener"
    escaped = [path for path in host.escape_paths() if path.exists()]
    assert not escaped, f"code wrote outside its working directory: {escaped}"
    return outcome


def _no_secret(outcome: Outcome, host: Host) -> None:
    assert outcome.ok, outcome
    seen = json.dumps(outcome.result) + outcome.stdout
    assert SECRET not in seen
    assert not set(SECRET_VARIABLES) & set(outcome.result["environ"])
    assert "PATH" in outcome.result["environ"]  # it did read an environment: just not ours


def _stdout_capped(outcome: Outcome, host: Host) -> None:
    assert len(outcome.stdout) <= STDOUT_KEEP_BYTES + 200, len(outcome.stdout)
    assert outcome.stdout.startswith("x" * 100)
    # The runner keeps only the first characters: printing 100 MB must not cost 100 MB.
    assert outcome.peak_memory_mb is None or outcome.peak_memory_mb < 100, outcome


def _line(number: int) -> Callable[[Outcome, Host], None]:
    def check(outcome: Outcome, host: Host) -> None:
        assert outcome.error_line == number, outcome

    return check


def _round_trip(outcome: Outcome, host: Host) -> None:
    assert outcome.result == {
        "text": "upstream!",
        "n": 6,
        "ratio": 0.5,
        "flag": True,
        "nothing": None,
        "items": [1, "two", 3.0, {"deep": [False]}],
        "unicode": "héllo ✓",
    }
    assert isinstance(outcome.result["items"][2], float)
    assert outcome.memory == {"runs": 2}
    assert outcome.stdout.strip() == "hello from the sandbox"
    assert outcome.cpu_seconds is not None and outcome.peak_memory_mb is not None


# Reads every file it can under inputs['paths'] (a few levels deep), keeping what it read.
READ_EVERYTHING = """
import os
result = {}
for top in inputs['paths']:
    for folder, dirs, files in os.walk(top):
        if folder.count(os.sep) - top.count(os.sep) > 3 or len(result) > 300:
            dirs[:] = []
            continue
        for name in files:
            path = os.path.join(folder, name)
            try:
                with open(path, 'rb') as handle:
                    result[path] = handle.read(256).decode(errors='replace')
            except OSError:
                pass
"""


def _read_nothing_private(outcome: Outcome, host: Host) -> None:
    assert outcome.ok, outcome
    assert not [path for path in outcome.result if path.startswith(str(host.data))]
    assert not [path for path in outcome.result if path.startswith(("/home/", "/root/"))]
    assert not [path for path in outcome.result if path.startswith(os.getcwd())]


_BOMB_ERRORS = ("resource temporarily unavailable", "can't start new thread", "blockingioerror")

CASES: list[HostileCase] = [
    HostileCase(
        name="success",
        code=(
            "print('hello from the sandbox')\n"
            "memory['runs'] = memory.get('runs', 0) + 1\n"
            "result = {'text': nodes['up'] + '!', 'n': inputs['n'] * 2, 'ratio': 0.5,\n"
            "          'flag': True, 'nothing': None, 'unicode': 'héllo ✓',\n"
            "          'items': [1, 'two', 3.0, {'deep': [False]}]}\n"
        ),
        inputs=lambda host: {"n": 3},
        nodes={"up": "upstream"},
        memory={"runs": 1},
        reasons=frozenset({"ok"}),
        check=_round_trip,
    ),
    HostileCase(
        name="infinite_loop",
        code="while True:\n    pass\n",
        timeout=2,
        within=12,
        reasons=frozenset({"timeout"}),
        mentions=("timed out",),
    ),
    HostileCase(
        name="memory_bomb",
        code="blocks = []\nwhile True:\n    blocks.append(b'x' * 50_000_000)\n",
        timeout=30,
        reasons=frozenset({"memory"}),
        mentions=("memory",),
    ),
    HostileCase(
        name="fork_bomb",
        code="import os\nwhile True:\n    os.fork()\n",
        within=15,
        reasons=frozenset({"exception"}),
        mentions=_BOMB_ERRORS,
    ),
    HostileCase(
        name="process_spawning",
        code=(
            "import subprocess, sys\n"
            "children = [subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            "            for _ in range(200)]\n"
        ),
        within=15,
        reasons=frozenset({"exception"}),
        mentions=_BOMB_ERRORS,
    ),
    HostileCase(
        name="thread_bomb",
        code=(
            "import threading, time\n"
            "while True:\n"
            "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
        ),
        within=15,
        reasons=frozenset({"exception"}),
        mentions=_BOMB_ERRORS,
    ),
    HostileCase(
        name="socket_to_host_loopback",
        code=(
            "import socket\n"
            "socket.create_connection(('127.0.0.1', inputs['port']), timeout=5)\n"
            "result = 'connected'\n"
        ),
        inputs=lambda host: {"port": host.port},
        reasons=frozenset({"exception"}),
        mentions=("refused", "unreachable", "network"),
    ),
    HostileCase(
        name="read_api_keys",
        code=(
            "import glob, os\n"
            "seen = {}\n"
            "for path in glob.glob('/proc/*/environ'):\n"
            "    try:\n"
            "        seen[path] = open(path, 'rb').read().decode(errors='replace')\n"
            "    except OSError:\n"
            "        pass\n"
            "result = {'environ': dict(os.environ), 'proc': seen}\n"
        ),
        reasons=frozenset({"ok"}),
        check=_no_secret,
    ),
    HostileCase(
        name="write_to_etc",
        code="with open('/etc/' + inputs['marker'], 'w') as handle:\n    handle.write('owned')\n",
        inputs=lambda host: {"marker": host.marker},
        reasons=frozenset({"exception"}),
        mentions=("read-only", "permission denied"),
        check=_line(1),
    ),
    HostileCase(
        name="write_above_working_dir",
        code="with open('../' + inputs['marker'], 'w') as handle:\n    handle.write('owned')\n",
        inputs=lambda host: {"marker": host.marker},
        reasons=frozenset({"exception"}),
        mentions=("read-only", "permission denied"),
    ),
    HostileCase(
        name="huge_file",
        code=(
            "chunk = b'x' * 1_048_576\n"
            "with open('big.bin', 'wb') as handle:\n"
            "    for _ in range(200):\n"
            "        handle.write(chunk)\n"
        ),
        reasons=frozenset({"exception"}),
        mentions=("file too large",),
    ),
    HostileCase(
        # The host reads result.json after the run: it must not follow the code's symlink.
        name="result_symlink_to_host_file",
        code="import os\nos.symlink(inputs['path'], 'result.json')\nos._exit(0)\n",
        inputs=lambda host: {"path": str(host.decoy)},
        reasons=frozenset({"sandbox_error", "killed"}),
    ),
    HostileCase(
        name="result_fifo",  # reading it would block the engine forever
        code="import os\nos.mkfifo('result.json')\nos._exit(0)\n",
        within=15,
        reasons=frozenset({"sandbox_error", "killed"}),
    ),
    HostileCase(
        name="print_100mb",
        code="chunk = 'x' * 1_000_000\nfor _ in range(100):\n    print(chunk)\nresult = 'done'\n",
        timeout=30,
        reasons=frozenset({"ok"}),
        check=_stdout_capped,
    ),
    HostileCase(
        name="write_100mb_to_fd",  # around the runner's capture, straight to the real stdout
        code="import os\nchunk = b'x' * 1_000_000\nfor _ in range(100):\n    os.write(1, chunk)\n",
        timeout=30,
        within=40,
        reasons=frozenset({"ok"}),
    ),
    HostileCase(
        name="syntax_error",
        code="a = 1\nb = 2\nif a == b print(a)\n",
        reasons=frozenset({"syntax_error"}),
        mentions=("syntaxerror",),
        check=_line(3),
    ),
    HostileCase(
        name="exception",
        code="a = 1\nb = 0\nc = a / b\n",
        reasons=frozenset({"exception"}),
        mentions=("zerodivisionerror",),
        check=_line(3),
    ),
    HostileCase(
        name="disk_quota",  # many files, each under the file size limit, more than the quota
        code=(
            "chunk = b'x' * 50_000_000\n"
            "for number in range(20):\n"
            "    with open(f'part{number}', 'wb') as handle:\n"
            "        handle.write(chunk)\n"
        ),
        timeout=30,
        within=40,
        reasons=frozenset({"exception"}),
        mentions=("no space left on device",),
    ),
    HostileCase(
        name="read_the_data_folder",  # telemetry, the cache, other namespaces' memory
        code=READ_EVERYTHING,
        inputs=lambda host: {"paths": [str(host.data), os.getcwd(), "/home", "/root"]},
        reasons=frozenset({"ok"}),
        check=_read_nothing_private,
    ),
]

NETWORK_CASES: list[HostileCase] = [
    HostileCase(
        name="network_reaches_no_host_loopback",
        code=(
            "import socket\n"
            "socket.create_connection(('127.0.0.1', inputs['port']), timeout=5)\n"
            "result = 'connected'\n"
        ),
        inputs=lambda host: {"port": host.port},
        reasons=frozenset({"exception"}),
        mentions=("refused", "unreachable"),
        network=True,
    ),
    HostileCase(
        name="network_reaches_no_link_local",  # where clouds answer with credentials
        code="import socket\nsocket.create_connection(('169.254.169.254', 80), timeout=5)\n",
        reasons=frozenset({"exception"}),
        mentions=("permission denied",),
        check=_line(2),
        network=True,
    ),
]


async def check_runs_are_apart(sandbox: Sandbox, host: Host) -> tuple[Outcome, Outcome]:
    """Two runs at once: the first writes the secret into its working directory and waits;
    the second looks everywhere a working directory could be. Returns both outcomes."""
    limits = Limits(cpus=1, memory_mb=MEMORY_MB, timeout=20, network=False)
    writer = Job(
        "import os, time\nopen('secret.txt', 'w').write(inputs['secret'])\n"
        "result = {'uid': os.getuid(), 'cwd': os.getcwd()}\ntime.sleep(4)\n",
        {"secret": SECRET_OF_A_RUN},
        {},
        None,
        limits,
    )
    reader = Job(
        "import glob, os, time\ntime.sleep(1.5)\n" + READ_EVERYTHING
        + "for path in glob.glob('/proc/*/cwd/*') + glob.glob('/proc/*/root/*/secret.txt'):\n"
        + "    try:\n        result[path] = open(path).read(256)\n"
        + "    except OSError:\n        pass\n"
        + "result['uid'] = os.getuid()\n",
        {"paths": ["/tmp", "/var/tmp", "/dev/shm", "/work", tempfile.gettempdir()]},
        {},
        None,
        limits,
    )  # fmt: skip
    first, second = await asyncio.gather(sandbox.run(writer), sandbox.run(reader))
    assert first.ok and second.ok, (first, second)
    assert SECRET_OF_A_RUN not in json.dumps(second.result)
    return first, second


SECRET_OF_A_RUN = "run-secret-4f1d"

"""What both sandbox backends share: the job, the outcome, and the files they exchange."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from core.sandbox.limits import MAX_RESULT_BYTES, STDOUT_KEEP_BYTES, Limits

RUNNER = Path(__file__).with_name("runner.py")
# The runner's report: a capped result plus capped output, with room for JSON escaping.
MAX_REPORT_BYTES = 8 * (MAX_RESULT_BYTES + STDOUT_KEEP_BYTES)


@dataclass(frozen=True)
class Job:
    code: str
    inputs: dict[str, Any]
    nodes: dict[str, Any]
    memory: dict[str, Any] | None  # None: the node has no memory, the code sees no `memory`
    limits: Limits


@dataclass
class Outcome:
    """How a code node ended. `exit_reason` is one of: ok, exception, syntax_error, timeout,
    memory, result_not_json, result_too_large, killed, sandbox_error."""

    ok: bool
    exit_reason: str
    result: Any = None
    memory: dict[str, Any] | None = None
    error: str | None = None
    error_line: int | None = None  # inside the node's `code:` block, 1-based
    stdout: str = ""
    cpu_seconds: float | None = None
    peak_memory_mb: float | None = None


class SandboxUnavailable(RuntimeError):
    """The backend cannot isolate code here; the message says what to do about it."""


class Sandbox(Protocol):
    async def run(self, job: Job) -> Outcome: ...


def write_payload(workdir: Path, job: Job) -> None:
    payload = {
        "code": job.code,
        "inputs": job.inputs,
        "nodes": job.nodes,
        "memory": job.memory,
        "stdout_keep": STDOUT_KEEP_BYTES,
        "max_result_bytes": MAX_RESULT_BYTES,
    }
    (workdir / "payload.json").write_text(json.dumps(payload), encoding="utf-8")


def _read_regular_file(path: Path) -> bytes:
    """The file's bytes, refusing symlinks and special files: the sandboxed code owns the
    working directory and could point result.json at a host file only we may read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path.name} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(MAX_REPORT_BYTES)
    finally:
        os.close(fd)


def read_outcome(workdir: Path) -> Outcome | None:
    """The runner's report, or None when it never wrote one (killed, out of memory…)."""
    try:
        report = json.loads(_read_regular_file(workdir / "result.json"))
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict):
        return None
    return Outcome(
        ok=bool(report.get("ok")),
        exit_reason="ok" if report.get("ok") else str(report.get("reason", "exception")),
        result=report.get("result"),
        memory=report.get("memory"),
        error=report.get("error"),
        error_line=report.get("error_line"),
        stdout=str(report.get("stdout", "")),
        cpu_seconds=report.get("cpu_seconds"),
        peak_memory_mb=report.get("peak_memory_mb"),
    )

"""What both sandbox backends share: the job, the outcome, and the files they exchange."""

from __future__ import annotations

import json
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
    # Host folders the code must not see at all (the data folder: telemetry, cache, every
    # namespace's memory); the process sandbox mounts an empty folder over each.
    private: tuple[str, ...] = ()


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


def payload(job: Job, drop_to: tuple[int, int] | None = None) -> bytes:
    """What the runner reads: one JSON document (no raw newline inside). `drop_to` (uid,
    gid) is for a runner started as root to guard the network: it becomes that user before
    the code runs."""
    return json.dumps(
        {
            "code": job.code,
            "inputs": job.inputs,
            "nodes": job.nodes,
            "memory": job.memory,
            "stdout_keep": STDOUT_KEEP_BYTES,
            "max_result_bytes": MAX_RESULT_BYTES,
            "drop_to": drop_to,
        }
    ).encode()


def parse_report(data: bytes) -> Outcome | None:
    """The runner's report, or None when it never wrote a whole one (killed, out of memory,
    or the code wrote over it)."""
    try:
        report = json.loads(data)
    except ValueError:
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

"""What a code node may use, from its resource preset (docs/workflow-format.md) and overrides."""

from __future__ import annotations

from dataclasses import dataclass

from core.workflow.models import RESOURCE_PRESETS, SandboxSettings

MAX_PROCESSES = 16  # threads and child processes together; enough for real work, not a bomb
MAX_FILE_MB = 64  # largest file the code may write in its working directory
DISK_MB = 256  # all it may write there (a tmpfs of this size), unless its preset says more
MAX_RESULT_BYTES = 1_000_000
STDOUT_KEEP_BYTES = 10_000  # what telemetry keeps of a node's printed output


@dataclass(frozen=True)
class Limits:
    cpus: int
    memory_mb: int
    timeout: float
    network: bool
    max_processes: int = MAX_PROCESSES
    max_file_mb: int = MAX_FILE_MB
    disk_mb: int = DISK_MB

    @classmethod
    def from_settings(cls, settings: SandboxSettings, node_timeout: float | None) -> Limits:
        """The preset's figures; a `sandbox.timeout` (or the node's own) overrides its time."""
        preset = RESOURCE_PRESETS[settings.resource_preset]
        timeout = settings.timeout or node_timeout or preset["timeout"]
        return cls(
            cpus=int(preset["cpus"]),
            memory_mb=int(preset["memory_mb"]),
            timeout=float(timeout),
            network=settings.network,
            disk_mb=int(preset["disk_mb"]),
        )

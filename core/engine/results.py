"""What a run returns to callers, and the rows it leaves in telemetry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

RUN_STATUSES = ("success", "failed", "budget_exceeded", "cancelled")


@dataclass(slots=True)
class NodeResult:
    name: str
    node_type: str
    status: str  # success | failed | timeout | budget_exceeded | cancelled
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    output: Any = None
    error: str | None = None
    provider: str | None = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of input_tokens, read from the provider's prompt cache
    reasoning_tokens: int = 0  # of output_tokens
    usage_estimated: bool = False  # the provider sent no usage: tokens counted here
    cost_usd: float | None = 0.0  # None: no known price (or usage only estimated)
    cache_hit: bool = False
    cache_enabled: bool = False
    saved_cost_usd: float | None = None
    attempts: int = 0
    simulated: bool = False
    queue_ms: float = 0.0
    request_hash: str | None = None
    reserved_tokens: int | None = None  # the budget's booking before the call
    reserved_cost_usd: float | None = None
    cpu_seconds: float | None = None  # code nodes: CPU the sandboxed code used
    peak_memory_mb: float | None = None
    exit_reason: str | None = None  # code nodes: ok, exception, timeout, memory, ...
    stdout: str | None = None  # code nodes: what the code printed (truncated)
    # LLM nodes: the texts sent and received and the full cache key, stored in telemetry
    # when the run stores content (core.telemetry.content); references, never copies.
    prompt: str | None = None
    system: str | None = None
    response: str | None = None
    cache_key: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass
class RunResult:
    run_id: str
    workflow: str
    workflow_hash: str
    status: str
    started_at: datetime
    finished_at: datetime
    duration_ms: float
    outputs: dict[str, Any]
    nodes: dict[str, NodeResult]
    input_tokens: int
    output_tokens: int
    cost_usd: (
        float | None
    )  # of the run's own kind: real calls, or simulated ones in a simulated run
    unpriced_calls: int
    simulated: bool
    simulated_cost_usd: float | None = None  # simulated calls, never part of real spend
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        """The `run --json` document: outputs first, then what the run consumed."""
        return {
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status,
            "outputs": self.outputs,
            "error": self.error,
            "simulated": self.simulated,
            "duration_ms": round(self.duration_ms, 1),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "simulated_cost_usd": self.simulated_cost_usd,
            "unpriced_calls": self.unpriced_calls,
            "warnings": self.warnings,
            "nodes": {
                name: {
                    "status": node.status,
                    "duration_ms": round(node.duration_ms, 1),
                    "input_tokens": node.input_tokens,
                    "output_tokens": node.output_tokens,
                    "cost_usd": node.cost_usd,
                    "simulated": node.simulated,
                    "cached_tokens": node.cached_tokens,
                    "reasoning_tokens": node.reasoning_tokens,
                    "usage_estimated": node.usage_estimated,
                    "cache_hit": node.cache_hit,
                    "attempts": node.attempts,
                    "error": node.error,
                }
                for name, node in self.nodes.items()
            },
        }

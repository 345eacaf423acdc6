"""Running one code node: pick the sandbox, hand it the node's view of the run, read back."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from core.engine.memory import MemoryStore
from core.engine.results import NodeResult
from core.sandbox.base import Job, Outcome, Sandbox, SandboxUnavailable
from core.sandbox.limits import Limits
from core.workflow import Workflow
from core.workflow.models import CodeNode, SandboxSettings

_STATUS = {"ok": "success", "timeout": "timeout"}


def sandbox_for(settings: SandboxSettings) -> Sandbox:
    """The backend `settings` ask for (experiments' python scorers use it too)."""
    if settings.backend == "docker":
        from core.sandbox.docker_backend import DockerSandbox

        return DockerSandbox(image=settings.image)
    from core.sandbox.process_backend import ProcessSandbox

    return ProcessSandbox()


def memory_namespace(workflow: Workflow, node: Any) -> str | None:
    """The node's namespace, or None when its memory is off."""
    settings = node.memory
    if settings is None or not settings.enabled:
        return None
    return settings.namespace or workflow.name


async def run_code_node(
    workflow: Workflow,
    node: CodeNode,
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    memory: MemoryStore,
    private: tuple[str, ...] = (),
) -> NodeResult:
    """`private`: host folders the code must not see (the data folder); its own namespace's
    memory reaches it only through the job."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    namespace = memory_namespace(workflow, node)
    before = memory.snapshot(namespace) if namespace else None
    upstream = {
        name: outputs[name] for name in workflow.graph.ancestors_of(node.name) if name in outputs
    }
    job = Job(
        code=node.code,
        inputs=inputs,
        nodes=upstream,
        memory=dict(before) if before is not None else None,
        limits=Limits.from_settings(node.sandbox, node.timeout),
        private=private,
    )
    try:
        outcome = await sandbox_for(node.sandbox).run(job)
    except SandboxUnavailable as exc:
        outcome = Outcome(False, "sandbox_unavailable", error=str(exc))
    if outcome.ok and namespace and before is not None and outcome.memory is not None:
        ttl = node.memory.ttl if node.memory else None
        memory.apply(namespace, before, outcome.memory, ttl)
    return NodeResult(
        name=node.name,
        node_type="code",
        status=_STATUS.get(outcome.exit_reason, "failed"),
        started_at=started,
        finished_at=datetime.now(UTC),
        duration_ms=(time.perf_counter() - clock) * 1000,
        output=outcome.result if outcome.ok else None,
        error=_located(workflow, node, outcome),
        provider=node.sandbox.backend,
        attempts=1,
        cpu_seconds=outcome.cpu_seconds,
        peak_memory_mb=outcome.peak_memory_mb,
        exit_reason=outcome.exit_reason,
        stdout=outcome.stdout or None,
    )


def _located(workflow: Workflow, node: CodeNode, outcome: Outcome) -> str | None:
    if outcome.ok:
        return None
    if outcome.error_line is None:
        return outcome.error
    file_line = workflow.code_starts.get(node.name, 1) + outcome.error_line - 1
    return (
        f"{outcome.error} (line {outcome.error_line} of the code, {workflow.filename}:{file_line})"
    )

"""The end-of-run hook: a finished run handed to the live exporters (OTLP traces, MLflow)
that the environment and the workflow's `telemetry:` settings ask for.

It runs on the engine's loop as the run ends, so it only builds rows and queues them; the
exporters send on threads of their own. Observability must never fail a run: any error
here is one warning and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.engine.llm_node import build_request
from core.exporters.sinks import live_exporters
from core.exporters.spans import RunContent
from core.telemetry.rows import node_row
from core.workflow.models import LLMNode
from core.workflow.templates import TemplateValues

if TYPE_CHECKING:
    from core.engine.scheduler import _Run

log = logging.getLogger("core.engine")
_warned = False


def export_finished_run(run: _Run, row: Mapping[str, Any]) -> None:
    """Queues the run (its `runs` row, rebuilt node rows and, with `export_content`, its
    prompts and responses) on every live exporter configured. Never raises."""
    global _warned
    settings = run.workflow.spec.workflow.telemetry
    try:
        exporters = live_exporters(settings)
        if not exporters:
            return
        nodes = [
            node_row(
                result,
                run_id=run.run_id,
                node=name,
                workflow=run.workflow.name,
                workflow_hash=run.workflow.hash,
            )
            for name, result in run.results.items()
        ]
        content = run_content(run) if settings.export_content else None
        for exporter in exporters:
            exporter.export_run(row, nodes, run.workflow.graph.parents, content)
    except Exception:
        if not _warned:
            _warned = True
            log.warning("live export of run %s failed; runs go on", run.run_id, exc_info=True)


def run_content(run: _Run) -> RunContent:
    """What the run read and wrote. Each LLM node's messages are rendered again from the
    values it saw (upstream outputs never change once set, and its memory snapshot is
    kept), so they are the messages it sent, without keeping every prompt of every run."""
    messages = {}
    for name in run.results:
        node = run.workflow.nodes[name]
        if not isinstance(node, LLMNode) or name not in run.memory_read:
            continue
        values = TemplateValues(run.inputs, run.outputs, run.memory_read[name])
        try:
            messages[name] = build_request(run.workflow, node, values, simulated=True).messages
        except KeyError:
            continue  # a field its prompt names was missing: it failed before any call
    outputs = {name: run.outputs[name] for name in run.workflow.outputs if name in run.outputs}
    results = {name: run.outputs[name] for name in run.results if name in run.outputs}
    return RunContent(inputs=run.inputs, outputs=outputs, messages=messages, results=results)

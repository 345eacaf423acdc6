"""The end-of-run hook: a finished run handed to the live exporters (OTLP traces, MLflow)
that the environment and the workflow's `telemetry:` settings ask for.

It runs on the engine's loop as the run ends, so it only looks the exporters up (a few
environment lookups) and hands the rest over to the export thread (`exporters.handoff`):
building rows, content and spans happens there, sending on the exporters' own threads.
Observability must never fail a run: any error is one warning and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from core.engine.llm_node import build_request
from core.exporters.handoff import hand_off
from core.exporters.sinks import RunExporter, live_exporters
from core.exporters.spans import RunContent
from core.telemetry.rows import node_row
from core.workflow.models import LLMNode
from core.workflow.templates import TemplateValues

if TYPE_CHECKING:
    from core.engine.scheduler import _Run

log = logging.getLogger("core.engine")
_warned = False


def export_finished_run(run: _Run, row: Mapping[str, Any]) -> None:
    """Hands the finished run to every live exporter configured, off this thread. The run's
    results, outputs and memory snapshots no longer change once it has ended. Never
    raises."""
    try:
        exporters = live_exporters(run.workflow.spec.workflow.telemetry)
        if exporters:
            hand_off(lambda: _export(run, row, exporters))
    except Exception:
        _warn(run)


def _export(run: _Run, row: Mapping[str, Any], exporters: list[RunExporter]) -> None:
    """Queues the run (its `runs` row, rebuilt node rows and, with `export_content`, its
    prompts and responses) on each exporter."""
    try:
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
        exported = run.workflow.spec.workflow.telemetry.export_content
        content = run_content(run) if exported else None
        for exporter in exporters:
            exporter.export_run(row, nodes, run.workflow.graph.parents, content)
    except Exception:
        _warn(run)


def _warn(run: _Run) -> None:
    global _warned
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

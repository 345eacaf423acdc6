"""What the Runs page draws from core.analytics' run search and run detail: the list of runs
with a stable link to each, and one run's DAG coloured by how each node ended, with its
duration, and its node table."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from urllib.parse import quote

import pandas as pd

from core.analytics.run_search import RunRow
from core.app.dag import BORDER, MUTED
from core.app.gantt import STATUS_COLOURS, duration_text
from core.engine.results import NodeResult
from core.formatting import money
from core.workflow import Workflow

RUNS_PATH = "runs"  # the page's address: /runs?run=<run_id> opens a run
NOT_RUN = "#F6F8FA"
# Fills light enough to read a label on, in the hues the Gantt uses for the same statuses.
STATUS_FILLS = {
    "success": "#DDF4DA",
    "failed": "#FBDADA",
    "timeout": "#EFDDEB",
    "budget_exceeded": "#FDE5CC",
    "cancelled": "#E6E6E6",
}
CACHE_HIT_FILL = "#D6ECFA"


def run_link(run_id: str) -> str:
    """The run's address relative to the app: paste it after the app's URL."""
    return f"{RUNS_PATH}?run={quote(run_id)}"


def runs_table(rows: list[RunRow]) -> pd.DataFrame:
    """One page of runs as the table shows them, the first column a link that opens each."""
    return pd.DataFrame(
        [
            {
                "run": run_link(row.run_id),
                "started (UTC)": row.started_at,
                "workflow": row.workflow,
                "status": row.status.replace("_", " "),
                "mode": "simulated" if row.simulated else "real",
                "duration (s)": None if row.duration_ms is None else row.duration_ms / 1000,
                "cost": money(row.cost_usd),
                "tokens": row.tokens,
                "tags": row.tags if row.tags and row.tags != "{}" else "",
                "error": row.error or "",
                "run_id": row.run_id,
            }
            for row in rows
        ],
        columns=[
            "run",
            "started (UTC)",
            "workflow",
            "status",
            "mode",
            "duration (s)",
            "cost",
            "tokens",
            "tags",
            "error",
            "run_id",
        ],
    )


def run_dot(workflow: Workflow, nodes: Mapping[str, NodeResult]) -> str:
    """Graphviz source of the run's DAG: each box filled by how its node ended (blue for a
    cache hit), with its duration; nodes that never ran stay blank and say so."""
    lines = [
        "digraph run {",
        '  graph [rankdir=TB, bgcolor="transparent", nodesep=0.35, ranksep=0.45];',
        f'  node [shape=box, style="rounded,filled", fontname="Helvetica", color="{BORDER}", '
        "margin=0.12];",
        f'  edge [color="{BORDER}", arrowsize=0.7];',
    ]
    for name in workflow.graph.order:
        lines.append(f"  {_run_node(name, nodes.get(name))}")
    for name in workflow.graph.order:
        lines.extend(f'  "{parent}" -> "{name}";' for parent in workflow.graph.parents[name])
    lines.append("}")
    return "\n".join(lines)


def _run_node(name: str, node: NodeResult | None) -> str:
    if node is None:
        detail, fill, edge = "not run", NOT_RUN, BORDER
    else:
        state = "cache hit" if node.cache_hit else node.status.replace("_", " ")
        detail = f"{state} · {duration_text(node.duration_ms)}"
        fill = CACHE_HIT_FILL if node.cache_hit else STATUS_FILLS.get(node.status, NOT_RUN)
        edge = STATUS_COLOURS.get(node.status, BORDER)
    label = (
        f'<table border="0" cellspacing="1"><tr><td><font point-size="14"><b>{escape(name)}'
        f'</b></font></td></tr><tr><td><font point-size="11" color="{MUTED}">'
        f"{escape(detail)}</font></td></tr></table>"
    )
    return f'"{name}" [label=<{label}>, fillcolor="{fill}", color="{edge}", penwidth=1.8];'


def node_table(order: list[str], nodes: Mapping[str, NodeResult]) -> pd.DataFrame:
    """Every node of the run's workflow in order, with what it cost and how it went; nodes
    that never ran are listed as such."""
    rows = []
    for name in order:
        node = nodes.get(name)
        if node is None:
            rows.append({"node": name, "status": "not run"})
            continue
        rows.append(
            {
                "node": name,
                "status": node.status.replace("_", " "),
                "model": f"{node.provider}/{node.model}" if node.model else node.node_type,
                "duration (s)": node.duration_ms / 1000,
                "input tokens": node.input_tokens,
                "output tokens": node.output_tokens,
                "cost": "$0 · cache hit" if node.cache_hit else money(node.cost_usd),
                "attempts": node.attempts,
                "error": node.error or "",
            }
        )
    return pd.DataFrame(rows)

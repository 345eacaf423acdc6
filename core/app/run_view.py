"""What the Runs page draws from core.analytics' run search and run detail: the list of runs
with a stable link to each, and each node of one run's DAG coloured by how it ended, with
its duration, and its node table."""

from __future__ import annotations

from collections.abc import Mapping, Set
from urllib.parse import quote

import pandas as pd

from core.analytics.run_search import RunRow
from core.app.gantt import duration_text
from core.app.graph_chart import NodeMark, node_state
from core.engine.results import NodeResult
from core.formatting import money
from core.workflow import Workflow

RUNS_PATH = "runs"  # the page's address: /runs?run=<run_id> opens a run


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


def run_marks(
    workflow: Workflow, nodes: Mapping[str, NodeResult], running: Set[str] | None = None
) -> dict[str, NodeMark]:
    """Each node of the run's workflow coloured by how it ended, with its duration. While the
    run goes on (`running` given), a node not finished is running or pending; once it is
    over, a node that never ran was skipped."""
    marks = {}
    for name in workflow.graph.order:
        node = nodes.get(name)
        if node is not None:
            state = node_state(node)
            marks[name] = NodeMark(name, state, f"{state} · {duration_text(node.duration_ms)}")
        elif running is None:
            marks[name] = NodeMark(name, "skipped", "not run")
        else:
            state = "running" if name in running else "pending"
            marks[name] = NodeMark(name, state, state)
    return marks


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

"""A run's timeline: when each node ran, how it ended, and which chain set the run's length.

Bars are placed from the nodes' own start and finish times, so queueing behind the
concurrency limit shows as a gap; the critical path comes from the durations alone (each
node starting when its last parent ends), which is the chain worth speeding up first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import altair as alt
import pandas as pd

from core.analytics.critical_path import Schedule, critical_path
from core.engine.results import NodeResult
from core.formatting import money
from core.workflow import Workflow

STATUS_COLOURS = {
    "success": "#54A24B",
    "failed": "#E45756",
    "timeout": "#B279A2",
    "budget_exceeded": "#F58518",
    "cancelled": "#9D9D9D",
}
ON_PATH = "on the critical path"
OFF_PATH = "off the path"


def schedule(workflow: Workflow, nodes: Mapping[str, NodeResult]) -> Schedule:
    return critical_path(workflow.graph, {name: node.duration_ms for name, node in nodes.items()})


def timeline_rows(
    workflow: Workflow,
    nodes: Mapping[str, NodeResult],
    plan: Schedule,
    started_at: datetime | None = None,
) -> pd.DataFrame:
    """One row per node that ran, in workflow order, times in seconds from the run's start."""
    ran = [nodes[name] for name in workflow.graph.order if name in nodes]
    origin = started_at or min((node.started_at for node in ran), default=None)
    rows = []
    for node in ran:
        start = (node.started_at - origin).total_seconds() if origin else 0.0
        end = max(start, (node.finished_at - origin).total_seconds() if origin else 0.0)
        rows.append(
            {
                "node": node.name,
                "start": start,
                "end": end,
                "duration": duration_text(node.duration_ms),
                "status": node.status,
                "path": ON_PATH if plan.on_path(node.name) else OFF_PATH,
                "model": f"{node.provider}/{node.model}" if node.model else node.node_type,
                "tokens": f"{node.input_tokens:,} in · {node.output_tokens:,} out",
                "cost": "$0 · cache hit" if node.cache_hit else money(node.cost_usd),
                "cache": "hit" if node.cache_hit else ("miss" if node.cache_enabled else "off"),
                "attempts": node.attempts,
                "slack": duration_text(plan.slack.get(node.name, 0.0)),
                "label": duration_text(node.duration_ms) + (" · cached" if node.cache_hit else ""),
            }
        )
    return pd.DataFrame(rows)


def duration_text(ms: float) -> str:
    """Milliseconds while they are what matters (cache hits, code nodes), seconds after."""
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


def gantt_chart(
    workflow: Workflow, nodes: Mapping[str, NodeResult], started_at: datetime | None = None
) -> alt.LayerChart:
    """Bars coloured by status; critical-path bars are solid with a dark outline, the rest
    faded, so the chain that decided the run's length stands out at a glance."""
    plan = schedule(workflow, nodes)
    data = timeline_rows(workflow, nodes, plan, started_at)
    order = list(data["node"]) if not data.empty else []
    y = alt.Y("node:N", sort=order, title=None, axis=alt.Axis(labelLimit=160))
    span = float(data["end"].max()) if not data.empty else 0.0
    if span < 1:  # a run of cache hits takes milliseconds: seconds would all read 0
        data[["start", "end"]] *= 1000
        unit = "Milliseconds"
    else:
        unit = "Seconds"
    statuses = [s for s in STATUS_COLOURS if s in set(data.get("status", []))] or ["success"]
    bars = (
        alt.Chart(data)
        .mark_bar(height={"band": 0.62}, cornerRadius=2, strokeWidth=2.5)
        .encode(
            x=alt.X(
                "start:Q", title=f"{unit} since the run started", axis=alt.Axis(format=",.4~g")
            ),
            x2="end:Q",
            y=y,
            color=alt.Color(
                "status:N",
                title="Status",
                scale=alt.Scale(domain=statuses, range=[STATUS_COLOURS[s] for s in statuses]),
                legend=alt.Legend(orient="bottom"),
            ),
            opacity=alt.Opacity(
                "path:N",
                title="Critical path",
                scale=alt.Scale(domain=[ON_PATH, OFF_PATH], range=[1.0, 0.45]),
                legend=alt.Legend(orient="bottom"),
            ),
            stroke=alt.condition(alt.datum.path == ON_PATH, alt.value("#1B1B1B"), alt.value(None)),
            tooltip=[
                alt.Tooltip("node:N", title="Node"),
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("model:N", title="Model"),
                alt.Tooltip("duration:N", title="Duration"),
                alt.Tooltip("start:Q", title=f"Started at ({unit.lower()})", format=",.4~g"),
                alt.Tooltip("tokens:N", title="Tokens"),
                alt.Tooltip("cost:N", title="Cost"),
                alt.Tooltip("cache:N", title="Cache"),
                alt.Tooltip("attempts:Q", title="Attempts"),
                alt.Tooltip("path:N", title="Critical path"),
                alt.Tooltip("slack:N", title="Slack"),
            ],
        )
    )
    labels = (
        alt.Chart(data)
        .mark_text(align="left", dx=6, fontSize=12, color="#444")
        .encode(x="end:Q", y=y, text="label:N")
    )
    return alt.layer(bars, labels).properties(height=110 + 44 * len(order))  # axis, legends

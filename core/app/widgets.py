"""Streamlit widgets the pages share: headline cards and table column settings.

Kept apart from charts.py, which builds pure Altair charts and tables that the HTML export
draws too and that tests can inspect without a running Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from core.analytics.targets import TargetStatus
from core.app.charts import SHARE, Headline, violations_table


def columns(frame: pd.DataFrame) -> dict[str, object]:
    """st.dataframe column settings: shares as bars, counts with thousands separators."""
    config: dict[str, object] = {}
    for name in frame.columns:
        if name == SHARE:
            config[name] = st.column_config.ProgressColumn(
                SHARE, format="percent", min_value=0.0, max_value=1.0
            )
        elif pd.api.types.is_integer_dtype(frame[name]):
            config[name] = st.column_config.NumberColumn(name, format="localized")
    return config


def show_metrics(metrics: Sequence[Headline]) -> None:
    """A row of bordered st.metric cards, each as wide as its figure: in equal columns a
    long figure such as $0.000074 would be cut short."""
    with st.container(horizontal=True):
        for metric in metrics:
            st.metric(
                metric.label,
                metric.value,
                metric.delta,
                delta_color=metric.delta_color,
                help=metric.help,
                border=True,
                width="content",
            )


def show_targets(status: TargetStatus, scope: str) -> None:
    """The workflows' own targets over the window: each violation with its figures, or one
    line saying they are met, or how to declare some."""
    window = status.label.lower()
    if not status.judged:
        st.caption(
            f"No `targets:` to judge for {scope} over the {window}: declare them under "
            "`workflow:` (e.g. `targets: {max_run_cost: 0.05, min_success_rate: 0.95}`), "
            "and `configurable-agents check --notify URL` alerts a channel when one is missed."
        )
        return
    found = status.violations
    if not found:
        st.success(
            f"All {len(status.judged)} targets of {', '.join(status.workflows)} met over the "
            f"{window}.",
            icon="✅",
        )
        return
    st.error(
        f"{len(found)} of {len(status.judged)} targets violated over the {window} "
        f"({', '.join(sorted({m.workflow for m in found if m.workflow}))}).",
        icon="🚨",
    )
    st.dataframe(violations_table(status), hide_index=True, width="stretch")

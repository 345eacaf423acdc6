"""Streamlit widgets the pages share: headline cards and table column settings.

Kept apart from charts.py, which builds pure Altair charts and tables that the HTML export
draws too and that tests can inspect without a running Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from core.app.charts import SHARE, Headline


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

"""The figures the Profile, Costs and Compare pages draw beyond the reports themselves: what
their pickers offer, spend over time split by one dimension, and per-node latency quantiles.

Each is an aggregate query, so what reaches pandas and the charts is at most a few thousand
rows however long the history (Altair refuses more than 5,000, and a browser should not draw
them anyway). Spend over time reads exactly the rows `cost_report` reads (LLM node rows of
the window, from the daily rollup through `filters.node_days`, with the same filters), so its
bars add up to the report's breakdowns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd

from core.analytics.filters import FINISHED_RUN, Where, node_days
from core.analytics.window import Window, window
from core.settings import data_home
from core.telemetry import get_store

STACK_DIMENSIONS = ("provider", "model", "workflow", "node")
TOP_KEYS = 8  # series in a stacked chart; the rest become one "other" series
DAILY_UP_TO_DAYS = 92  # longer windows are drawn by week, then by month
WEEKLY_UP_TO_DAYS = 730


# ----------------------------------------------------------------------------- pickers


@dataclass(frozen=True)
class Choices:
    """What the filters can offer: everything telemetry has seen, most relevant first."""

    workflows: list[str]  # latest run first, so the first is the natural default
    models: list[tuple[str, str]]  # (provider, model) of LLM calls, most spent on first
    first_day: date | None
    last_day: date | None

    @property
    def providers(self) -> list[str]:
        return list(dict.fromkeys(provider for provider, _ in self.models))


def choices(home: str | Path | None = None) -> Choices:
    store = get_store(data_home(home))
    with store.connect() as con:
        workflows = con.execute(
            "SELECT workflow FROM runs WHERE workflow IS NOT NULL"
            " GROUP BY workflow ORDER BY max(started_at) DESC NULLS LAST, workflow"
        ).fetchall()
        models = con.execute(
            "SELECT provider, model FROM node_daily"
            " WHERE node_type = 'llm' AND provider <> '' AND model <> ''"
            " GROUP BY ALL ORDER BY sum(cost_usd) DESC, provider, model"
        ).fetchall()
        first, last = con.execute(
            "SELECT min(day), max(day) FROM node_daily WHERE day > DATE '-infinity'"
        ).fetchone()
    return Choices([w for (w,) in workflows], [(p, m) for p, m in models], first, last)


@dataclass(frozen=True)
class Version:
    workflow_hash: str
    runs: int
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Variant:
    workflow: str
    experiment: str | None
    variant: str
    runs: int


@dataclass(frozen=True)
class RunGroups:
    """The ways a set of runs can be named on the Compare page, with how many runs each has."""

    versions: list[Version]  # newest first
    variants: list[Variant]
    tags: list[tuple[str, int]]  # ("KEY=VALUE", runs)
    first_day: date | None
    last_day: date | None


def run_groups(
    home: str | Path | None, workflow: str | None = None, simulated: bool | None = None
) -> RunGroups:
    where = Where().add(FINISHED_RUN)
    if workflow is not None:
        where.add("workflow = ?", workflow)
    if simulated is not None:
        where.add("coalesce(simulated, false) = ?", simulated)
    store = get_store(data_home(home))
    with store.connect() as con:
        versions = con.execute(
            "SELECT workflow_hash, count(*), min(started_at), max(started_at) FROM runs"
            f" WHERE {where.sql} AND workflow_hash IS NOT NULL GROUP BY 1 ORDER BY 4 DESC",
            where.params,
        ).fetchall()
        variants = con.execute(
            "SELECT workflow, experiment, variant, count(*) FROM runs"
            f" WHERE {where.sql} AND variant IS NOT NULL GROUP BY ALL ORDER BY 1, 2, 3",
            where.params,
        ).fetchall()
        tags = con.execute(
            "SELECT key || '=' || value, count(*) FROM ("
            "  SELECT key, tags::JSON->>key AS value FROM ("
            f"    SELECT tags, unnest(json_keys(tags::JSON)) AS key FROM runs"
            f"    WHERE {where.sql} AND tags IS NOT NULL AND json_valid(tags)))"
            " WHERE value IS NOT NULL GROUP BY 1 ORDER BY 1",
            where.params,
        ).fetchall()
        first, last = con.execute(
            f"SELECT min(started_at)::DATE, max(started_at)::DATE FROM runs WHERE {where.sql}",
            where.params,
        ).fetchone()
    return RunGroups(
        versions=[Version(*row) for row in versions],
        variants=[Variant(*row) for row in variants],
        tags=[(tag, int(runs)) for tag, runs in tags],
        first_day=first,
        last_day=last,
    )


# ----------------------------------------------------------------------------- spend over time


@dataclass(frozen=True)
class SpendSeries:
    """Priced LLM spend per period and key, for both kinds of run; never summed across them.

    `rows` has the columns simulated, period (the first day of the bucket), key, other,
    cost_usd and calls. The TOP_KEYS keys that cost the most in the window (per kind of run)
    keep their name; the others are summed into one key ("12 other nodes", `other` true), so
    a chart needs a few colours, not hundreds.
    """

    dimension: str
    grain: str  # day | week | month
    start: date  # first day of the window
    end: date  # last day of the window (inclusive)
    rows: pd.DataFrame


def spend_over_time(
    home: str | Path | None = None,
    *,
    dimension: str,
    days: int = 7,
    workflow: str | None = None,
    providers: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    simulated: bool | None = None,
    top: int = TOP_KEYS,
) -> SpendSeries:
    """Takes `cost_report`'s filters, with the same meaning."""
    if dimension not in STACK_DIMENSIONS:
        raise ValueError(f"dimension must be one of {', '.join(STACK_DIMENSIONS)}")
    span = window(days, start, end)
    where = Where().add("node_type = 'llm'")
    if workflow:
        where.add("workflow = ?", workflow)
    if simulated is not None:
        where.add("coalesce(simulated, false) = ?", simulated)
    where.add_in("provider", providers).add_in("model", models)
    relation, params = node_days(span, where)
    grain = _grain(span)
    rows = get_store(data_home(home)).query_df(
        f"""
        WITH labelled AS (
            SELECT coalesce(simulated, false) AS sim, {_bucket(grain)} AS period,
                {_label(dimension)} AS key, cost_usd, node_rows, called
            FROM {relation}
        ),
        ranked AS (
            SELECT sim, key, count(*) OVER (PARTITION BY sim) AS keys,
                row_number() OVER (PARTITION BY sim ORDER BY sum(cost_usd) DESC, key) AS rank
            FROM labelled GROUP BY sim, key
        )
        SELECT l.sim AS simulated, l.period,
            CASE WHEN r.rank <= ? THEN l.key
                ELSE printf('%d other %ss', r.keys - ?, ?) END AS key,
            r.rank > ? AS other,
            sum(l.cost_usd) AS cost_usd,
            coalesce(sum(l.node_rows) FILTER (WHERE l.called), 0) AS calls
        FROM labelled l JOIN ranked r USING (sim, key)
        GROUP BY ALL
        ORDER BY simulated, period, key
        """,
        [*params, top, top, dimension, top],
    )
    rows["period"] = pd.to_datetime(rows["period"])
    last = (span.end - timedelta(microseconds=1)).date()
    return SpendSeries(dimension, grain, span.start.date(), last, rows)


def _grain(span: Window) -> str:
    days = (span.end - span.start).days
    if days <= DAILY_UP_TO_DAYS:
        return "day"
    return "week" if days <= WEEKLY_UP_TO_DAYS else "month"


def _bucket(grain: str) -> str:
    return "day" if grain == "day" else f"CAST(date_trunc('{grain}', day) AS DATE)"


def _label(dimension: str) -> str:
    """How the breakdowns of `cost_report` name a key: a node by workflow/node only when the
    kind of run holds several workflows, a model with its provider only when its name is
    used by several providers."""
    if dimension == "node":
        return (
            "CASE WHEN count(DISTINCT workflow) OVER (PARTITION BY simulated) > 1"
            " THEN workflow || '/' || node ELSE node END"
        )
    if dimension == "model":
        return (
            "CASE WHEN count(DISTINCT provider) OVER (PARTITION BY simulated, model) > 1"
            " THEN model || ' (' || provider || ')' ELSE model END"
        )
    return f"coalesce({dimension}, '(none)')"


# ----------------------------------------------------------------------------- latency


def node_latency(home: str | Path | None, workflow: str, run_ids: Sequence[str]) -> pd.DataFrame:
    """Per node of the given runs: calls and min, p25, p50, p75, p95 and max duration (ms).

    The same rows `profile` reads for its p50 and p95, so the boxes agree with its table.
    """
    return get_store(data_home(home)).query_df(
        """
        SELECT node, count(*) AS calls, min(duration_ms) AS min,
            quantile_cont(duration_ms, 0.25) AS p25, quantile_cont(duration_ms, 0.5) AS p50,
            quantile_cont(duration_ms, 0.75) AS p75, quantile_cont(duration_ms, 0.95) AS p95,
            max(duration_ms) AS max
        FROM node_runs
        WHERE workflow = ? AND run_id IN (SELECT unnest(?::VARCHAR[])) AND duration_ms IS NOT NULL
        GROUP BY node
        ORDER BY node
        """,
        [workflow, list(run_ids)],
    )

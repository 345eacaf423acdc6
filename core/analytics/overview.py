"""The home page's figures: the last 7 days' spend, real and simulated apart.

The week is `window(7)`, the same whole UTC days as the Costs page and `cost-report`, so
Home and a cost review never disagree about what "7 days" spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from core.analytics.window import Window, thin_previous, window
from core.telemetry import get_store

DAYS = 7
# Simulated spend is every simulated call's cost: whole simulated runs, and the simulated
# nodes of real runs, whose real cost is their real calls only.
SIMULATED_COST = "CASE WHEN simulated THEN cost_usd ELSE simulated_cost_usd END"


@dataclass(frozen=True)
class WeekSpend:
    span: Window
    runs: int
    cost_usd: float
    previous_cost_usd: float
    simulated_runs: int
    simulated_cost_usd: float
    failed_runs: int
    days_with_runs: int  # UTC days on which a real run started, this period and the previous
    previous_days_with_runs: int

    @property
    def thin_previous(self) -> str | None:
        """A warning for the real-spend delta when the previous period holds little data."""
        return thin_previous(
            self.days_with_runs, self.previous_days_with_runs, self.span.previous_phrase
        )


def week_spend(home: Path) -> WeekSpend:
    span = window(DAYS)
    current = "started_at >= $start"
    real_day = "CASE WHEN NOT simulated THEN CAST(started_at AS DATE) END"
    row = get_store(home).query(
        f"""
        SELECT
            count(*) FILTER (WHERE NOT simulated AND {current}),
            coalesce(sum(cost_usd) FILTER (WHERE NOT simulated AND {current}), 0),
            coalesce(sum(cost_usd) FILTER (WHERE NOT simulated AND NOT {current}), 0),
            count(*) FILTER (WHERE {SIMULATED_COST} IS NOT NULL AND {current}),
            coalesce(sum({SIMULATED_COST}) FILTER (WHERE {current}), 0),
            count(*) FILTER (WHERE status = 'failed' AND {current}),
            count(DISTINCT {real_day}) FILTER (WHERE {current}),
            count(DISTINCT {real_day}) FILTER (WHERE NOT {current})
        FROM runs WHERE started_at >= $previous AND started_at < $end
        """,
        {"start": span.start, "previous": span.previous.start, "end": span.end},
    )[0]
    return WeekSpend(
        span,
        int(row[0]),
        float(row[1]),
        float(row[2]),
        int(row[3]),
        float(row[4]),
        int(row[5]),
        int(row[6]),
        int(row[7]),
    )


SPARK_DAYS = 30  # the sparklines' span: long enough to show a trend behind the week
TOP_RUNS = 5


@dataclass(frozen=True)
class DailySpend:
    """Spend per UTC day of `span`, real and simulated apart, every day present (0 when
    nothing ran): a few dozen rows, aggregated in SQL, for Home's sparklines."""

    span: Window
    days: list[tuple[date, bool, float]]  # (day, simulated, cost)


def daily_spend(home: Path, days: int = SPARK_DAYS) -> DailySpend:
    span = window(days)
    rows = get_store(home).query(
        f"""
        WITH kinds AS (SELECT unnest([false, true]) AS sim),
        calendar AS (
            SELECT CAST(day AS DATE) AS day, sim
            FROM range($start, $end, INTERVAL 1 DAY) AS t(day), kinds
        ),
        spent AS (
            SELECT CAST(started_at AS DATE) AS day, false AS sim, sum(cost_usd) AS cost
            FROM runs WHERE started_at >= $start AND started_at < $end AND NOT simulated
            GROUP BY ALL
            UNION ALL
            SELECT CAST(started_at AS DATE), true, sum({SIMULATED_COST})
            FROM runs WHERE started_at >= $start AND started_at < $end
            GROUP BY ALL
        )
        SELECT c.day, c.sim, coalesce(sum(s.cost), 0)
        FROM calendar c LEFT JOIN spent s USING (day, sim)
        GROUP BY ALL ORDER BY c.sim, c.day
        """,
        {"start": span.start, "end": span.end},
    )
    return DailySpend(span, [(day, bool(sim), float(cost)) for day, sim, cost in rows])


@dataclass(frozen=True)
class CostlyRun:
    run_id: str
    workflow: str
    started_at: datetime
    cost_usd: float
    simulated: bool


def costliest_runs(home: Path, limit: int = TOP_RUNS) -> list[CostlyRun]:
    """The runs of the last 7 days that cost most, real and simulated alike (each says
    which it is): the ones to open first when spend rises."""
    span = window(DAYS)
    rows = get_store(home).query(
        """
        SELECT run_id, workflow, started_at, cost_usd, coalesce(simulated, false)
        FROM runs
        WHERE started_at >= $start AND started_at < $end AND cost_usd IS NOT NULL
        ORDER BY cost_usd DESC, started_at DESC LIMIT $limit
        """,
        {"start": span.start, "end": span.end, "limit": limit},
    )
    return [CostlyRun(*row) for row in rows]

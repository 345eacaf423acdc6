"""The home page's figures: the last 7 days' spend, real and simulated apart.

The week is `window(7)`, the same whole UTC days as the Costs page and `cost-report`, so
Home and a cost review never disagree about what "7 days" spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.analytics.window import Window, thin_previous, window
from core.telemetry import get_store

DAYS = 7


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
    # Simulated spend is every simulated call's cost: whole simulated runs, and the simulated
    # nodes of real runs, whose real cost is their real calls only.
    simulated_cost = "CASE WHEN simulated THEN cost_usd ELSE simulated_cost_usd END"
    current = "started_at >= $start"
    real_day = "CASE WHEN NOT simulated THEN CAST(started_at AS DATE) END"
    row = get_store(home).query(
        f"""
        SELECT
            count(*) FILTER (WHERE NOT simulated AND {current}),
            coalesce(sum(cost_usd) FILTER (WHERE NOT simulated AND {current}), 0),
            coalesce(sum(cost_usd) FILTER (WHERE NOT simulated AND NOT {current}), 0),
            count(*) FILTER (WHERE {simulated_cost} IS NOT NULL AND {current}),
            coalesce(sum({simulated_cost}) FILTER (WHERE {current}), 0),
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

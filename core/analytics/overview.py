"""The home page's figures: this week's spend, real and simulated apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.telemetry import get_store


@dataclass(frozen=True)
class WeekSpend:
    runs: int
    cost_usd: float
    previous_cost_usd: float
    simulated_runs: int
    simulated_cost_usd: float
    failed_runs: int


def week_spend(home: Path) -> WeekSpend:
    # Simulated spend is every simulated call's cost: whole simulated runs, and the simulated
    # nodes of real runs, whose real cost is their real calls only.
    simulated_cost = "CASE WHEN simulated THEN cost_usd ELSE simulated_cost_usd END"
    row = get_store(home).query(
        f"""
        SELECT
            count(*) FILTER (WHERE NOT simulated AND started_at >= now() - INTERVAL 7 DAY),
            coalesce(sum(cost_usd) FILTER (
                WHERE NOT simulated AND started_at >= now() - INTERVAL 7 DAY), 0),
            coalesce(sum(cost_usd) FILTER (WHERE NOT simulated
                AND started_at < now() - INTERVAL 7 DAY), 0),
            count(*) FILTER (WHERE {simulated_cost} IS NOT NULL
                AND started_at >= now() - INTERVAL 7 DAY),
            coalesce(sum({simulated_cost}) FILTER (
                WHERE started_at >= now() - INTERVAL 7 DAY), 0),
            count(*) FILTER (WHERE status = 'failed' AND started_at >= now() - INTERVAL 7 DAY)
        FROM runs WHERE started_at >= now() - INTERVAL 14 DAY
        """
    )[0]
    return WeekSpend(
        int(row[0]), float(row[1]), float(row[2]), int(row[3]), float(row[4]), int(row[5])
    )

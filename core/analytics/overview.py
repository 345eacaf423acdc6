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
    row = get_store(home).query(
        """
        SELECT
            count(*) FILTER (WHERE NOT simulated AND started_at >= now() - INTERVAL 7 DAY),
            coalesce(sum(cost_usd) FILTER (
                WHERE NOT simulated AND started_at >= now() - INTERVAL 7 DAY), 0),
            coalesce(sum(cost_usd) FILTER (WHERE NOT simulated
                AND started_at < now() - INTERVAL 7 DAY), 0),
            count(*) FILTER (WHERE simulated AND started_at >= now() - INTERVAL 7 DAY),
            coalesce(sum(cost_usd) FILTER (
                WHERE simulated AND started_at >= now() - INTERVAL 7 DAY), 0),
            count(*) FILTER (WHERE status = 'failed' AND started_at >= now() - INTERVAL 7 DAY)
        FROM runs WHERE started_at >= now() - INTERVAL 14 DAY
        """
    )[0]
    return WeekSpend(
        int(row[0]), float(row[1]), float(row[2]), int(row[3]), float(row[4]), int(row[5])
    )

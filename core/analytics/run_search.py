"""Finding runs for the Runs page: every filter is SQL in DuckDB, and only one page of rows
comes back, so a history of a million runs costs one scan of `runs` per filter change and
never a million rows in pandas."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from core.analytics.filters import Where
from core.settings import data_home
from core.telemetry import get_store

PAGE_SIZE = 50
# Statuses in the order the filter offers them.
STATUSES = ("success", "failed", "budget_exceeded", "cancelled", "running")


class SearchError(ValueError):
    """A filter value the search cannot use; the message names the filter."""


@dataclass(frozen=True)
class RunFilters:
    """What the Runs page filters on; None or empty means no condition. Periods are whole
    UTC days, `first_day` to `last_day` inclusive; costs in USD, durations in seconds."""

    workflows: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    tag: str | None = None  # "key=value", or "key" for any value
    first_day: date | None = None
    last_day: date | None = None
    simulated: bool | None = None
    min_cost: float | None = None
    max_cost: float | None = None
    min_seconds: float | None = None
    max_seconds: float | None = None

    def where(self) -> Where:
        where = Where()
        where.add_in("workflow", self.workflows)
        where.add_in("status", self.statuses)
        if self.tag:
            key, has_value, value = self.tag.partition("=")
            key = key.strip()
            if not key:
                raise SearchError(f"tag: expected key=value or key, got {self.tag!r}")
            # A JSON path with the key quoted, so dots and spaces in keys stay part of them.
            path = '$."' + key.replace('"', '\\"') + '"'
            # A plain substring test first: it rules out most runs before any JSON is parsed.
            if has_value:
                value = value.strip()
                where.add("contains(tags, ?)", value)
                where.add("json_extract_string(tags, ?) = ?", path, value)
            else:
                where.add("contains(tags, ?)", key)
                where.add("json_extract_string(tags, ?) IS NOT NULL", path)
        if self.first_day and self.last_day and self.first_day > self.last_day:
            raise SearchError(f"period: {self.first_day} is after {self.last_day}")
        if self.first_day:
            where.add("started_at >= ?", datetime.combine(self.first_day, datetime.min.time()))
        if self.last_day:
            end = datetime.combine(self.last_day + timedelta(days=1), datetime.min.time())
            where.add("started_at < ?", end)
        if self.simulated is not None:
            where.add("coalesce(simulated, false) = ?", self.simulated)
        _range(where, "cost", "cost_usd", self.min_cost, self.max_cost, 1.0)
        _range(where, "duration", "duration_ms", self.min_seconds, self.max_seconds, 1000.0)
        return where


def _range(
    where: Where, name: str, column: str, low: float | None, high: float | None, scale: float
) -> None:
    if low is not None and high is not None and low > high:
        raise SearchError(f"{name}: the minimum {low:g} is above the maximum {high:g}")
    if low is not None:
        where.add(f"{column} >= ?", low * scale)
    if high is not None:
        where.add(f"{column} <= ?", high * scale)


@dataclass(frozen=True)
class RunRow:
    run_id: str
    workflow: str
    started_at: datetime
    status: str
    simulated: bool
    duration_ms: float | None
    cost_usd: float | None
    tokens: int
    tags: str | None
    error: str | None


# Where a page starts: the (started_at, run_id) of the last run of the page before it.
Cursor = tuple[datetime, str]


@dataclass(frozen=True)
class RunPage:
    rows: list[RunRow]
    total: int  # runs that meet the filters, across all pages

    @property
    def cursor(self) -> Cursor | None:
        """Where the next page starts; None on an empty page."""
        return (self.rows[-1].started_at, self.rows[-1].run_id) if self.rows else None


def search_runs(
    filters: RunFilters,
    *,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
    home: str | Path | None = None,
) -> RunPage:
    """One page of the runs that meet `filters`, newest first, from `after` on, and how many
    runs meet them. Pages continue from the last row seen rather than skipping N rows, so
    the thousandth page costs what the first does: one pass keeping the top `limit`."""
    where = filters.where()
    page = Where(list(where.clauses), list(where.params))
    if after is not None:
        page.add("started_at < ? OR (started_at = ? AND run_id > ?)", after[0], *after)
    with get_store(data_home(home)).connect() as con:
        count_sql = f"SELECT count(*) FROM runs WHERE {where.sql}"
        (total,) = con.execute(count_sql, where.params).fetchone()
        rows = con.execute(
            "SELECT run_id, workflow, started_at, status, coalesce(simulated, false),"
            " duration_ms, cost_usd,"
            " coalesce(input_tokens, 0) + coalesce(output_tokens, 0), tags, error"
            f" FROM runs WHERE {page.sql} ORDER BY started_at DESC, run_id LIMIT ?",
            [*page.params, limit],
        ).fetchall()
    return RunPage([RunRow(*row) for row in rows], int(total))


@dataclass(frozen=True)
class FilterChoices:
    """What the filters offer: workflow names, tags as key=value, and the period runs span."""

    workflows: list[str]
    tags: list[str]
    first_day: date | None
    last_day: date | None


def filter_choices(home: str | Path | None = None, tag_limit: int = 200) -> FilterChoices:
    """Distinct values for the filter widgets, read in one connection."""
    with get_store(data_home(home)).connect() as con:
        workflows = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT workflow FROM runs WHERE workflow IS NOT NULL ORDER BY 1"
            ).fetchall()
        ]
        first, last = con.execute(
            "SELECT CAST(min(started_at) AS DATE), CAST(max(started_at) AS DATE) FROM runs"
        ).fetchone()
        tags = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT concat(e.key, '=', json_extract_string(e.value, '$')) AS tag"
                " FROM (SELECT DISTINCT tags FROM runs WHERE tags IS NOT NULL AND tags <> '{}')"
                " r, json_each(r.tags) e ORDER BY 1 LIMIT ?",
                [tag_limit],
            ).fetchall()
        ]
    return FilterChoices(workflows, tags, first, last)

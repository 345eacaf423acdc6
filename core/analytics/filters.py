"""Which telemetry rows a report covers: SQL conditions with their parameters, the
--simulated choice, and the node rows of a window read from the daily rollup.

Filters become SQL with `?` placeholders so every value reaches DuckDB as a parameter; the
reports add their own clauses and keep the list of values in step with the placeholders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.analytics.window import Window, midnight
from core.errors import WorkflowError
from core.telemetry import get_store
from core.telemetry.tables import LLM_CALL as LLM_CALL  # the reports' name for it
from core.telemetry.tables import (
    NODE_COUNTS_AT,
    ROLLUP_KEYS,
    ROLLUP_MEASURES,
    ROLLUP_TABLE,
    rollup_select,
)
from core.workflow import Workflow, parse_workflow

# A run counts once it has finished: a running one has neither its cost nor its status yet.
FINISHED_RUN = "status IS DISTINCT FROM 'running'"
# --simulated: the runs a report covers. None is all of them, False the real ones only and
# True the simulated ones only (the Python functions take these values).
SIMULATED_CHOICES: dict[str, bool | None] = {"include": None, "exclude": False, "only": True}


@dataclass
class Where:
    """A conjunction of SQL conditions with the values of their placeholders, in order."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> Where:
        self.clauses.append(clause)
        self.params.extend(params)
        return self

    def add_in(self, column: str, values: Sequence[str] | None) -> Where:
        """`column` among `values`; no condition when `values` is None or empty."""
        if values:
            self.add(f"list_contains(?, {column})", list(values))
        return self

    def between(self, column: str, span: Window) -> Where:
        return self.add(f"{column} >= ? AND {column} < ?", span.start, span.end)

    @property
    def sql(self) -> str:
        return " AND ".join(f"({c})" for c in self.clauses) or "true"


def simulated_choice(simulated: bool | None) -> str:
    """The --simulated word for a filter value, as reports record it."""
    return next(k for k, v in SIMULATED_CHOICES.items() if v is simulated)


def kind_of_runs(simulated: bool | None) -> str:
    """The adjective a report puts before "runs" when only some of them are covered."""
    return {None: "", False: "real ", True: "simulated "}[simulated]


def node_days(span: Window, where: Where) -> tuple[str, list[Any]]:
    """A relation (SQL with its parameters) of the node rows whose runs started in `span` and meet
    `where`, counted as node_daily counts them: its keys, with NULL names back, and its
    sums, so `where` and the reports' aggregates read the same on both sources.

    Whole UTC days, which are all a window of the last N days holds, come from node_daily:
    thousands of rows however long the history. A window that cuts a day (a datetime
    range) takes its part of that day from node_runs, so its figures are exact too, at the
    cost of a pass over node_runs.
    """
    first = midnight(span.start)
    if first < span.start:
        first += timedelta(days=1)
    last = max(midnight(span.end), first)
    names = {"workflow", "node", "node_type", "provider", "model", "status"}
    columns = ", ".join(
        f"nullif({c}, '') AS {c}" if c in names else c for c in ROLLUP_KEYS | ROLLUP_MEASURES
    )
    source = f"SELECT * FROM {ROLLUP_TABLE} WHERE day >= ? AND day < ?"
    params: list[Any] = [first.date(), last.date()]
    if (first, last) != (span.start, span.end):
        source += " UNION ALL " + rollup_select(
            f"node_runs WHERE {NODE_COUNTS_AT} >= ? AND {NODE_COUNTS_AT} < ?"
            f" AND NOT ({NODE_COUNTS_AT} >= ? AND {NODE_COUNTS_AT} < ?)"
        )
        params += [span.start, span.end, first, last]
    sql = f"(SELECT * FROM (SELECT {columns} FROM ({source})) WHERE {where.sql})"
    return sql, [*params, *where.params]


def latest_workflows(home: Path, names: Sequence[str]) -> dict[str, Workflow]:
    """The newest recorded version of each named workflow: its targets and prices are the
    ones in force now, even when the file that ran it has moved or changed since. A version
    that no longer parses is left out."""
    if not names:
        return {}
    rows = get_store(home).query(
        "SELECT workflow, source, workflow_file FROM workflows"
        " WHERE list_contains(?, workflow) AND source IS NOT NULL"
        " QUALIFY row_number() OVER (PARTITION BY workflow ORDER BY first_seen DESC NULLS LAST)"
        " = 1",
        [list(names)],
    )
    found = {}
    for name, source, filename in rows:
        try:
            found[name] = parse_workflow(source, filename or "<recorded>")
        except WorkflowError:
            continue
    return found

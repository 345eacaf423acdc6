"""Experiments in telemetry: writing their events through the spool, reading their state back.

Writes go through the same spool as runs (docs/telemetry-write-path.md), so several
processes and a killed one behave as they do for runs. A cell's scores are written before
its cell row: a cell has a row only once it is completely scored, which is what `--resume`
relies on to run exactly the missing cells.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.engine.results import RunResult
from core.experiments.loader import Experiment
from core.experiments.scoring import Score, target_label, threshold
from core.telemetry import TelemetryStore, get_store
from core.telemetry.rows import table_row
from core.workflow.validation import did_you_mean

RUNNING, FINISHED = "running", "finished"
STOPPED = ("budget_exceeded", "cancelled", "interrupted", "failed")
STATUSES = (RUNNING, FINISHED, *STOPPED)


class UnknownExperiment(LookupError):
    """No experiment matches the id, prefix or name given."""


@dataclass(frozen=True)
class ExperimentRecord:
    """An experiment as telemetry holds it."""

    experiment_id: str
    name: str
    file: str
    workflow: str
    dataset: str
    baseline: str
    primary_scorer: str
    variants: list[str]
    scorers: list[dict[str, Any]]
    items: int
    repeats: int
    cells: int
    simulated: bool
    design_hash: str
    max_cost: float | None
    margin: float
    created_at: datetime
    status: str
    updated_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class ExperimentSummary:
    experiment_id: str
    name: str
    workflow: str
    status: str
    cells: int
    cells_done: int
    simulated: bool
    created_at: datetime
    cost_usd: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "workflow": self.workflow,
            "status": self.status,
            "cells": self.cells,
            "cells_done": self.cells_done,
            "simulated": self.simulated,
            "created_at": self.created_at.isoformat(sep=" ", timespec="seconds"),
            "cost_usd": self.cost_usd,
        }


def _now() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------------------- writing


def record_experiment(
    store: TelemetryStore, experiment: Experiment, experiment_id: str, simulated: bool
) -> None:
    """The experiment's definition and items, then its status: running."""
    spec = experiment.spec
    scorers = [
        {
            "name": s.name,
            "type": s.type,
            "node": target_label(s),
            "threshold": threshold(s),
        }
        for s in spec.scorers
    ]
    store.record(
        "experiment",
        table_row(
            "experiments",
            experiment_id=experiment_id,
            name=experiment.name,
            file=experiment.filename,
            workflow=experiment.workflow.name,
            dataset=experiment.dataset,
            baseline=experiment.baseline,
            primary_scorer=spec.primary_name,
            variants=json.dumps(list(experiment.variants)),
            scorers=json.dumps(scorers),
            items=len(experiment.items),
            repeats=spec.repeats,
            cells=experiment.cells,
            simulated=simulated,
            design_hash=experiment.design_hash,
            max_cost=spec.max_cost,
            margin=spec.margin,
            source=experiment.source,
            created_at=_now(),
        ),
    )
    for item in experiment.items:
        store.record(
            "experiment_item",
            table_row(
                "experiment_items",
                experiment_id=experiment_id,
                item=item.number,
                inputs=json.dumps(item.inputs, ensure_ascii=False, default=str),
                expected=json.dumps(item.expected, ensure_ascii=False, default=str),
            ),
        )
    record_status(store, experiment_id, RUNNING)


def record_status(
    store: TelemetryStore, experiment_id: str, status: str, error: str | None = None
) -> None:
    store.record(
        "experiment_status",
        table_row(
            "experiments",
            experiment_id=experiment_id,
            status=status,
            error=error,
            updated_at=_now(),
            writer_id=store.writer_id,
        ),
    )


def record_cell(
    store: TelemetryStore,
    experiment_id: str,
    cell: tuple[int, str, int],
    result: RunResult,
    output: str,
    scores: list[Score],
) -> None:
    """A scored cell: its scores first, its row last (the row marks it done)."""
    item, variant, repeat = cell
    at = _now()
    for score in scores:
        store.record(
            "experiment_score",
            table_row(
                "experiment_scores",
                experiment_id=experiment_id,
                run_id=result.run_id,
                item=item,
                variant=variant,
                repeat=repeat,
                scorer=score.scorer,
                score=score.score,
                passed=score.passed,
                reason=score.reason,
                scorer_cost_usd=score.cost_usd,
                recorded_at=at,
            ),
        )
    store.record(
        "experiment_cell",
        table_row(
            "experiment_cells",
            experiment_id=experiment_id,
            item=item,
            variant=variant,
            repeat=repeat,
            run_id=result.run_id,
            status=result.status,
            error=result.error,
            cost_usd=result.cost_usd,
            duration_ms=result.duration_ms,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            output=output,
            recorded_at=at,
        ),
    )


# ---------------------------------------------------------------------------- reading

_RECORD_COLUMNS = (
    "experiment_id, name, file, workflow, dataset, baseline, primary_scorer, variants, scorers,"
    " items, repeats, cells, simulated, design_hash, max_cost, margin, created_at, status,"
    " updated_at, error"
)


def find_experiment(home: Path, wanted: str, con: Any = None) -> ExperimentRecord:
    """The experiment `wanted` names: its id, a unique prefix of one, or its name (the
    latest experiment of that name). Raises UnknownExperiment with what there is. `con`: a
    connection the caller already holds (a report reads everything in one)."""
    if con is None:
        with get_store(home).connect() as own:
            return find_experiment(home, wanted, own)
    rows = con.execute(
        f"SELECT {_RECORD_COLUMNS} FROM experiments"
        " WHERE experiment_id = $w OR starts_with(experiment_id, $w) OR name = $w"
        " ORDER BY experiment_id = $w DESC, name = $w DESC, created_at DESC",
        {"w": wanted},
    ).fetchall()
    exact = [r for r in rows if r[0] == wanted or r[1] == wanted]
    if exact:
        return _record(exact[0])
    if len(rows) == 1:
        return _record(rows[0])
    if len(rows) > 1:
        ids = ", ".join(r[0] for r in rows[:5])
        raise UnknownExperiment(f"'{wanted}' matches several experiments ({ids}): give more")
    known = [r[0] for r in con.execute("SELECT DISTINCT name FROM experiments").fetchall()]
    hint = did_you_mean(wanted, known)
    listing = "configurable-agents experiment list shows them" if known else "none recorded yet"
    raise UnknownExperiment(f"no experiment '{wanted}'{hint} ({listing})")


def _record(row: tuple[Any, ...]) -> ExperimentRecord:
    values = dict(zip(_RECORD_COLUMNS.replace(" ", "").split(","), row, strict=True))
    values["variants"] = json.loads(values["variants"] or "[]")
    values["scorers"] = json.loads(values["scorers"] or "[]")
    values["simulated"] = bool(values["simulated"])
    return ExperimentRecord(**values)


def stored_source(home: Path, experiment_id: str) -> str:
    """The experiment file's text as it was run: what resuming it from the app starts from,
    edits made in the page included."""
    return get_store(home).query(
        "SELECT source FROM experiments WHERE experiment_id = ?", [experiment_id]
    )[0][0]


def cell_states(home: Path, experiment_id: str) -> dict[tuple[int, str, int], str]:
    """Each recorded cell's status, from its latest row."""
    rows = get_store(home).query(
        "SELECT item, variant, repeat, status FROM experiment_cells WHERE experiment_id = ?"
        " QUALIFY row_number() OVER (PARTITION BY item, variant, repeat"
        " ORDER BY recorded_at DESC) = 1",
        [experiment_id],
    )
    return {(item, variant, repeat): status for item, variant, repeat, status in rows}


def spent(home: Path, experiment_id: str) -> float:
    """What the experiment's runs have cost so far: cells, judges, and runs cut short."""
    (total,) = get_store(home).query(
        "SELECT coalesce(sum(cost_usd), 0) FROM runs WHERE experiment = ?", [experiment_id]
    )[0]
    return float(total)


def list_experiments(home: Path) -> list[ExperimentSummary]:
    """Every experiment, newest first, with its cells done and what its runs cost."""
    rows = get_store(home).query(
        """
        WITH done AS (
            SELECT experiment_id, count(DISTINCT (item, variant, repeat)) AS cells_done
            FROM experiment_cells GROUP BY experiment_id
        ), cost AS (
            SELECT experiment, sum(cost_usd) AS cost_usd FROM runs
            WHERE experiment IS NOT NULL GROUP BY experiment
        )
        SELECT e.experiment_id, e.name, e.workflow, e.status, e.cells,
               coalesce(d.cells_done, 0), e.simulated, e.created_at, c.cost_usd
        FROM experiments e
        LEFT JOIN done d USING (experiment_id)
        LEFT JOIN cost c ON c.experiment = e.experiment_id
        ORDER BY e.created_at DESC
        """
    )
    return [
        ExperimentSummary(
            experiment_id=row[0],
            name=row[1],
            workflow=row[2],
            status=row[3] or RUNNING,
            cells=int(row[4] or 0),
            cells_done=int(row[5]),
            simulated=bool(row[6]),
            created_at=row[7],
            cost_usd=row[8],
        )
        for row in rows
    ]

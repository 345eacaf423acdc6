"""Running an experiment: every (item, variant, repeat) cell as an ordinary run, then scored.

Cells run `concurrency` at a time, in rounds of repeats over items over variants, so an
experiment stopped early (budget, Ctrl-C, a killed process) holds complete pairs of variants
for the items it reached. Each cell's run is tagged with the experiment, variant, item and
repeat, so every report and page works on it. Repeat 0 runs as the workflow is configured
(its response cache included); later repeats bypass the cache and carry their repeat number
into the request, so they are fresh samples, real or simulated.

A whole-experiment `max_cost` is one engine budget shared by every call of every cell and
judge; a cell it refuses is not recorded, so `--resume` (with a larger budget) runs it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.engine import arun_workflow
from core.engine.budget import Budget
from core.engine.keys import check_keys as check_workflow_keys
from core.engine.llm_node import SHARED_BUDGET
from core.errors import ProviderConfigError
from core.experiments.dataset import Item
from core.experiments.loader import Experiment
from core.experiments.records import (
    FINISHED,
    RUNNING,
    cell_states,
    find_experiment,
    record_cell,
    record_experiment,
    record_status,
    spent,
)
from core.experiments.scoring import CellScorer, RunFn
from core.settings import data_home
from core.telemetry import get_store

Cell = tuple[int, str, int]  # (item number, variant, repeat)


class ExperimentConflict(ValueError):
    """--resume or --rerun-failed cannot go on: another design, mode or a live process."""


@dataclass
class Progress:
    """What a progress bar shows: cells done of all, spend so far, this run's pace."""

    done: int
    total: int
    cost_usd: float
    ran: int  # cells finished by this process
    to_run: int  # cells this process set out to run
    started: float = field(default_factory=time.monotonic)

    @property
    def eta_seconds(self) -> float | None:
        if not self.ran:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / self.ran * (self.to_run - self.ran)


@dataclass
class Outcome:
    experiment_id: str
    name: str
    status: str
    cells: int
    cells_done: int
    cells_failed: int
    cost_usd: float
    simulated: bool
    seconds: float
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `experiment run --json` document."""
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": self.status,
            "cells": self.cells,
            "cells_done": self.cells_done,
            "cells_failed": self.cells_failed,
            "cost_usd": round(self.cost_usd, 6),
            "simulated": self.simulated,
            "seconds": round(self.seconds, 2),
            "error": self.error,
            "warnings": self.warnings,
        }


def all_cells(experiment: Experiment) -> list[Cell]:
    return [
        (item.number, variant, repeat)
        for repeat in range(experiment.spec.repeats)
        for item in experiment.items
        for variant in experiment.variants
    ]


def is_simulated(experiment: Experiment, scorer: CellScorer, simulate: bool) -> bool:
    """Whether every call of the experiment is simulated: its dollars are then no spend."""
    workflows = [v.workflow for v in experiment.variants.values()] + list(scorer.judges.values())
    return simulate or all(workflow.only_simulated for workflow in workflows)


def check_keys(experiment: Experiment, scorer: CellScorer, simulate: bool) -> None:
    """Refuse before any spend when a variant or a judge would call a model without its key."""
    if simulate:
        return
    for variant in experiment.variants.values():
        check_workflow_keys(variant.workflow)
    for name, judge in scorer.judges.items():
        try:
            check_workflow_keys(judge)
        except ProviderConfigError as exc:
            raise ProviderConfigError(f"scorer '{name}' (llm_judge): {exc}") from None


class Execution:
    """One process's share of an experiment: the cells it runs, and what they cost."""

    def __init__(
        self,
        experiment: Experiment,
        experiment_id: str,
        todo: list[Cell],
        states: dict[Cell, str],
        spent_before: float,
        *,
        simulate: bool,
        home: Path,
        run: RunFn,
        scorer: CellScorer,
        on_progress: Callable[[Progress], None] | None,
    ) -> None:
        self.experiment = experiment
        self.experiment_id = experiment_id
        self.queue = deque(todo)
        self.simulate = simulate
        self.home = home
        self.run = run
        self.on_progress = on_progress
        self.scorer = scorer
        self.items: dict[int, Item] = {item.number: item for item in experiment.items}
        self.store = get_store(home)
        # Each recorded cell's status, those of earlier runs included: the outcome's counts.
        self.states = states
        # A cell run again was counted done; it counts again when its new row is written.
        done = len(states) - sum(cell in states for cell in todo)
        self.progress = Progress(done, experiment.cells, spent_before, 0, len(todo))
        self.stop_reason: str | None = None
        self.error: str | None = None
        self.simulated = simulate  # and, on the driver, whether every call is simulated
        max_cost = experiment.spec.max_cost
        self.budget = Budget(None, max_cost - spent_before) if max_cost is not None else None

    async def execute(self) -> None:
        spec = self.experiment.spec
        if spec.max_cost is not None and self.progress.cost_usd >= spec.max_cost:
            self.stop_reason = "budget_exceeded"
            return
        workers = min(self.experiment.spec.concurrency, len(self.queue))
        await asyncio.gather(*(self._worker() for _ in range(workers)))

    async def _worker(self) -> None:
        while self.queue and self.stop_reason is None:
            cell = self.queue.popleft()
            try:
                await self._cell(cell)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must stop the experiment, never hang it
                self.stop_reason = "failed"
                self.error = f"cell {cell}: internal error: {exc!r}"

    async def _cell(self, cell: Cell) -> None:
        number, name, repeat = cell
        item, variant = self.items[number], self.experiment.variants[name]
        tags = {
            "experiment": self.experiment_id,
            "variant": name,
            "item": str(number),
            "repeat": str(repeat),
        }
        common: dict[str, Any] = {
            "simulate": self.simulate,
            "home": self.home,
            "experiment": self.experiment_id,
            "variant": name,
            "shared_budget": self.budget,
        }
        result = await self.run(
            variant.workflow,
            item.inputs,
            tags=tags,
            use_cache=repeat == 0,
            sample=repeat,
            references=self.scorer.references(variant, item),
            **common,
        )
        cost = result.cost_usd or 0.0
        if _refused(result.error):
            self._spend(cost)
            self.stop_reason = "budget_exceeded"
            return
        scores = await self.scorer.score(variant, item, repeat, result, {**common, "tags": tags})
        cost += sum(score.cost_usd or 0.0 for score in scores)
        self._spend(cost)
        if any(_refused(score.reason) for score in scores):
            self.stop_reason = "budget_exceeded"
            return
        output = self.scorer.cell_output(variant, result)
        record_cell(self.store, self.experiment_id, cell, result, output, scores)
        self.states[cell] = result.status
        self.progress.done += 1
        self.progress.ran += 1
        if self.on_progress is not None:
            self.on_progress(self.progress)

    def _spend(self, cost: float) -> None:
        self.progress.cost_usd += cost


def _refused(error: str | None) -> bool:
    """Whether the experiment's own budget stopped a run (not the cell's own budget)."""
    return bool(error) and SHARED_BUDGET in (error or "")


async def run_experiment(
    experiment: Experiment,
    *,
    simulate: bool = False,
    home: str | Path | None = None,
    resume: str | None = None,
    rerun_failed: str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    on_start: Callable[[str], None] | None = None,
    run: RunFn = arun_workflow,
) -> Outcome:
    """Run an experiment's cells (all of them, the missing ones with `resume`, the ones that
    errored with `rerun_failed`), score them and record everything. Raises
    ProviderConfigError, UnknownExperiment or ExperimentConflict before anything runs;
    cancellation is recorded and then propagates."""
    clock = time.monotonic()
    execution = prepare_execution(
        experiment, simulate, home, resume, rerun_failed, on_progress, run
    )
    if on_start is not None:
        on_start(execution.experiment_id)
    status, error = RUNNING, None
    try:
        await execution.execute()
    except asyncio.CancelledError:
        status, error = "cancelled", "cancelled: the cells finished so far are kept"
        raise
    finally:
        status, error = close_execution(execution, status, error)
    return outcome_of(execution, status, error, clock)


def prepare_execution(
    experiment: Experiment,
    simulate: bool,
    home: str | Path | None,
    resume: str | None,
    rerun_failed: str | None,
    on_progress: Callable[[Progress], None] | None,
    run: RunFn,
) -> Execution:
    """Checks and records the experiment (or its status, when it goes on): the execution
    that will run its cells."""
    folder = data_home(home)
    scorer = CellScorer(experiment, run)
    simulated = is_simulated(experiment, scorer, simulate)
    previous = resume or rerun_failed
    if previous is not None:
        experiment_id, todo, states = _continue(experiment, folder, previous, simulated, resume)
    check_keys(experiment, scorer, simulated)
    store = get_store(folder)
    if previous is not None:
        before = spent(folder, experiment_id)
        record_status(store, experiment_id, RUNNING)
    else:
        experiment_id = f"{experiment.name}-{secrets.token_hex(3)}"
        todo, states, before = all_cells(experiment), {}, 0.0
        record_experiment(store, experiment, experiment_id, simulated)
    execution = Execution(
        experiment,
        experiment_id,
        todo,
        states,
        before,
        simulate=simulate,
        home=folder,
        run=run,
        scorer=scorer,
        on_progress=on_progress,
    )
    execution.simulated = simulated
    return execution


def close_execution(execution: Execution, status: str, error: str | None) -> tuple[str, str | None]:
    """Records how the execution ended: `status`, or what its cells and stop reason say."""
    if status == RUNNING:
        status, error = _final(execution, execution.experiment_id)
    store = execution.store
    record_status(store, execution.experiment_id, status, error)
    store.flush_soon()
    return status, error


def outcome_of(execution: Execution, status: str, error: str | None, clock: float) -> Outcome:
    experiment = execution.experiment
    return Outcome(
        experiment_id=execution.experiment_id,
        name=experiment.name,
        status=status,
        cells=experiment.cells,
        cells_done=len(execution.states),
        cells_failed=sum(state != "success" for state in execution.states.values()),
        cost_usd=execution.progress.cost_usd,
        simulated=execution.simulated,
        seconds=time.monotonic() - clock,
        error=error,
        warnings=list(experiment.warnings),
    )


def _continue(
    experiment: Experiment, home: Path, wanted: str, simulated: bool, resume: str | None
) -> tuple[str, list[Cell], dict[Cell, str]]:
    """(id, cells to run, each recorded cell's status) for --resume or --rerun-failed."""
    record = find_experiment(home, wanted)
    flag = "--resume" if resume else "--rerun-failed"
    if record.design_hash != experiment.design_hash:
        raise ExperimentConflict(
            f"{experiment.filename} no longer describes experiment {record.experiment_id}: "
            "its variants, dataset rows, repeats or scorers changed. Start a new experiment "
            f"instead of {flag}."
        )
    if record.status == RUNNING:
        raise ExperimentConflict(
            f"experiment {record.experiment_id} is still running in another process"
        )
    if record.simulated != simulated:
        mode = "with --simulate" if record.simulated else "without --simulate"
        raise ExperimentConflict(
            f"experiment {record.experiment_id} ran {'simulated' if record.simulated else 'real'}"
            f" calls: {flag} it {mode}"
        )
    states = cell_states(home, record.experiment_id)
    cells = all_cells(experiment)
    if resume:
        todo = [cell for cell in cells if cell not in states]
    else:
        todo = [cell for cell in cells if states.get(cell, "success") != "success"]
    return record.experiment_id, todo, states


def _final(execution: Execution, experiment_id: str) -> tuple[str, str | None]:
    progress = execution.progress
    if execution.stop_reason == "budget_exceeded":
        spec = execution.experiment.spec
        return "budget_exceeded", (
            f"max_cost ${spec.max_cost:g} reached after {progress.done} of {progress.total} "
            f"cells; raise it and finish with --resume {experiment_id}"
        )
    if execution.stop_reason is not None:
        return execution.stop_reason, execution.error
    if progress.done < progress.total:
        missing = progress.total - progress.done
        return "interrupted", f"{missing} cells not run yet: finish with --resume {experiment_id}"
    return FINISHED, None

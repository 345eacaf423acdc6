"""`configurable-agents experiment run|list|report`: run variants over a dataset, list the
experiments recorded, and report one with its statistics and verdicts.

Exit codes follow `run`: 0 the experiment finished (cells that errored are results, counted
in its error rates), 1 it stopped unfinished or telemetry stayed busy, 2 invalid file,
arguments or a missing key, 3 stopped at its max_cost, 130 cancelled.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TYPE_CHECKING, Any

from core.cli.exit_codes import EXIT_BUDGET, EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK
from core.settings import data_home

if TYPE_CHECKING:
    from rich.console import Console

    from core.experiments.loader import Experiment
    from core.experiments.runner import Outcome

_EXIT_BY_STATUS = {"finished": EXIT_OK, "budget_exceeded": EXIT_BUDGET, "cancelled": EXIT_CANCELLED}


def command(args: argparse.Namespace) -> int:
    from core.experiments.records import UnknownExperiment
    from core.experiments.runner import ExperimentConflict
    from core.exporters.extras import MissingExtra
    from core.telemetry import TelemetryBusy

    handlers = {"run": _run, "list": _list, "report": _report}
    try:
        return handlers[args.action](args)
    except (UnknownExperiment, ExperimentConflict, MissingExtra) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except TelemetryBusy as exc:
        print(f"experiment {args.action}: {exc}", file=sys.stderr)
        return EXIT_FAILED


def load(path: str) -> Experiment | None:
    """The experiment, or None after printing every problem (with its own file) to stderr."""
    from core.experiments.errors import ExperimentError
    from core.experiments.loader import load_experiment

    try:
        experiment = load_experiment(path)
    except ExperimentError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        return None
    for warning in experiment.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return experiment


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from core.engine import arun_workflow
    from core.errors import ProviderConfigError
    from core.experiments.estimate import estimate_experiment, render_estimate

    if args.executor == "local" and (args.workers or args.ray_address):
        print("error: --workers and --ray-address need --executor ray", file=sys.stderr)
        return EXIT_INVALID
    if args.workers is not None and args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return EXIT_INVALID
    experiment = load(args.file)
    if experiment is None:
        return EXIT_INVALID
    if args.dry_run or args.estimate_cost:
        found = estimate_experiment(experiment, simulate=args.simulate, run=arun_workflow)
        as_json = args.json and args.dry_run
        text = json.dumps(found.to_json(), indent=2) if as_json else render_estimate(found)
        # Before a real run the estimate goes to stderr, keeping stdout for the outcome.
        print(text, file=sys.stdout if args.dry_run else sys.stderr)
        if args.dry_run:
            return EXIT_OK
    err = Console(stderr=True)
    started: list[str] = []
    try:
        outcome = _with_progress(experiment, args, err, started)
    except ProviderConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        again = f"; finish it with --resume {started[0]}" if started else ""
        print(f"cancelled: the cells finished so far are kept{again}", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        from core.telemetry import get_store

        get_store(data_home()).flush(timeout=10)
    _print_outcome(outcome, args)
    return _EXIT_BY_STATUS.get(outcome.status, EXIT_FAILED)


def _with_progress(
    experiment: Experiment, args: argparse.Namespace, err: Console, started: list[str]
) -> Outcome:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from core.experiments.ray_cells import run_experiment_on_ray
    from core.experiments.runner import Progress as CellProgress
    from core.experiments.runner import run_experiment
    from core.formatting import money

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells · {task.fields[spend]}"),
        TextColumn("· ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    mode = " (simulated)" if args.simulate else ""
    task = progress.add_task(f"{experiment.name}{mode}", total=experiment.cells, spend="$0")

    def on_progress(state: CellProgress) -> None:
        spend = money(state.cost_usd) + (" simulated" if args.simulate else "")
        progress.update(task, completed=state.done, spend=spend)

    def on_start(experiment_id: str) -> None:
        # Shown once the experiment is accepted: a refusal prints alone, with no bar.
        started.append(experiment_id)
        err.print(f"experiment {experiment_id}: {experiment.cells:,} cells", highlight=False)
        progress.start()

    common = {
        "simulate": args.simulate,
        "resume": args.resume,
        "rerun_failed": args.rerun_failed,
        "on_progress": on_progress,
        "on_start": on_start,
    }
    try:
        if args.executor == "ray":
            from core.executors.ray_executor import RayExecutor

            executor = RayExecutor(args.ray_address, args.workers)
            return run_experiment_on_ray(experiment, executor, **common)
        return asyncio.run(run_experiment(experiment, **common))
    finally:
        progress.stop()


def _print_outcome(outcome: Outcome, args: argparse.Namespace) -> None:
    from core.experiments.report import experiment_report
    from core.formatting import money

    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(outcome.to_json(), indent=2))
        return
    spend = money(outcome.cost_usd) + (" simulated, nothing paid" if outcome.simulated else "")
    failed = f", {outcome.cells_failed} errored" if outcome.cells_failed else ""
    print(
        f"{outcome.status}: {outcome.cells_done:,} of {outcome.cells:,} cells{failed} · "
        f"{spend} · {outcome.seconds:.1f} s · experiment {outcome.experiment_id}"
    )
    if outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)
    if outcome.cells_done:
        report = experiment_report(outcome.experiment_id, items_shown=0)
        print("\n".join(v.verdict for v in report.variants))
    print(f"Full report: configurable-agents experiment report {outcome.experiment_id}")


def _list(args: argparse.Namespace) -> int:
    from core.experiments.records import list_experiments
    from core.formatting import aligned, money

    found = list_experiments(data_home())
    if args.format == "json":
        print(json.dumps([e.to_json() for e in found], indent=2))
        return EXIT_OK
    if not found:
        print("No experiments yet: configurable-agents experiment run FILE --simulate")
        return EXIT_OK
    rows = [("experiment_id", "status", "cells", "cost", "started", "workflow")]
    for e in found:
        cost = money(e.cost_usd) + (" sim" if e.simulated and e.cost_usd is not None else "")
        rows.append(
            (
                e.experiment_id,
                e.status,
                f"{e.cells_done:,}/{e.cells:,}",
                cost,
                f"{e.created_at:%Y-%m-%d %H:%M}",
                e.workflow,
            )
        )
    print("\n".join(aligned(rows)))
    return EXIT_OK


def _report(args: argparse.Namespace) -> int:
    from core.experiments.report import ITEMS_SHOWN, experiment_report
    from core.experiments.report_render import render, to_csv, to_json_text

    shown: int | None = ITEMS_SHOWN if args.items is None else args.items
    if shown is not None and shown < 0:  # --items all
        shown = None
    report = experiment_report(args.id, items_shown=shown)
    writers: dict[str, Any] = {"text": render, "json": to_json_text, "csv": to_csv}
    if args.format == "html":
        from core.app.experiment_html import experiment_html

        sys.stdout.write(experiment_html(report))
        return EXIT_OK
    text = writers[args.format](report)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK

"""`configurable-agents batch WORKFLOW --dataset FILE`: the workflow once per dataset row, on
the local or the Ray executor, with a progress bar, each row's outcome in the output file.

Exit codes follow `experiment run`: 0 every row ran (failed rows are results, counted and
written), 1 it stopped unfinished or telemetry stayed busy, 2 invalid workflow, dataset,
arguments, a missing key or a missing extra, 130 cancelled (finish with --resume).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.cli.exit_codes import EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from core.batch.runner import BatchInput, BatchOptions, BatchOutcome


def command(args: argparse.Namespace) -> int:
    from core.batch.output import check_output_path
    from core.batch.records import BatchConflict, UnknownBatch
    from core.batch.runner import BatchOptions, DatasetError, load_batch
    from core.errors import ProviderConfigError, WorkflowError
    from core.exporters.extras import MissingExtra
    from core.telemetry import TelemetryBusy

    output = Path(args.output) if args.output else None
    problem = check_output_path(output) if output else None
    if problem is None and args.concurrency < 1:
        problem = "--concurrency must be at least 1"
    if problem is None and args.workers is not None and args.workers < 1:
        problem = "--workers must be at least 1"
    if problem is None and args.executor == "local" and (args.workers or args.ray_address):
        problem = "--workers and --ray-address need --executor ray"
    if problem:
        print(f"batch: error: {problem}", file=sys.stderr)
        return EXIT_INVALID
    try:
        batch = load_batch(args.workflow, args.dataset)
    except (WorkflowError, DatasetError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    options = BatchOptions(
        executor=args.executor,
        concurrency=args.concurrency,
        simulate=args.simulate,
        use_cache=not args.no_cache,
        resume=args.resume,
        output=output,
        ray_address=args.ray_address,
        workers=args.workers,
    )
    started: list[str] = []
    try:
        outcome = _with_progress(batch, options, started)
    except (ProviderConfigError, MissingExtra, UnknownBatch, BatchConflict) as exc:
        print(f"batch: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except TelemetryBusy as exc:
        print(f"batch: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        again = f"; finish it with --resume {started[0]}" if started else ""
        print(f"cancelled: the rows finished so far are kept{again}", file=sys.stderr)
        return EXIT_CANCELLED
    _print_outcome(outcome, args.json)
    return EXIT_OK if outcome.status == "finished" else EXIT_FAILED


def _with_progress(batch: BatchInput, options: BatchOptions, started: list[str]) -> BatchOutcome:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from core.batch.runner import BatchProgress, run_batch

    err = Console(stderr=True)
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows · {task.fields[spend]} · ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task(batch.workflow.name, total=len(batch.rows), spend="$0")

    def on_progress(state: BatchProgress) -> None:
        bar.update(task, completed=state.done, spend=_spend(state.cost_usd, state.simulated))

    def on_start(batch_id: str, state: BatchProgress) -> None:
        # Shown once the batch is accepted: a refusal prints alone, with no bar.
        started.append(batch_id)
        where = "" if options.executor == "local" else " on Ray"
        err.print(
            f"batch {batch_id}: {state.total:,} rows, {state.to_run:,} to run{where}",
            highlight=False,
        )
        on_progress(state)
        bar.start()

    try:
        return run_batch(batch, options, on_start=on_start, on_progress=on_progress)
    finally:
        bar.stop()


def _spend(cost: float, simulated: bool) -> str:
    from core.formatting import money

    return money(cost) + (" simulated" if simulated else "")


def _print_outcome(outcome: BatchOutcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.to_json(), indent=2))
        return
    failed = f", {outcome.rows_failed:,} failed" if outcome.rows_failed else ""
    unpriced = f", {outcome.unpriced_rows:,} unpriced" if outcome.unpriced_rows else ""
    spend = _spend(outcome.cost_usd, outcome.simulated)
    paid = ", nothing paid" if outcome.simulated else ""
    print(
        f"{outcome.status}: {outcome.rows_done:,} of {outcome.rows:,} rows{failed} · "
        f"{spend}{paid}{unpriced} · {outcome.seconds:.1f} s · batch {outcome.batch_id}"
    )
    if outcome.output:
        print(f"output: {outcome.output}")
    if outcome.error:
        print(f"error: {outcome.error}", file=sys.stderr)

"""`configurable-agents run`: inputs in, progress while it runs, outputs and exit code out."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.exit_codes import EXIT_BUDGET, EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK
from core.errors import InputError, ProviderConfigError, WorkflowError
from core.formatting import money
from core.input_files import MAX_INPUTS_BYTES, UnreadableFile, read_text
from core.settings import HOME_VARIABLE, data_home, profiling_enabled

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from core.engine import RunResult
    from core.workflow import Workflow

CANCEL_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
FLUSH_BUDGET = 1.0  # seconds the command waits for a busy telemetry database

_EXIT_BY_STATUS = {
    "success": EXIT_OK,
    "failed": EXIT_FAILED,
    "budget_exceeded": EXIT_BUDGET,
    "cancelled": EXIT_CANCELLED,
}


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"{flag} expects KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value
    return pairs


def _gather_inputs(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if args.inputs_file:
        where = args.inputs_file
        try:
            loaded = json.loads(read_text(where, MAX_INPUTS_BYTES, "inputs"))
        except UnreadableFile as exc:
            raise InputError(f"{where}:{exc.line}:{exc.column}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{where}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}"
            ) from None
        except RecursionError:
            raise InputError(f"{where}: nested too deeply to be inputs") from None
        if not isinstance(loaded, dict):
            raise InputError(f"{where} must hold a JSON object of inputs")
        values.update(loaded)
    values.update(_pairs(args.input, "--input"))
    return values


def _unwritable(home: Path) -> str | None:
    """Why a run could not record anything in the data folder, or None."""
    if not os.access(home, os.W_OK):
        return f"the data folder {home} is not writable"
    return None


def command(args: argparse.Namespace) -> int:
    from rich.console import Console

    from core.workflow import load_workflow

    err = Console(stderr=True)
    try:
        workflow = load_workflow(args.file)
    except WorkflowError as exc:
        for problem in exc.problems:
            print(problem.format(args.file), file=sys.stderr)
        return EXIT_INVALID
    home = data_home()
    try:
        inputs = _gather_inputs(args)
        tags = _pairs(args.tag, "--tag")
        if args.dry_run or args.estimate_cost:
            _print_estimate(workflow, inputs, args)
            if args.dry_run:
                return EXIT_OK
        problem = _unwritable(home)
        if problem:
            print(
                f"error: {problem}: a run would leave no telemetry; set {HOME_VARIABLE} to a "
                "writable folder",
                file=sys.stderr,
            )
            return EXIT_FAILED
        result = _run_with_progress(workflow, inputs, tags, args, err)
    except InputError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print("give inputs as --input NAME=VALUE or --inputs-file F.json", file=sys.stderr)
        return EXIT_INVALID
    except ProviderConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("cancelled: finished nodes are kept in telemetry", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        _flush_telemetry(home)
    _print_result(result, args)
    if profiling_enabled():
        Console(stderr=args.json).print(node_table(result))
    return _EXIT_BY_STATUS.get(result.status, EXIT_FAILED)


def _flush_telemetry(home: Path) -> None:
    """Loads the run's events if the database lets us within a second or two; otherwise
    they wait in the spool for the next command, and the user is told so, once."""
    from core.telemetry import get_store

    store = get_store(home)
    if not store.flush(timeout=FLUSH_BUDGET) and not store.dropped_events:
        print(
            f"note: telemetry database busy or unusable: this run's events wait in "
            f"{store.spool} and load with a later command",
            file=sys.stderr,
        )


def _print_estimate(workflow: Workflow, inputs: dict[str, Any], args: argparse.Namespace) -> None:
    from core.analytics.estimate import estimate
    from core.analytics.estimate_render import render

    found = estimate(
        workflow,
        inputs,
        simulate=args.simulate,
        use_cache=not args.no_cache,
        inputs_from_text=True,
    )
    as_json = args.format == "json" or (args.format is None and args.json and args.dry_run)
    text = json.dumps(found.to_json(), indent=2) if as_json else render(found)
    # Before a real run the estimate goes to stderr, keeping stdout for the run's outputs.
    print(text, file=sys.stdout if args.dry_run else sys.stderr)


def _run_with_progress(
    workflow: Workflow,
    inputs: dict[str, Any],
    tags: dict[str, str],
    args: argparse.Namespace,
    err: Console,
) -> RunResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from core.engine import arun_workflow

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    label = f"{workflow.name}" + (" (simulated)" if args.simulate else "")
    task = progress.add_task(label, total=len(workflow.nodes), current="")

    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "node_started":
            progress.update(task, current=payload["node"])
        elif kind == "node_finished":
            progress.advance(task)

    async def cancellable() -> RunResult:
        """The run, cancelled by SIGTERM or SIGHUP as by Ctrl-C: status `cancelled`, the
        nodes that finished recorded."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        for signum in CANCEL_SIGNALS:
            loop.add_signal_handler(signum, task.cancel)
        try:
            return await arun_workflow(
                workflow,
                inputs,
                simulate=args.simulate,
                use_cache=not args.no_cache,
                tags=tags,
                on_event=on_event,
                inputs_from_text=True,
            )
        finally:
            for signum in CANCEL_SIGNALS:
                loop.remove_signal_handler(signum)

    with progress:
        return asyncio.run(cancellable())


def _print_result(result: RunResult, args: argparse.Namespace) -> None:
    from rich.console import Console

    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_json(), indent=2, ensure_ascii=False, default=str))
        return
    out = Console(highlight=False)
    for name, value in result.outputs.items():
        out.rule(f"[bold]{name}")
        text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
        out.print(text, markup=False)
    out.rule()
    colour = {"success": "green", "budget_exceeded": "yellow"}.get(result.status, "red")
    cost = money(result.cost_usd)
    if result.unpriced_calls:
        cost += f" (+{result.unpriced_calls} unpriced call{'s' * (result.unpriced_calls > 1)})"
    mode = " · simulated" if result.simulated else ""
    out.print(
        f"[{colour}]{result.status}[/{colour}] · {len(result.nodes)} nodes · "
        f"{result.tokens:,} tokens · {cost} · {result.duration_ms / 1000:.2f}s{mode} · "
        f"run {result.run_id}"
    )
    if result.error:
        print(f"error: {result.error}", file=sys.stderr)


def node_table(result: RunResult) -> Table:
    """The per-node profile printed when CONFIGURABLE_AGENTS_PROFILING=true."""
    from rich.table import Table

    table = Table(title=f"Node profile · run {result.run_id[:12]}", title_justify="left")
    for column in ("node", "status", "duration", "tokens in", "tokens out", "cost", "cache"):
        table.add_column(column, justify="left" if column in ("node", "status") else "right")
    for node in result.nodes.values():
        table.add_row(
            node.name,
            node.status,
            f"{node.duration_ms:,.0f} ms",
            f"{node.input_tokens:,}",
            f"{node.output_tokens:,}",
            money(node.cost_usd),
            "hit" if node.cache_hit else "",
        )
    return table

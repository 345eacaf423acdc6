"""The argument parser: every command, its options, and the handler that runs it.

Handlers live in one module per command (or family of commands) and import what they
need inside themselves: `validate` must answer in a fraction of a second, so importing
this module pulls in neither LiteLLM, DuckDB nor the engine.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from core.cli import (
    app_command,
    batch_command,
    demo_command,
    experiment_command,
    export_command,
    memory_command,
    prune_command,
    report_commands,
    run_command,
    sandbox_command,
    schema_command,
    validate_command,
)
from core.cli.exit_codes import EXIT_CANCELLED, EXIT_FAILED
from core.cli.pipe_guard import guard_stdout
from core.settings import DEBUG_VARIABLE


def _simulated_option(parser: argparse.ArgumentParser) -> None:
    """Every report can include or exclude simulated runs."""
    parser.add_argument(
        "--simulated",
        choices=("include", "exclude", "only"),
        default="include",
        help="simulated runs: include them (default), exclude them, or report only them",
    )


def _ratio(text: str) -> float:
    """A fraction between 0 and 1, as targets take them."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(
            f"expected a fraction from 0 to 1 (0.95 = 95 %), got {text!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="configurable-agents",
        description="Design, run and analyse LLM workflows by cost and speed.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check workflow files; one line per problem as FILE:LINE:COL"
    )
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(handler=validate_command.command)

    run = commands.add_parser("run", help="run a workflow and print its outputs")
    run.add_argument("file", metavar="FILE")
    run.add_argument(
        "--input", "-i", action="append", default=[], metavar="K=V", help="an input value"
    )
    run.add_argument("--inputs-file", metavar="F.json", help="inputs as a JSON object")
    run.add_argument(
        "--simulate", action="store_true", help="use the offline simulated provider (no keys)"
    )
    run.add_argument("--no-cache", action="store_true", help="ignore the response cache")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument(
        "--dry-run", action="store_true", help="call no model: validate, check inputs, estimate"
    )
    run.add_argument(
        "--estimate-cost",
        action="store_true",
        help="print the cost and token estimate first (with --dry-run: only that)",
    )
    run.add_argument(
        "--format", choices=("text", "json"), default=None, help="estimate output format"
    )
    run.add_argument(
        "--tag", action="append", default=[], metavar="K=V", help="label the run in telemetry"
    )
    run.set_defaults(handler=run_command.command)

    profile = commands.add_parser(
        "profile-report", help="per-node durations, costs, bottlenecks and recommendations"
    )
    profile.add_argument("--workflow", "-w", metavar="W", help="workflow name")
    profile.add_argument("--run", metavar="ID", help="one run (a prefix of its id is enough)")
    profile.add_argument("--last", type=int, default=20, metavar="N", help="last N runs (20)")
    profile.add_argument("--format", choices=("text", "json"), default="text")
    _simulated_option(profile)
    profile.set_defaults(handler=report_commands.profile_command)

    cost = commands.add_parser(
        "cost-report", help="spend by workflow, provider, model, node and day"
    )
    cost.add_argument(
        "--days", type=int, default=7, metavar="N", help="last N UTC days, today included (7)"
    )
    cost.add_argument("--workflow", "-w", metavar="W", help="workflow name")
    cost.add_argument("--format", choices=("text", "json", "csv"), default="text")
    _simulated_option(cost)
    cost.set_defaults(handler=report_commands.cost_command)

    reprice = commands.add_parser(
        "reprice", help="what past runs would have cost with another model"
    )
    reprice.add_argument(
        "--model", action="append", required=True, metavar="OLD=NEW", help="model swap"
    )
    reprice.add_argument(
        "--days", type=int, default=30, metavar="N", help="last N UTC days, today included (30)"
    )
    reprice.add_argument("--workflow", "-w", metavar="W", help="workflow name")
    reprice.add_argument("--format", choices=("text", "json"), default="text")
    _simulated_option(reprice)
    reprice.set_defaults(handler=report_commands.reprice_command)

    check = commands.add_parser(
        "check", help="evaluate target metrics; exit 1 on any violation (a CI gate)"
    )
    check.add_argument("--workflow", "-w", metavar="W", help="workflow name")
    check.add_argument(
        "--days", type=int, default=7, metavar="N", help="last N UTC days, today included (7)"
    )
    check.add_argument("--max-run-cost", type=float, metavar="USD", help="p95 cost per run")
    check.add_argument(
        "--max-run-latency-ms", type=float, metavar="MS", help="p95 duration per run"
    )
    for flag, what in (
        ("--min-success-rate", "share of runs that succeed"),
        ("--min-cache-hit-rate", "share of cache-enabled executions served from cache"),
        ("--max-node-time-share", "largest node's share of a workflow's node time"),
        ("--max-node-cost-share", "largest node's share of a workflow's node cost"),
    ):
        check.add_argument(flag, type=_ratio, metavar="0-1", help=f"{what} (beats targets:)")
    check.add_argument(
        "--notify",
        action="append",
        default=[],
        metavar="URL",
        help="post a Slack-compatible message to this webhook when a target is violated "
        "(repeatable)",
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    _simulated_option(check)
    check.set_defaults(handler=report_commands.check_command)

    export = commands.add_parser(
        "export", help="send recorded runs to an OpenTelemetry backend (OTLP) or MLflow"
    )
    destinations = export.add_subparsers(dest="target", required=True, metavar="TARGET")
    otlp = destinations.add_parser(
        "otlp",
        help="GenAI traces over OTLP/HTTP (endpoint from OTEL_EXPORTER_OTLP_* or --endpoint)",
    )
    otlp.add_argument(
        "--endpoint", metavar="URL", help="the traces URL, e.g. http://host:4318/v1/traces"
    )
    to_mlflow = destinations.add_parser(
        "mlflow", help="one MLflow run with a trace per workflow run (MLFLOW_TRACKING_URI)"
    )
    to_mlflow.add_argument(
        "--experiment", default="configurable-agents", metavar="NAME", help="MLflow experiment"
    )
    to_mlflow.add_argument(
        "--tracking-uri", metavar="URI", help="MLflow tracking server (default MLFLOW_TRACKING_URI)"
    )
    for target in (otlp, to_mlflow):
        target.add_argument(
            "--days", type=int, metavar="N", help="last N UTC days, today included (default: all)"
        )
        target.add_argument("--workflow", "-w", metavar="W", help="workflow name")
        _simulated_option(target)
        target.set_defaults(handler=export_command.command)

    app = commands.add_parser("app", help="start the Streamlit app")
    app.add_argument("--port", type=int, default=8501)
    app.add_argument(
        "--host",
        default=app_command.DEFAULT_HOST,
        help="address to listen on (127.0.0.1); any other needs the access token printed at start",
    )
    app.add_argument(
        "--no-demo", action="store_true", help="do not seed demo history into an empty database"
    )
    app.set_defaults(handler=app_command.command)

    demo = commands.add_parser(
        "demo", help="fill the database with simulated runs of the example workflows"
    )
    demo.add_argument("--days", type=int, default=30, metavar="N", help="spread over N days")
    demo.add_argument("--runs-per-day", type=int, default=40, metavar="N")
    demo.add_argument("--seed", type=int, default=7, help="random seed (same seed, same data)")
    demo.add_argument(
        "--force", action="store_true", help="add demo runs even if some are already there"
    )
    demo.set_defaults(handler=demo_command.command)

    memory = commands.add_parser("memory", help="list, read or clear a memory namespace")
    # One subcommand each, so that options and the key may come in any order.
    actions = memory.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, about in (
        ("list", "keys and values (every namespace unless --namespace)"),
        ("get", "one key's value"),
        ("clear", "remove every key of a namespace"),
    ):
        sub = actions.add_parser(action, help=about)
        if action == "get":
            sub.add_argument("key", metavar="KEY", help="the key to read")
        sub.add_argument("--namespace", "-n", metavar="NS", help="the namespace")
        if action != "clear":
            sub.add_argument("--json", action="store_true", help="print values as JSON")
        sub.set_defaults(handler=memory_command.command)

    sandbox = commands.add_parser("sandbox", help="look after code-node sandboxes")
    sandbox_actions = sandbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    reap = sandbox_actions.add_parser(
        "reap", help="remove sandboxes (processes, Docker containers) no running engine owns"
    )
    reap.set_defaults(handler=sandbox_command.command)

    schema = commands.add_parser(
        "schema", help="write the workflow JSON Schema (for editor completion and checks)"
    )
    schema.add_argument(
        "kind",
        nargs="?",
        choices=("workflow", "experiment"),
        default="workflow",
        help="which file format (default: workflow)",
    )
    schema.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    schema.set_defaults(handler=schema_command.command)

    prune = commands.add_parser(
        "prune", help="delete stored prompts and responses of runs older than N days"
    )
    prune.add_argument(
        "--days",
        type=prune_command.days_argument,
        metavar="N",
        help="keep the last N UTC days, today included (default: the retention setting)",
    )
    prune.set_defaults(handler=prune_command.command)
    _experiment_commands(commands)
    _batch_command(commands)
    return parser


def _batch_command(commands: argparse._SubParsersAction) -> None:
    """`batch WORKFLOW --dataset FILE` (docs/batch.md)."""
    batch = commands.add_parser(
        "batch", help="run a workflow once per dataset row, locally or on Ray"
    )
    batch.add_argument("workflow", metavar="WORKFLOW")
    batch.add_argument("--dataset", required=True, metavar="FILE", help="rows: .jsonl or .csv")
    batch.add_argument("--output", "-o", metavar="F", help="results: .jsonl or .parquet")
    batch.add_argument("--executor", choices=("local", "ray"), default="local")
    batch.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="runs at once per worker (16)"
    )
    batch.add_argument("--resume", metavar="ID", help="run the rows batch ID is missing")
    batch.add_argument(
        "--ray-address", metavar="ADDR", help="join this Ray cluster (default: RAY_ADDRESS)"
    )
    batch.add_argument("--workers", type=int, metavar="N", help="Ray actors (default: one per CPU)")
    batch.add_argument(
        "--simulate", action="store_true", help="use the offline simulated provider (no keys)"
    )
    batch.add_argument("--no-cache", action="store_true", help="ignore the response cache")
    batch.add_argument("--json", action="store_true", help="print the outcome as JSON")
    batch.set_defaults(handler=batch_command.command)


def _items(text: str) -> int:
    """`--items N` or `--items all` (-1)."""
    if text == "all":
        return -1
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a count of items or 'all'")
    return value


def _experiment_commands(commands: argparse._SubParsersAction) -> None:
    """`experiment run|list|report` (docs/experiments.md)."""
    experiment = commands.add_parser(
        "experiment", help="run variants of a workflow over a dataset and compare them"
    )
    actions = experiment.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = actions.add_parser("run", help="run every (item, variant, repeat) cell and score it")
    run.add_argument("file", metavar="FILE")
    run.add_argument(
        "--simulate", action="store_true", help="use the offline simulated provider (no keys)"
    )
    again = run.add_mutually_exclusive_group()
    again.add_argument("--resume", metavar="ID", help="run the cells experiment ID is missing")
    again.add_argument(
        "--rerun-failed", metavar="ID", help="run again the cells of experiment ID that errored"
    )
    run.add_argument("--dry-run", action="store_true", help="run nothing (with --estimate-cost)")
    run.add_argument(
        "--estimate-cost",
        action="store_true",
        help="price the runs and judge calls from history first (with --dry-run: only that)",
    )
    run.add_argument("--json", action="store_true", help="print the outcome as JSON")
    run.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where cells run"
    )
    run.add_argument(
        "--ray-address", metavar="ADDR", help="join this Ray cluster (default: RAY_ADDRESS)"
    )
    run.add_argument("--workers", type=int, metavar="N", help="Ray actors (default: one per CPU)")
    run.set_defaults(handler=experiment_command.command)

    listing = actions.add_parser("list", help="experiments recorded, newest first")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.set_defaults(handler=experiment_command.command)

    report = actions.add_parser(
        "report", help="scores with confidence intervals, differences, frontier and verdicts"
    )
    report.add_argument("id", metavar="ID", help="experiment id, a prefix of one, or a name")
    report.add_argument("--format", choices=("text", "json", "csv", "html"), default="text")
    report.add_argument(
        "--items", type=_items, metavar="N", help="items in the per-item view (20; 'all')"
    )
    report.set_defaults(handler=experiment_command.command)


def main(argv: Sequence[str] | None = None) -> int:
    guard_stdout()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except Exception as exc:
        # The last resort: whatever a handler did not foresee (a full disk, a folder that
        # vanished) is one line, never a traceback; DEBUG_VARIABLE shows the traceback.
        if os.environ.get(DEBUG_VARIABLE):
            raise
        print(f"error: {describe(exc)}", file=sys.stderr)
        return EXIT_FAILED


def describe(exc: Exception) -> str:
    """One line about an error no handler caught."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return (
        f"{type(exc).__name__}{': ' + text if text else ''} (an unexpected error: set "
        f"{DEBUG_VARIABLE}=1 to see where it happened)"
    )

"""`configurable-agents` command line (SPEC §4).

Each command imports what it needs inside its handler: `validate` must answer in a fraction
of a second, so nothing here imports LiteLLM, DuckDB or the engine at module level.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_BUDGET = 3
EXIT_CANCELLED = 130


def _validate(args: argparse.Namespace) -> int:
    from core.errors import WorkflowError
    from core.workflow import load_workflow

    status = EXIT_OK
    for path in args.files:
        try:
            workflow = load_workflow(path)
        except WorkflowError as exc:
            for problem in exc.problems:
                print(problem.format(path), file=sys.stderr)
            status = EXIT_INVALID
            continue
        nodes = len(workflow.nodes)
        print(f"{path}: ok ({workflow.name}: {nodes} node{'s' * (nodes != 1)})")
    return status


def _run(args: argparse.Namespace) -> int:
    from core.cli_run import run_command

    return run_command(args)


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
    validate.set_defaults(handler=_validate)

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
    run.set_defaults(handler=_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_CANCELLED

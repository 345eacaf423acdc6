"""`configurable-agents validate FILE...`: one located line per problem, exit 2 if any."""

from __future__ import annotations

import argparse
import sys

from core.cli.exit_codes import EXIT_INVALID, EXIT_OK


def command(args: argparse.Namespace) -> int:
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

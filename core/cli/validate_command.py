"""`configurable-agents validate FILE...`: one located line per problem, exit 2 if any.

Workflow and experiment files alike: an experiment is told by its top-level `experiment:`,
and its problems may lie in its workflow or its dataset, each named with its own file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.cli.exit_codes import EXIT_INVALID, EXIT_OK


def command(args: argparse.Namespace) -> int:
    from core.errors import WorkflowError
    from core.workflow import load_workflow

    status = EXIT_OK
    for path in args.files:
        if _is_experiment(path):
            status = max(status, _validate_experiment(path))
            continue
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


def _is_experiment(path: str) -> bool:
    from core.experiments.loader import looks_like_experiment

    try:
        return looks_like_experiment(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False  # the workflow loader reports an unreadable file


def _validate_experiment(path: str) -> int:
    from core.cli.experiment_command import load

    experiment = load(path)
    if experiment is None:
        return EXIT_INVALID
    print(
        f"{path}: ok (experiment {experiment.name}: {len(experiment.variants)} variants, "
        f"{len(experiment.items)} items, {experiment.cells:,} cells)"
    )
    return EXIT_OK

"""`configurable-agents demo`: fill the database with simulated history of the examples."""

from __future__ import annotations

import argparse
import sys

from core.cli.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_OK


def command(args: argparse.Namespace) -> int:
    from core.demo.experiment import describe_experiment, seed_demo_experiment
    from core.demo.history import DemoExists, describe, seed_demo
    from core.settings import data_home

    if args.days < 1 or args.runs_per_day < 1:
        print("error: --days and --runs-per-day must be at least 1", file=sys.stderr)
        return EXIT_INVALID
    home = data_home()
    try:
        summary = seed_demo(
            home,
            days=args.days,
            runs_per_day=args.runs_per_day,
            seed=args.seed,
            force=args.force,
        )
    except DemoExists as exc:
        print(
            f"{home}: {exc}; pass --force to add another set of {args.days * args.runs_per_day:,}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(describe(summary, home))
    print(describe_experiment(seed_demo_experiment(home)))
    return EXIT_OK

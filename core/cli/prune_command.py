"""`configurable-agents prune [--days N]`: forget stored prompts and responses of old runs.

Only content goes (docs/telemetry.md, "Content"): runs and node rows stay, so past spend,
profiles and comparisons read the same after a prune. Without --days the retention setting
($CONFIGURABLE_AGENTS_CONTENT_DAYS) says how many days to keep.
"""

from __future__ import annotations

import argparse
import sys

from core.cli.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_OK


def days_argument(text: str) -> int:
    """--days: a whole number of days, at least 1 (today counts as one)."""
    from core.telemetry.content import RetentionError, retention_days

    try:
        days = retention_days(text)
    except RetentionError:
        days = None
    if days is None:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of days, at least 1, got {text!r}"
        )
    return days


def command(args: argparse.Namespace) -> int:
    import duckdb

    from core.settings import data_home
    from core.telemetry import TelemetryBusy, TelemetryUnavailable, get_store
    from core.telemetry.content import (
        RETENTION_VARIABLE,
        RetentionError,
        prune_content,
        retention_cutoff,
        retention_days,
    )

    try:
        days = args.days or retention_days()
    except RetentionError as exc:
        print(f"prune: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if days is None:
        print(
            f"prune: error: say how many days of content to keep: --days N, or set "
            f"{RETENTION_VARIABLE}",
            file=sys.stderr,
        )
        return EXIT_INVALID
    cutoff = retention_cutoff(days)
    try:
        with get_store(data_home()).connect(read_only=False) as con:
            pruned = prune_content(con, cutoff)
    except (TelemetryBusy, TelemetryUnavailable) as exc:
        print(f"prune: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"prune: the telemetry database cannot be changed ({first})", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"pruned content of runs started before {cutoff:%Y-%m-%d} (UTC): "
        f"{pruned.node_calls:,} node call{'s' * (pruned.node_calls != 1)}, "
        f"{pruned.texts:,} stored text{'s' * (pruned.texts != 1)}; runs and node_runs kept"
    )
    return EXIT_OK

"""`configurable-agents export otlp|mlflow`: recorded runs sent to an observability backend.

Both exports are idempotent (OTLP ids derive from run ids; MLflow skips runs already
there), so the answer to a failed export is to run the same command again. A failure says
why on stderr and exits 1; a missing extra or an unusable setting exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.cli.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from core.exporters.summary import ExportSummary

Progress = Callable[[int, int], None]


def command(args: argparse.Namespace) -> int:
    from core.exporters.extras import MissingExtra
    from core.exporters.otlp import OTLPConfigError
    from core.telemetry import TelemetryBusy

    name = f"export {args.target}"
    exports = {"runs": _otlp} if args.target == "otlp" else {"runs": _mlflow}
    if args.target == "mlflow":
        exports["experiments"] = _mlflow_experiments
    try:
        for what, export in exports.items():
            summary = _with_progress(args, export, what)
            if not summary.ok:
                print(f"{name}: {summary.line()}", file=sys.stderr)
                print(
                    f"{name}: run the same command again to retry; what was sent is not sent twice",
                    file=sys.stderr,
                )
                return EXIT_FAILED
            if what == "runs" or summary.runs or summary.skipped:
                print(summary.line())  # no line about experiments when there are none
    except (MissingExtra, OTLPConfigError, _NoTrackingUri) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except TelemetryBusy as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _with_progress(
    args: argparse.Namespace,
    export: Callable[[argparse.Namespace, Progress], ExportSummary],
    what: str,
) -> ExportSummary:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(stderr=True)
    progress = Progress(
        TextColumn(f"[bold]exporting {what}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,  # a log file gets the result line only
    )
    task = progress.add_task("export", total=None)

    def advance(done: int, total: int) -> None:
        progress.update(task, completed=done, total=total)

    with progress:
        return export(args, advance)


def _simulated(args: argparse.Namespace) -> bool | None:
    from core.analytics.filters import SIMULATED_CHOICES

    return SIMULATED_CHOICES[args.simulated]


def _otlp(args: argparse.Namespace, advance: Progress) -> ExportSummary:
    from core.exporters.otlp import export_otlp

    return export_otlp(
        days=args.days,
        workflow=args.workflow,
        simulated=_simulated(args),
        endpoint=args.endpoint,
        on_progress=advance,
    )


class _NoTrackingUri(ValueError):
    """Neither --tracking-uri nor MLFLOW_TRACKING_URI says where MLflow is."""


def _tracking_uri(args: argparse.Namespace) -> str:
    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise _NoTrackingUri(
            "no MLflow tracking server given: set MLFLOW_TRACKING_URI (for example "
            "http://localhost:5000) or pass --tracking-uri"
        )
    return uri


def _mlflow(args: argparse.Namespace, advance: Progress) -> ExportSummary:
    from core.exporters.mlflow_runs import export_mlflow

    return export_mlflow(
        days=args.days,
        workflow=args.workflow,
        simulated=_simulated(args),
        experiment=args.experiment,
        tracking_uri=_tracking_uri(args),
        on_progress=advance,
    )


def _mlflow_experiments(args: argparse.Namespace, advance: Progress) -> ExportSummary:
    """Every recorded experiment, one MLflow run per variant with its scores and CIs."""
    from core.experiments.mlflow_export import export_experiments

    return export_experiments(
        tracking_uri=_tracking_uri(args),
        experiment=args.experiment,
        days=args.days,
        workflow=args.workflow,
        on_progress=advance,
    )

"""The report commands: profile-report, cost-report, reprice and check.

Each asks core.analytics for its report and prints it in the chosen format. They share one
way of failing: a telemetry database that other processes keep locked, or that cannot be
read, is exit 1 (a gate that could not look must not pass), a wrong argument is exit 2, both
on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from core.cli.exit_codes import EXIT_FAILED, EXIT_INVALID, EXIT_OK


def _report(name: str, build: Callable[[], Any], show: Callable[[Any], int]) -> int:
    import duckdb

    from core.analytics.profile import NothingToProfile, ProfileError
    from core.analytics.reprice import RepriceError
    from core.telemetry import TelemetryBusy, TelemetryUnavailable

    try:
        report = build()
    except NothingToProfile as exc:
        return _print(f"{name}: {exc}")  # an empty report, as cost-report prints one
    except (ProfileError, RepriceError) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except (TelemetryBusy, TelemetryUnavailable) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except duckdb.Error as exc:  # a damaged file can open and fail on the first read
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"{name}: the telemetry database cannot be read ({first})", file=sys.stderr)
        return EXIT_FAILED
    return show(report)


def _print(text: str, end: str = "\n") -> int:
    print(text, end=end)
    return EXIT_OK


def profile_command(args: argparse.Namespace) -> int:
    from core.analytics.filters import SIMULATED_CHOICES
    from core.analytics.json_render import to_json
    from core.analytics.profile import profile
    from core.analytics.profile_render import render

    return _report(
        "profile-report",
        lambda: profile(
            workflow=args.workflow,
            run=args.run,
            last=args.last,
            simulated=SIMULATED_CHOICES[args.simulated],
        ),
        lambda found: _print(to_json(found) if args.format == "json" else render(found)),
    )


def cost_command(args: argparse.Namespace) -> int:
    from core.analytics.cost import cost_report
    from core.analytics.cost_render import render, to_csv
    from core.analytics.filters import SIMULATED_CHOICES
    from core.analytics.json_render import to_json

    def show(report: Any) -> int:
        if args.format == "csv":
            return _print(to_csv(report), end="")
        return _print(to_json(report) if args.format == "json" else render(report))

    return _report(
        "cost-report",
        lambda: cost_report(
            days=args.days, workflow=args.workflow, simulated=SIMULATED_CHOICES[args.simulated]
        ),
        show,
    )


def reprice_command(args: argparse.Namespace) -> int:
    from core.analytics.filters import SIMULATED_CHOICES
    from core.analytics.json_render import to_json
    from core.analytics.reprice import parse_swaps, reprice
    from core.analytics.reprice_render import render

    return _report(
        "reprice",
        lambda: reprice(
            swaps=parse_swaps(args.model),
            days=args.days,
            workflow=args.workflow,
            simulated=SIMULATED_CHOICES[args.simulated],
        ),
        lambda report: _print(to_json(report) if args.format == "json" else render(report)),
    )


def check_command(args: argparse.Namespace) -> int:
    from core.analytics.check import check
    from core.analytics.check_render import render
    from core.analytics.filters import SIMULATED_CHOICES
    from core.analytics.json_render import to_json

    def show(report: Any) -> int:
        _print(to_json(report) if args.format == "json" else render(report))
        if args.notify:
            _notify(report, args.notify)
        return report.exit_code

    return _report(
        "check",
        lambda: check(
            workflow=args.workflow,
            days=args.days,
            max_run_cost=args.max_run_cost,
            max_run_latency_ms=args.max_run_latency_ms,
            min_success_rate=args.min_success_rate,
            min_cache_hit_rate=args.min_cache_hit_rate,
            max_node_time_share=args.max_node_time_share,
            max_node_cost_share=args.max_node_cost_share,
            simulated=SIMULATED_CHOICES[args.simulated],
        ),
        show,
    )


def _notify(report: Any, urls: list[str]) -> None:
    """Posts the violations (none: nothing is sent) and says on stderr what became of each
    webhook; a webhook that fails does not change the gate's exit code."""
    from core.analytics.targets import violations
    from core.exporters.webhook import send_violations

    found = violations(report)
    if not found:
        print("check: no target violated, no webhook called", file=sys.stderr)
        return
    scope = report.workflow or "all workflows"
    title = f"configurable-agents check of {scope}, {report.label.lower()}"
    for delivery in send_violations(found, urls, title, log_failures=False):
        print(f"check: {delivery.line()}", file=sys.stderr)

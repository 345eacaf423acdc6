"""`configurable-agents app`: seed demo history into an empty database, then start Streamlit.

A first start on empty telemetry would greet the user with blank charts on every analysis
page, so an empty database gets the demo history first (clearly marked simulated). A
database holding any run, real or demo, is never touched, and `--no-demo` skips seeding.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

from core.resources import APP_SCRIPT
from core.settings import HOME_VARIABLE, data_home

APP = APP_SCRIPT


def should_seed(home: Path, no_demo: bool) -> bool:
    """Seed only a database that holds no run at all, and only when not told otherwise."""
    from core.telemetry import get_store

    if no_demo:
        return False
    return not get_store(home).query("SELECT EXISTS (SELECT 1 FROM runs)")[0][0]


def streamlit_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",  # no "Deploy" button: this app runs where its data is
        # The product's pages do not change while it runs; watching the folder (a virtualenv
        # and a data folder of thousands of files beside it) only overflows inotify.
        "--server.fileWatcherType",
        "none",
    ]


def command(args: argparse.Namespace) -> NoReturn:
    from core.demo import history as demo
    from core.demo.experiment import describe_experiment, seed_demo_experiment
    from core.telemetry import TelemetryBusy

    home = data_home()
    try:
        seed = should_seed(home, args.no_demo)
    except TelemetryBusy:
        print(f"{home}: telemetry busy in another process; not adding demo history", flush=True)
        seed = False
    if seed:
        print(
            f"No runs in {home} yet: adding {demo.DEFAULT_DAYS} days of simulated demo history "
            "first (start with --no-demo to skip)...",
            flush=True,
        )
        print(demo.describe(demo.seed_demo(home), home), flush=True)
        print(describe_experiment(seed_demo_experiment(home)), flush=True)
    print(f"Starting the app on http://localhost:{args.port} (Ctrl-C stops it)", flush=True)
    # Streamlit replaces this process: it handles Ctrl-C itself, and no Python process of
    # ours lingers holding the telemetry store. The data folder is passed on explicitly so
    # the app reads the database that was just seeded, whatever its working directory.
    command_line = streamlit_command(args.port)
    os.execve(sys.executable, command_line, {**os.environ, HOME_VARIABLE: str(home)})

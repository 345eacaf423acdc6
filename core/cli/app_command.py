"""`configurable-agents app`: seed demo history into an empty database, then start Streamlit.

A first start on empty telemetry would greet the user with blank charts on every analysis
page, so an empty database gets the demo history first (clearly marked simulated). A
database holding any run, real or demo, is never touched, and `--no-demo` skips seeding.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path
from typing import NoReturn

from core.app.access import TOKEN_PARAM, TOKEN_VARIABLE, is_loopback
from core.resources import APP_SCRIPT
from core.settings import HOME_VARIABLE, data_home

APP = APP_SCRIPT
DEFAULT_HOST = "127.0.0.1"  # this machine only; --host opens it wider, behind a token


def should_seed(home: Path, no_demo: bool) -> bool:
    """Seed only a database that holds no run at all, and only when not told otherwise."""
    from core.telemetry import get_store

    if no_demo:
        return False
    return not get_store(home).query("SELECT EXISTS (SELECT 1 FROM runs)")[0][0]


def streamlit_command(port: int, host: str = DEFAULT_HOST) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        host,
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
    environment = {**os.environ, HOME_VARIABLE: str(home)}
    url = f"http://{_url_host(args.host)}:{args.port}/"
    token = access_token(args.host)
    if token:
        environment[TOKEN_VARIABLE] = token
        url += f"?{TOKEN_PARAM}={token}"
    print(f"Starting the app on {url} (Ctrl-C stops it)", flush=True)
    # Streamlit replaces this process: it handles Ctrl-C itself, and no Python process of
    # ours lingers holding the telemetry store. The data folder is passed on explicitly so
    # the app reads the database that was just seeded, whatever its working directory.
    command_line = streamlit_command(args.port, args.host)
    os.execve(sys.executable, command_line, environment)


def access_token(host: str) -> str | None:
    """The token sessions must show: $CONFIGURABLE_AGENTS_APP_TOKEN if set, else a new one
    when the app listens beyond this machine, else none."""
    given = os.environ.get(TOKEN_VARIABLE)
    if given:
        return given
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return f"[{host}]" if ":" in host else host

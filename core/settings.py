"""Where runtime state lives: one data folder per user or project, and its layout."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

HOME_VARIABLE = "CONFIGURABLE_AGENTS_HOME"
PROFILING_VARIABLE = "CONFIGURABLE_AGENTS_PROFILING"
DEBUG_VARIABLE = "CONFIGURABLE_AGENTS_DEBUG"  # set: unexpected errors show their traceback

# The data folder's layout: every module and test names these instead of spelling them out.
DB_FILE = "telemetry.duckdb"
SPOOL_DIR = "spool"
CACHE_DIR = "cache"
MEMORY_DIR = "memory"
WORKFLOWS_DIR = "workflows"
EXPERIMENTS_DIR = "experiments"
CONFIG_FILE = "config.toml"


def data_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: the argument, else $CONFIGURABLE_AGENTS_HOME, else ./data."""
    chosen = os.fspath(home or os.environ.get(HOME_VARIABLE) or "data")
    # Only a relative folder depends on the working directory; asking for it costs a syscall
    # that an experiment running thousands of cells would pay per run.
    return _resolved(chosen, "" if os.path.isabs(chosen) else os.getcwd())


@cache
def _resolved(home: str, cwd: str) -> Path:
    """Resolved and created once per process: every run asks, and each costs syscalls."""
    chosen = (Path(cwd) / Path(home).expanduser()).resolve()
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


def config_file() -> Path:
    """The data folder's config.toml (docs/workflow-format.md), found without creating the
    folder: validating a workflow must not leave a folder behind."""
    return Path(os.environ.get(HOME_VARIABLE) or "data").expanduser() / CONFIG_FILE


def profiling_enabled() -> bool:
    return os.environ.get(PROFILING_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}

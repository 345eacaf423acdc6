"""Where runtime state lives: one data folder per user or project (SPEC §4)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "CONFIGURABLE_AGENTS_HOME"
PROFILING_VARIABLE = "CONFIGURABLE_AGENTS_PROFILING"


def data_home(home: str | os.PathLike[str] | None = None) -> Path:
    """The data folder: the argument, else $CONFIGURABLE_AGENTS_HOME, else ./data."""
    chosen = Path(home or os.environ.get(HOME_VARIABLE) or "data").expanduser().resolve()
    chosen.mkdir(parents=True, exist_ok=True)
    return chosen


def profiling_enabled() -> bool:
    return os.environ.get(PROFILING_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}

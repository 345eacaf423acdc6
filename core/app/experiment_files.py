"""The Experiments page's files: which experiment files it offers, and checking edited text.

An experiment names its workflow and dataset by paths relative to its own file, so edited
text is always checked (and run) as if it were that file: an edited example still finds
the example's workflow and dataset.
"""

from __future__ import annotations

from pathlib import Path

from core.experiments.errors import ExperimentError, LocatedProblem
from core.experiments.loader import Experiment, load_experiment
from core.resources import EXAMPLE_EXPERIMENTS
from core.settings import EXPERIMENTS_DIR, data_home


def experiment_files(home: Path | None = None) -> list[Path]:
    """The user's experiments (`experiments/` in the data folder), then the examples."""
    own = sorted((data_home(home) / EXPERIMENTS_DIR).glob("*.yaml"))
    return own + sorted(EXAMPLE_EXPERIMENTS.glob("*.yaml"))


def check(path: Path, text: str) -> tuple[Experiment | None, list[LocatedProblem]]:
    """The experiment `text` describes as the file `path`, or every problem with it."""
    try:
        return load_experiment(path, text=text), []
    except ExperimentError as exc:
        return None, exc.problems

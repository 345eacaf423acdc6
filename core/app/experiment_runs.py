"""Experiments started from the app, running in the server process while pages come and go.

As with workflow runs (core.app.background), a Streamlit script cannot hold a long task, so
each experiment gets a thread with its own event loop, and this module-level registry keeps
its progress (cells done, spend, ETA) and outcome where any session of the server, a reloaded
page included, picks it up again. Cancelling stops it at once; the cells scored so far are
kept and `Resume` finishes the rest.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.experiments.loader import Experiment
from core.experiments.runner import Outcome, Progress, run_experiment

KEEP_FINISHED = 20


@dataclass
class BackgroundExperiment:
    key: str
    experiment: Experiment
    simulate: bool
    started: float = field(default_factory=time.time)
    experiment_id: str | None = None
    progress: Progress | None = None
    outcome: Outcome | None = None
    error: str | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[Outcome] | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None or self.error is not None

    @property
    def cells_done(self) -> int:
        return self.progress.done if self.progress else 0

    def cancel(self) -> None:
        """Cancel from any thread: cells in flight stop, the scored ones are kept."""
        if self._loop is not None and self._task is not None and not self.done:
            self._loop.call_soon_threadsafe(self._task.cancel)


_running: dict[str, BackgroundExperiment] = {}
_lock = threading.Lock()


def start(
    experiment: Experiment,
    *,
    simulate: bool,
    home: Path | None = None,
    resume: str | None = None,
) -> BackgroundExperiment:
    """Start in a thread and return at once; a refusal (a missing key, a changed file)
    surfaces in `error`."""
    key = f"{experiment.name}-{time.time_ns()}"
    job = BackgroundExperiment(key=key, experiment=experiment, simulate=simulate)

    def on_start(experiment_id: str) -> None:
        job.experiment_id = experiment_id

    def on_progress(progress: Progress) -> None:
        job.progress = progress

    def target() -> None:
        loop = asyncio.new_event_loop()
        job._loop = loop
        try:
            job._task = loop.create_task(
                run_experiment(
                    experiment,
                    simulate=simulate,
                    home=home,
                    resume=resume,
                    on_progress=on_progress,
                    on_start=on_start,
                )
            )
            job.outcome = loop.run_until_complete(job._task)
        except asyncio.CancelledError:
            job.error = "cancelled: the cells scored so far are kept; Resume finishes the rest"
        except Exception as exc:  # shown to the user as a message, never a traceback
            job.error = str(exc)
        finally:
            loop.close()

    with _lock:
        _running[key] = job
        finished = sorted((j for j in _running.values() if j.done), key=lambda j: j.started)
        for old in finished[:-KEEP_FINISHED]:
            del _running[old.key]
    threading.Thread(target=target, name=f"experiment-{experiment.name}", daemon=True).start()
    return job


def get(key: str) -> BackgroundExperiment | None:
    return _running.get(key)


def recent() -> list[BackgroundExperiment]:
    """This server's experiments: the ones still going first, newest first."""
    with _lock:
        return sorted(_running.values(), key=lambda j: (j.done, -j.started))

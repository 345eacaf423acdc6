"""Runs started from the app, executing in the server process while pages come and go.

A Streamlit script re-runs on every interaction and a page reload starts a new session, so a
run cannot live in a script: each one gets a thread with its own event loop, and this
module-level registry keeps its live state (per-node progress, then the result) where any
session of the same server can pick it up again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.engine import arun_workflow
from core.engine.results import NodeResult, RunResult
from core.workflow import Workflow

KEEP_FINISHED = 50  # finished runs remembered for sessions that come back to them


@dataclass
class BackgroundRun:
    key: str
    workflow: Workflow
    inputs: dict[str, Any]
    simulate: bool
    started: float = field(default_factory=time.time)
    run_id: str | None = None
    running: set[str] = field(default_factory=set)
    finished: dict[str, NodeResult] = field(default_factory=dict)
    result: RunResult | None = None
    error: str | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[RunResult] | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    @property
    def progress(self) -> float:
        return len(self.finished) / max(1, len(self.workflow.nodes))

    def cancel(self) -> None:
        """Cancel from any thread; finished nodes stay in telemetry, the run ends 'cancelled'."""
        if self._loop is not None and self._task is not None and not self.done:
            self._loop.call_soon_threadsafe(self._task.cancel)


_runs: dict[str, BackgroundRun] = {}
_lock = threading.Lock()


def start(
    workflow: Workflow,
    inputs: Mapping[str, Any],
    *,
    simulate: bool,
    use_cache: bool = True,
    home: Path | None = None,
    tags: Mapping[str, str] | None = None,
) -> BackgroundRun:
    """Start a run in a thread and return at once; input and key errors surface in `error`."""
    key = f"{workflow.name}-{time.time_ns()}"
    run = BackgroundRun(key=key, workflow=workflow, inputs=dict(inputs), simulate=simulate)

    def on_event(kind: str, payload: Mapping[str, Any]) -> None:
        with _lock:
            run.run_id = payload["run_id"]
            if kind == "node_started":
                run.running.add(payload["node"])
            else:
                run.running.discard(payload["node"])
                run.finished[payload["node"]] = payload["result"]

    async def main() -> RunResult:
        return await arun_workflow(
            workflow,
            run.inputs,
            simulate=simulate,
            use_cache=use_cache,
            home=home,
            tags=tags,
            on_event=on_event,
            inputs_from_text=True,
        )

    def target() -> None:
        loop = asyncio.new_event_loop()
        run._loop = loop
        try:
            run._task = loop.create_task(main())
            run.result = loop.run_until_complete(run._task)
        except asyncio.CancelledError:
            run.error = "cancelled: finished nodes are kept in telemetry"
        except Exception as exc:  # shown to the user as a message, never a traceback
            run.error = str(exc)
        finally:
            loop.close()

    with _lock:
        _runs[key] = run
        _forget_old()
    threading.Thread(target=target, name=f"run-{workflow.name}", daemon=True).start()
    return run


def get(key: str) -> BackgroundRun | None:
    return _runs.get(key)


def recent() -> list[BackgroundRun]:
    """Runs of this server, newest first: the ones still going, then finished ones."""
    with _lock:
        return sorted(_runs.values(), key=lambda r: (r.done, -r.started))


def _forget_old() -> None:
    finished = sorted((r for r in _runs.values() if r.done), key=lambda r: r.started)
    for run in finished[:-KEEP_FINISHED]:
        del _runs[run.key]

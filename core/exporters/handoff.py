"""The end-of-run work of live export, done off the engine's thread.

Turning a finished run into rows, spans and queue entries costs tens of microseconds per
node. The engine hands that work over as a job and returns at once; one daemon thread per
process does the jobs in order. The live exporters drain it before they flush, so what a
run handed over is sent by a flush, and at process exit, like the rest, within its wait.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

log = logging.getLogger("core.exporters")

MAX_WAITING = 10_000  # jobs; past that, runs end faster than they can be exported

_jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
_pending = 0  # handed over, not yet done
_idle = threading.Condition()
_worker: threading.Thread | None = None
_dropped_warned = False


def hand_off(job: Callable[[], None]) -> None:
    """Runs `job` on the export thread. Never raises or waits; a job that raises is logged
    by the job's own handling (see `core.engine.live_export`)."""
    global _pending, _worker, _dropped_warned
    with _idle:
        if _pending >= MAX_WAITING:
            if not _dropped_warned:
                _dropped_warned = True
                log.warning(
                    "live export: runs end faster than they can be exported; %d are waiting, "
                    "later ones are not exported live (`configurable-agents export` sends "
                    "them from the tables). Shown once.",
                    _pending,
                )
            return
        _pending += 1
        if _worker is None:
            _worker = threading.Thread(target=_work, name="live-export", daemon=True)
            _worker.start()
    _jobs.put(job)


def drain(timeout: float) -> bool:
    """Waits until every job handed over is done; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with _idle:
        while _pending:
            left = deadline - time.monotonic()
            if left <= 0 or not _idle.wait(left):
                return _pending == 0
    return True


def _work() -> None:
    global _pending
    while True:
        job = _jobs.get()
        try:
            job()
        except Exception:  # jobs handle their own errors; this keeps the thread alive
            log.debug("live export job failed", exc_info=True)
        finally:
            with _idle:
                _pending -= 1
                if not _pending:
                    _idle.notify_all()

"""The Ray executor: rows split into chunks, chunks handed to actors (`ChunkWorker`), each
running many rows at once on the engine's loop. One Ray call per chunk, not per run: Ray's
own overhead is milliseconds a call, the engine's tens of microseconds a node.

`ray.init()` starts a local Ray instance unless an address is given (`--ray-address`, or
`RAY_ADDRESS`), in which case it joins that cluster; workers then need this package
installed where they run (docs/batch.md).

Faults: an actor whose process dies is restarted by Ray (`max_restarts`), and the chunk it
was running is run again on it (`max_task_retries`); its telemetry died with it, so the
chunk is recorded once, under a key that does not change between attempts. An actor past
its restarts hands its chunks to the others; with none left the job stops, and `--resume`
runs the rows no chunk recorded.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.executors.ray_worker import ChunkWorker
from core.exporters.extras import missing_extra

# Restarts of one actor, and chunks in flight per actor: the second keeps an actor busy while
# the driver records the first one's results.
MAX_RESTARTS = 3
IN_FLIGHT = 2
# Longest wait for a chunk before the driver looks up again (Ctrl-C is seen in between).
WAIT_SECONDS = 0.5
# Longest wait for the actors to remove their data folders before they are killed.
CLOSE_SECONDS = 10.0
# Largest chunk: its results and telemetry travel as one object.
MAX_CHUNK_ROWS = 1000

# [(chunk key, what the actor's run_chunk returned)]: the chunks that finished since the last
# call, which the driver records together (one transaction for all: the database's writer is
# what limits a big job, and each transaction has a fixed cost).
ChunkHandler = Callable[[list[tuple[str, Any]]], None]


class WorkersLost(RuntimeError):
    """Every actor died past its restarts: the rows of unfinished chunks were not run."""


@dataclass
class RayStats:
    workers: int
    chunks: int
    reassigned: int  # chunks handed out again after their actor died past its restarts
    start_seconds: float  # connecting to Ray (or starting it) and starting the actors


def import_ray() -> Any:
    """The `ray` module, or MissingExtra naming how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise missing_extra("ray", "--executor ray") from exc
    return ray


def chunk_size(rows: int, workers: int, concurrency: int) -> int:
    """Rows per chunk: enough for every actor to keep `concurrency` runs going, and small
    enough that each actor gets several chunks (a lost chunk costs little)."""
    per_worker = math.ceil(rows / max(workers * IN_FLIGHT * 2, 1))
    return max(1, min(MAX_CHUNK_ROWS, max(concurrency * 2, 1), per_worker))


class RayExecutor:
    """Runs a job's items on Ray actors (ChunkWorker), a chunk at a time; one instance per
    job."""

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        self.ray = import_ray()
        self.address = address
        self.wanted_workers = workers
        self.actors: list[Any] = []
        self.start_seconds = 0.0
        self._started_ray = False

    def start(self) -> None:
        """Connects to Ray (starting a local instance if need be) and starts the actors,
        once; `start_seconds` says how long that took."""
        if self.actors:
            return
        clock = time.monotonic()
        ray = self.ray
        if not ray.is_initialized():
            ray.init(
                address=self.address,
                include_dashboard=False,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
            self._started_ray = True
        count = self.wanted_workers or max(1, int(ray.available_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1, max_restarts=MAX_RESTARTS, max_task_retries=-1)(ChunkWorker)
        self.actors = [actor.remote() for _ in range(count)]
        ray.get([a.pid.remote() for a in self.actors])  # every actor up before the clock stops
        self.start_seconds = time.monotonic() - clock

    def worker_pids(self) -> list[int]:
        return list(self.ray.get([a.pid.remote() for a in self.actors]))

    def run(
        self,
        job_id: str,
        payload: Any,
        items: Sequence[Any],
        on_chunks: ChunkHandler,
        *,
        concurrency: int,
        size: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> RayStats:
        """Runs every item once, in chunks in order (`payload.run_chunk(worker, chunk)` on
        an actor: core.executors.ray_worker); `on_chunks` is called in this thread with the
        chunks finished since its last call. `stop` says when to hand out no more chunks
        (those out are still awaited). Raises WorkersLost when no actor is left;
        KeyboardInterrupt stops the job (the actors are killed by `close`)."""
        self.start()
        size = size or chunk_size(len(items), len(self.actors), concurrency)
        attempt = secrets.token_hex(4)  # this invocation's chunks, whatever their retries
        queue = deque(
            (f"{job_id}/{attempt}/{n}", list(items[i : i + size]))
            for n, i in enumerate(range(0, len(items), size))
        )
        chunks = len(queue)
        job_ref = self.ray.put(payload)
        live = set(range(len(self.actors)))
        load = dict.fromkeys(live, 0)
        pending: dict[Any, tuple[int, str, list[Any]]] = {}
        reassigned = 0
        failures: dict[str, int] = {}
        while queue or pending:
            if stop is not None and stop():
                queue.clear()
            for index in sorted(live, key=load.__getitem__):
                while queue and load[index] < IN_FLIGHT:
                    key, chunk = queue.popleft()
                    ref = self.actors[index].run_chunk.remote(job_ref, chunk)
                    pending[ref] = (index, key, chunk)
                    load[index] += 1
            if not pending:
                break
            ready, rest = self.ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            if ready and rest:  # and every other chunk already back
                ready += self.ray.wait(rest, num_returns=len(rest), timeout=0)[0]
            landed: list[tuple[str, Any]] = []
            for ref in ready:
                index, key, chunk = pending.pop(ref)
                load[index] -= 1
                try:
                    result = self.ray.get(ref)
                except self.ray.exceptions.RayActorError as exc:
                    # Dead past its restarts (Ray re-ran the chunk on each restart), or out of
                    # reach for now: the chunk goes to the front of the queue, a bounded
                    # number of times.
                    if isinstance(exc, self.ray.exceptions.ActorDiedError):
                        live.discard(index)
                    failures[key] = failures.get(key, 0) + 1
                    if failures[key] > MAX_RESTARTS + len(self.actors):
                        live.clear()
                    queue.appendleft((key, chunk))
                    reassigned += 1
                    continue
                landed.append((key, result))
            if landed:
                on_chunks(landed)
            if queue and not live:
                raise WorkersLost(
                    f"the Ray workers died (each restarted up to {MAX_RESTARTS} times); "
                    f"{sum(len(c) for _, c in queue)} items were not run"
                )
        return RayStats(len(self.actors), chunks, reassigned, self.start_seconds)

    def close(self) -> None:
        """Kills this job's actors (their data folders removed first), and the local Ray
        instance if this executor started it."""
        if self.actors:
            closing = [actor.close.remote() for actor in self.actors]
            self.ray.wait(closing, num_returns=len(closing), timeout=CLOSE_SECONDS)
        for actor in self.actors:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # already gone: nothing to stop
                continue
        self.actors = []
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False

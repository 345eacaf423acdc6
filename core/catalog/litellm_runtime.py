"""LiteLLM itself, imported once per process and configured to stay offline.

The import costs seconds (3-7 s on a small VM), so it happens only where a model is called
or a cost is computed, and the engine does it before a run's clock starts (`warm`): no
node's latency may include it.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cache
from types import ModuleType

_lock = threading.Lock()


@cache
def _load() -> ModuleType:
    # Use the price map bundled with the package; never fetch one over the network.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Each blocking run_workflow call has an event loop of its own; LiteLLM's logging worker
    # warns about every new loop, which users would see on every run.
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    litellm.suppress_debug_info = True
    litellm.drop_params = True  # a provider that lacks e.g. `seed` gets the call without it
    return litellm


def litellm() -> ModuleType:
    """The configured module; the first call imports it (one thread at a time)."""
    with _lock:
        return _load()


def warm() -> None:
    """Import now, typically in a worker thread before a run starts."""
    litellm()


def loaded() -> bool:
    return _load.cache_info().currsize > 0

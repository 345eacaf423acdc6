"""Cached LLM responses, shared by every process using the same data folder.

diskcache keeps entries in SQLite with per-entry expiry, which gives TTLs and multi-process
safety without a server. Only successful responses are stored; keys are hashes of what
changes the answer (never of credentials), so the cache folder holds no secrets.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import diskcache

from core.settings import CACHE_DIR


@dataclass(frozen=True)
class CachedReply:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None


class ResponseCache:
    def __init__(self, folder: Path) -> None:
        self._cache = diskcache.Cache(str(folder), eviction_policy="least-recently-stored")

    def get(self, key: str) -> CachedReply | None:
        value = self._cache.get(key)
        return CachedReply(**value) if isinstance(value, dict) else None

    def put(self, key: str, reply: CachedReply, ttl: float | None) -> None:
        self._cache.set(key, reply.__dict__, expire=ttl)


_caches: dict[Path, ResponseCache] = {}
_lock = threading.Lock()


def response_cache(home: Path) -> ResponseCache:
    """One open cache per data folder per process (opening one costs milliseconds)."""
    with _lock:
        if home not in _caches:
            _caches[home] = ResponseCache(home / CACHE_DIR)
        return _caches[home]

"""Namespaced key-value memory that outlives runs (`memory:` in docs/workflow-format.md).

Each namespace is a diskcache store of its own under `<data folder>/memory/<namespace>`:
SQLite underneath makes it safe across threads and processes, entries expire by TTL, and
one folder per namespace means a namespace can neither read nor clear another's keys.
A node reads a snapshot when it starts and writes when it succeeds, so parallel nodes of a
namespace see each other's writes once those nodes have finished.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import diskcache

from core.settings import MEMORY_DIR
from core.workflow.models import NAME_PATTERN


class MemoryStore:
    def __init__(self, home: Path) -> None:
        self.folder = home / MEMORY_DIR
        self._spaces: dict[str, diskcache.Cache] = {}
        self._lock = threading.Lock()

    def _space(self, namespace: str) -> diskcache.Cache:
        with self._lock:
            space = self._spaces.get(namespace)
            if space is None:
                space = self._spaces[namespace] = diskcache.Cache(str(self.folder / namespace))
            return space

    def snapshot(self, namespace: str) -> dict[str, Any]:
        """Every live key of the namespace, read at one moment."""
        space = self._space(namespace)
        values = {}
        for key in list(space.iterkeys()):
            value = space.get(key, default=_MISSING)
            if value is not _MISSING:
                values[key] = value
        return values

    def get(self, namespace: str, key: str) -> Any:
        return self._space(namespace).get(key)

    def set(self, namespace: str, key: str, value: Any, ttl: float | None = None) -> None:
        self._space(namespace).set(key, value, expire=ttl)

    def apply(
        self, namespace: str, before: dict[str, Any], after: dict[str, Any], ttl: float | None
    ) -> None:
        """Write what a code node changed in its `memory` mapping, and delete what it removed."""
        space = self._space(namespace)
        for key, value in after.items():
            if key not in before or before[key] != value:
                space.set(key, value, expire=ttl)
        for key in before.keys() - after.keys():
            space.delete(key)

    def clear(self, namespace: str) -> int:
        return self._space(namespace).clear()

    def namespaces(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(entry.name for entry in self.folder.iterdir() if entry.is_dir())


_MISSING = object()
_stores: dict[Path, MemoryStore] = {}
_lock = threading.Lock()


def memory_store(home: Path) -> MemoryStore:
    with _lock:
        if home not in _stores:
            _stores[home] = MemoryStore(home)
        return _stores[home]


def valid_namespace(name: str) -> bool:
    return re.match(NAME_PATTERN, name) is not None

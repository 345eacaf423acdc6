"""Standard output that outlives its reader: `configurable-agents run … | head -3`.

When the reader goes away, the next write raises BrokenPipeError wherever it happens (in a
print, in rich, at interpreter exit), which would end a successful run with a traceback and
exit 1. Guarded, the rest of the output is discarded quietly and the command still exits
with its own code: a run that succeeded says so to the shell.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, TextIO


class GuardedStream:
    """Wraps a text stream; after its pipe breaks, writes go nowhere instead of failing."""

    def __init__(self, inner: TextIO) -> None:
        self._inner = inner
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._inner.write(text)
            except BrokenPipeError:
                self._discard()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._inner.flush()
            except BrokenPipeError:
                self._discard()

    def _discard(self) -> None:
        """Points the descriptor at /dev/null, so the text still buffered and the flush at
        exit go there too."""
        self.broken = True
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._inner.fileno())
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def guard_stdout() -> None:
    """Installs the guard on the process's real stdout (not on a test's capture)."""
    if sys.stdout is sys.__stdout__ and sys.stdout is not None:
        sys.stdout = GuardedStream(sys.stdout)  # type: ignore[assignment]

"""What an after-the-fact export did: counted from what the destination acknowledged."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExportSummary:
    """Counts of one export. `runs` and `spans` count only what the destination accepted, so
    a summary never claims a run it could not deliver; `failed` runs are those left unsent
    after `error` stopped the export (running it again later sends them, since exports are
    idempotent)."""

    destination: str
    runs: int = 0
    spans: int = 0
    skipped: int = 0  # already at the destination (MLflow), so not sent again
    failed: int = 0
    error: str | None = None
    what: str = "runs"  # what `runs` counts: workflow runs, or experiment variants

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        """One line for a terminal or a log."""
        spans = f" ({self.spans} spans)" if self.what == "runs" else ""
        text = f"{self.runs} {self.what}{spans} exported to {self.destination}"
        if self.skipped:
            text += f", {self.skipped} already there"
        if self.error:
            text += f"; {self.failed} not sent: {self.error}"
        return text

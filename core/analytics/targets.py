"""Target violations: what `check --notify` posts, and what the app's Home and Profile pages
show.

A violation is a metric `check` judged FAIL. The pages show only the limits workflows set
for themselves (`targets:`, the team's promise); the built-in thresholds are a CI gate's
defaults and stay in `check`'s own report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.analytics.check import FAIL, PASS, CheckReport, Metric, check
from core.exporters.webhook import Violation

TARGET_SOURCE = "targets."


def violations(report: CheckReport) -> list[Violation]:
    """Every failed metric of the report, as the webhook message's violations."""
    return [
        Violation(
            workflow=m.workflow,
            metric=m.name,
            value=m.value,
            threshold=m.threshold,
            unit=m.unit,
            detail=m.detail,
            operator=m.operator,
        )
        for m in report.failed
    ]


@dataclass
class TargetStatus:
    """How the recorded runs of a window stand against the workflows' own targets."""

    label: str  # the window, e.g. "Last 7 days"
    runs: int
    judged: list[Metric] = field(default_factory=list)  # limits set by targets, PASS or FAIL

    @property
    def violations(self) -> list[Metric]:
        return [m for m in self.judged if m.status == FAIL]

    @property
    def workflows(self) -> list[str]:
        """Workflows with runs in the window whose targets were judged."""
        return sorted({m.workflow for m in self.judged if m.workflow})


def target_status(
    home: str | Path | None = None,
    *,
    workflow: str | None = None,
    days: int = 7,
    simulated: bool | None = None,
) -> TargetStatus:
    """`check` over the window, keeping the metrics whose limit a workflow's `targets:`
    set (the newest recorded version of each workflow counts, as in `check`)."""
    report = check(home, workflow=workflow, days=days, simulated=simulated)
    judged = [
        m for m in report.metrics if m.source.startswith(TARGET_SOURCE) and m.status in (FAIL, PASS)
    ]
    return TargetStatus(label=report.label, runs=report.runs, judged=judged)

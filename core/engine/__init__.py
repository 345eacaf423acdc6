"""Running a workflow: the scheduler, LLM and code nodes, budgets, inputs, JSON output, the
response cache, memory, and what a run returns.

May import: core.providers, core.sandbox, core.telemetry, core.workflow, core.catalog and
the base modules. Never analytics, the app or the CLI.
"""

from core.engine.results import NodeResult, RunResult
from core.engine.scheduler import arun_workflow, run_workflow

__all__ = ["NodeResult", "RunResult", "arun_workflow", "run_workflow"]

"""configurable-agents: load, validate and run LLM workflows (docs/python.md).

Names are imported on first use so that `import core` stays cheap for commands such as
`validate` that never run a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.engine import NodeResult as NodeResult
    from core.engine import RunResult as RunResult
    from core.engine import arun_workflow as arun_workflow
    from core.engine import run_workflow as run_workflow
    from core.errors import InputError as InputError
    from core.errors import ProviderConfigError as ProviderConfigError
    from core.errors import WorkflowError as WorkflowError
    from core.workflow import Workflow as Workflow
    from core.workflow import load_workflow as load_workflow

_EXPORTS = {
    "load_workflow": "core.workflow",
    "Workflow": "core.workflow",
    "run_workflow": "core.engine",
    "arun_workflow": "core.engine",
    "WorkflowError": "core.errors",
    "InputError": "core.errors",
    "ProviderConfigError": "core.errors",
    "RunResult": "core.engine",
    "NodeResult": "core.engine",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_EXPORTS[name]), name)

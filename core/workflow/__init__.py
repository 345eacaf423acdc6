"""The workflow file format: pydantic models, the YAML source map behind located errors,
validation, the DAG, prompt templates, the JSON Schema export and the loaded `Workflow`.

May import: core.catalog (provider and model names) and the base modules (core.errors,
core.settings, core.formatting). Never the engine, telemetry or anything above them.
"""

from core.workflow.loader import (
    ResolvedLLM,
    Workflow,
    load_workflow,
    parse_workflow,
    with_models,
    workflow_problems,
)

__all__ = [
    "ResolvedLLM",
    "Workflow",
    "load_workflow",
    "parse_workflow",
    "with_models",
    "workflow_problems",
]

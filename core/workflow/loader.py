"""A loaded, validated workflow: the spec plus what the engine derives from it once."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from core.catalog.model_names import SIMULATED
from core.errors import Problem, WorkflowError
from core.input_files import MAX_WORKFLOW_BYTES, UnreadableFile, read_text, size_text
from core.workflow.graph import Graph
from core.workflow.models import CodeNode, LLMNode, LLMSettings, SimulateSettings, WorkflowSpec
from core.workflow.templates import Template, compile_template
from core.workflow.validation import (
    budget_problems,
    schema_problems,
    semantic_problems,
    suggestion_budget,
)
from core.workflow.yaml_source import SourceMap, YamlSyntaxError, parse

DEFAULT_PROVIDER = "openai"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_MAX_OUTPUT_TOKENS = 1024


@dataclass(frozen=True)
class ResolvedLLM:
    """A node's effective model settings: node values over workflow defaults over built-ins."""

    provider: str
    model: str
    temperature: float | None
    top_p: float | None
    max_output_tokens: int
    api_base: str | None
    api_key_env: str | None
    seed: int | None
    simulate: SimulateSettings


@dataclass(frozen=True)
class Workflow:
    spec: WorkflowSpec
    source: str
    filename: str
    graph: Graph
    # File line (1-based) of each code node's first line of code: a user's exception is
    # reported at both its line in the block and its line in the file.
    code_starts: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.workflow.name

    @cached_property
    def hash(self) -> str:
        """Content hash of the file, identifying this version of the workflow in telemetry."""
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    @cached_property
    def nodes(self) -> dict[str, LLMNode | CodeNode]:
        return {node.name: node for node in self.spec.nodes}

    @cached_property
    def outputs(self) -> tuple[str, ...]:
        return tuple(self.spec.outputs) if self.spec.outputs else self.graph.sinks

    @cached_property
    def templates(self) -> dict[str, tuple[Template, Template | None]]:
        """Compiled (prompt, system) templates of every LLM node."""
        return {
            node.name: (
                compile_template(node.prompt),
                compile_template(node.system) if node.system else None,
            )
            for node in self.spec.nodes
            if isinstance(node, LLMNode)
        }

    def llm_for(self, node: LLMNode) -> ResolvedLLM:
        return self._resolved_llm[node.name]

    @cached_property
    def _resolved_llm(self) -> dict[str, ResolvedLLM]:
        defaults = self.spec.workflow.llm
        resolved = {}
        for node in self.spec.nodes:
            if not isinstance(node, LLMNode):
                continue
            own = node.llm or LLMSettings()
            merged = {
                key: getattr(own, key) if getattr(own, key) is not None else getattr(defaults, key)
                for key in LLMSettings.model_fields
            }
            resolved[node.name] = ResolvedLLM(
                provider=merged["provider"] or DEFAULT_PROVIDER,
                model=merged["model"] or DEFAULT_MODEL,
                temperature=merged["temperature"],
                top_p=merged["top_p"],
                max_output_tokens=merged["max_output_tokens"] or DEFAULT_MAX_OUTPUT_TOKENS,
                api_base=merged["api_base"],
                api_key_env=merged["api_key_env"],
                seed=merged["seed"],
                simulate=merged["simulate"] or SimulateSettings(),
            )
        return resolved

    def timeout_for(self, node: LLMNode | CodeNode) -> float:
        return node.timeout or self.spec.workflow.timeout

    def retries_for(self, node: LLMNode | CodeNode) -> int:
        return node.retries if node.retries is not None else self.spec.workflow.retries

    @cached_property
    def key_variables(self) -> tuple[str, ...]:
        """The variables the workflow's `api_key_env` settings name."""
        return tuple(
            sorted({llm.api_key_env for llm in self._resolved_llm.values() if llm.api_key_env})
        )

    @cached_property
    def only_simulated(self) -> bool:
        """Every LLM node names the simulated provider (checked on every run)."""
        return all(llm.provider == SIMULATED for llm in self._resolved_llm.values())


def _looks_like_path(source: str) -> bool:
    return "\n" not in source and (source.endswith((".yaml", ".yml")) or os.path.exists(source))


def load_workflow(source: str | os.PathLike[str], *, filename: str | None = None) -> Workflow:
    """Load a workflow from a file path or from YAML text.

    Raises WorkflowError listing every problem with its line and column.
    """
    if isinstance(source, os.PathLike) or _looks_like_path(str(source)):
        filename = filename or str(source)
        try:
            text = read_text(Path(source), MAX_WORKFLOW_BYTES, "workflow")
        except UnreadableFile as exc:
            raise WorkflowError([Problem(exc.line, exc.column, exc.message)], filename) from None
    else:
        text = str(source)
        filename = filename or "<workflow>"
    return parse_workflow(text, filename)


def parse_workflow(text: str, filename: str = "<workflow>") -> Workflow:
    if len(text) > MAX_WORKFLOW_BYTES // 4 and len(text.encode()) > MAX_WORKFLOW_BYTES:
        raise WorkflowError(
            [Problem(1, 1, f"a workflow may hold at most {size_text(MAX_WORKFLOW_BYTES)}")],
            filename,
        )
    try:
        data, source_map, problems = parse(text)
    except YamlSyntaxError as exc:
        raise WorkflowError(exc.problems, filename) from None
    if not isinstance(data, dict):
        raise WorkflowError(
            [Problem(1, 1, "expected a mapping with 'workflow:' and 'nodes:' at the top level")],
            filename,
        )
    with suggestion_budget():
        problems += schema_problems(data, source_map)
        problems += semantic_problems(data, source_map)
    if problems:
        raise WorkflowError(sorted(set(problems)), filename)
    spec = WorkflowSpec.model_validate(data)
    edges = [(edge.from_, edge.to) for edge in spec.edges] if spec.edges is not None else None
    graph = Graph.build([node.name for node in spec.nodes], edges)
    code_starts = {
        node.name: _block_start(text, source_map, ("nodes", index, "code"))
        for index, node in enumerate(spec.nodes)
        if isinstance(node, CodeNode)
    }
    workflow = Workflow(
        spec=spec, source=text, filename=filename, graph=graph, code_starts=code_starts
    )
    models = {
        node.name: (llm.provider, llm.model)
        for node in spec.nodes
        if isinstance(node, LLMNode)
        for llm in [workflow.llm_for(node)]
    }
    problems = budget_problems(spec, models, source_map)
    if problems:
        raise WorkflowError(problems, filename)
    return workflow


def _block_start(text: str, source_map: SourceMap, path: tuple[str | int, ...]) -> int:
    """A block scalar (`code: |`) starts on the line after its indicator."""
    span = source_map.values.get(path)
    if span is None:
        return 1
    return span.line + (2 if text[span.start : span.start + 1] in "|>" else 1)


def workflow_problems(text: str) -> list[Problem]:
    """Problems of YAML text without raising: what the editor shows as you type."""
    try:
        parse_workflow(text)
    except WorkflowError as exc:
        return exc.problems
    return []


def with_models(workflow: Workflow, models: dict[str, tuple[str, str]]) -> Workflow:
    """The workflow with some nodes moved to another (provider, model): for what-if estimates.

    The source text is left as it was (the result is not meant to be saved or run under the
    original's hash); only the spec, and what derives from it, changes.
    """
    nodes = []
    for node in workflow.spec.nodes:
        if isinstance(node, LLMNode) and node.name in models:
            provider, model = models[node.name]
            own = node.llm or LLMSettings()
            node = node.model_copy(
                update={"llm": own.model_copy(update={"provider": provider, "model": model})}
            )
        nodes.append(node)
    spec = workflow.spec.model_copy(update={"nodes": nodes})
    return Workflow(
        spec=spec, source=workflow.source, filename=workflow.filename, graph=workflow.graph
    )

"""What the Editor's graph says of each node: what runs, on which model, and what feeds what.

The picture answers the questions an author has while editing: which branches run in
parallel (edges come from the resolved graph, so a file without `edges:` shows its implicit
chain), which model each call uses after workflow defaults apply, and which nodes are cached,
keep memory, return JSON or are the workflow's outputs.
"""

from __future__ import annotations

from typing import Any

from core.app.graph_chart import NodeMark
from core.workflow import Workflow
from core.workflow.models import CodeNode, LLMNode

JSON_FIELDS_SHOWN = 3


def workflow_marks(workflow: Workflow) -> dict[str, NodeMark]:
    """Each node coloured by its kind, with what it runs on, its badges and whether it is an
    output, for the graph chart."""
    outputs = set(workflow.outputs)
    marks = {}
    for name in workflow.graph.order:
        node = workflow.nodes[name]
        parts = [_kind(workflow, node), *_badges(node)]
        if name in outputs:
            parts.append("output")
        kind = "code" if isinstance(node, CodeNode) else "llm"
        marks[name] = NodeMark(name, kind, " · ".join(parts))
    return marks


def node_config(node: LLMNode | CodeNode) -> dict[str, Any]:
    """The node as the file sets it (defaults left out), shown when it is clicked."""
    return node.model_dump(mode="json", by_alias=True, exclude_defaults=True)


def _kind(workflow: Workflow, node: LLMNode | CodeNode) -> str:
    """The node type and what it runs on: the resolved model, or the sandbox it gets."""
    if isinstance(node, CodeNode):
        sandbox = node.sandbox
        backend = "" if sandbox.backend == "process" else f", {sandbox.backend}"
        return f"code · sandbox {sandbox.resource_preset}{backend}"
    llm = workflow.llm_for(node)
    return f"llm · {llm.model} ({llm.provider})"


def _badges(node: LLMNode | CodeNode) -> list[str]:
    badges = []
    if isinstance(node, LLMNode) and node.cache is not None and node.cache.enabled:
        badges.append("⚡ cache")
    if node.memory is not None and node.memory.enabled:
        badges.append("🧠 memory")
    if isinstance(node, LLMNode) and node.output == "json":
        badges.append(_json_badge(node))
    return badges


def _json_badge(node: LLMNode) -> str:
    fields = list(node.schema_ or {})
    if not fields:
        return "{} json"
    shown = ", ".join(fields[:JSON_FIELDS_SHOWN])
    more = ", …" if len(fields) > JSON_FIELDS_SHOWN else ""
    return f"{{}} json: {shown}{more}"


def workflow_summary(workflow: Workflow) -> str:
    """One line under the graph: size, node kinds and the distinct models it calls."""
    llm_nodes = [node for node in workflow.nodes.values() if isinstance(node, LLMNode)]
    models = dict.fromkeys(workflow.llm_for(node).model for node in llm_nodes)
    parts = [
        f"{len(workflow.nodes)} node{'s' * (len(workflow.nodes) != 1)}",
        f"{len(llm_nodes)} LLM",
        f"{len(workflow.nodes) - len(llm_nodes)} code",
        "outputs: " + ", ".join(workflow.outputs),
    ]
    if models:
        parts.append("models: " + ", ".join(models))
    return " · ".join(parts)

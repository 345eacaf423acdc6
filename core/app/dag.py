"""A workflow drawn as a Graphviz DAG: what runs, on which model, and what feeds what.

The picture answers the questions an author has while editing: which branches run in
parallel (edges come from the resolved graph, so a file without `edges:` shows its implicit
chain), which model each call uses after workflow defaults apply, and which nodes are cached,
keep memory, return JSON or are the workflow's outputs.
"""

from __future__ import annotations

from html import escape

from core.workflow import Workflow
from core.workflow.models import CodeNode, LLMNode

LLM_FILL = "#EEF4FF"
CODE_FILL = "#FFF4E0"
OUTPUT_BORDER = "#1A7F37"
BORDER = "#8C959F"
MUTED = "#57606A"
JSON_FIELDS_SHOWN = 3

LEGEND = (
    "Green border: workflow output · ⚡ response cache · 🧠 memory · {} JSON output "
    "(with its fields)"
)


def workflow_dot(workflow: Workflow) -> str:
    """Graphviz source for `st.graphviz_chart`: top to bottom, one box per node."""
    outputs = set(workflow.outputs)
    lines = [
        "digraph workflow {",
        '  graph [rankdir=TB, bgcolor="transparent", nodesep=0.35, ranksep=0.45];',
        f'  node [shape=box, style="rounded,filled", fontname="Helvetica", color="{BORDER}", '
        "margin=0.12];",
        f'  edge [color="{BORDER}", arrowsize=0.7];',
    ]
    for name in workflow.graph.order:
        lines.append(f"  {_node_statement(workflow, workflow.nodes[name], name in outputs)}")
    for name in workflow.graph.order:
        lines.extend(f'  "{parent}" -> "{name}";' for parent in workflow.graph.parents[name])
    lines.append("}")
    return "\n".join(lines)


def _node_statement(workflow: Workflow, node: LLMNode | CodeNode, is_output: bool) -> str:
    name = f'<font point-size="14"><b>{escape(node.name)}</b></font>'
    rows = [name, _small(_kind(workflow, node))]
    badges = _badges(node)
    if badges:
        rows.append(_small(" · ".join(badges)))
    if is_output:
        rows.append(f'<font point-size="11" color="{OUTPUT_BORDER}"><b>output</b></font>')
    label = "".join(f"<tr><td>{row}</td></tr>" for row in rows)
    fill = CODE_FILL if isinstance(node, CodeNode) else LLM_FILL
    border = f', color="{OUTPUT_BORDER}", penwidth=2.5' if is_output else ""
    return (
        f'"{node.name}" [label=<<table border="0" cellspacing="1">{label}</table>>, '
        f'fillcolor="{fill}"{border}];'
    )


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


def _small(text: str) -> str:
    return f'<font point-size="11" color="{MUTED}">{escape(text)}</font>'


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

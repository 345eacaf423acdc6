"""One recorded run as trace spans, in the OpenTelemetry GenAI semantic conventions.

Pure functions over telemetry rows (dicts keyed by the `runs` / `node_runs` column names),
with no SDK import, so they are cheap to test and shared by the OTLP and MLflow exporters.

Conventions followed: the GenAI semantic conventions of OpenTelemetry semantic-conventions
v1.41.0 (status: Development), the last release before they moved to their own repository;
it defines `gen_ai.provider.name` (since v1.37.0) and the `invoke_workflow`, `chat` and
`execute_tool` operations, and the `opentelemetry-semantic-conventions` package the `otel`
extra installs ships the same names. The standalone GenAI conventions v0.1.0 fold the
workflow span into the internal `invoke_agent` span, keeping `gen_ai.operation.name =
invoke_workflow` but naming it with `gen_ai.agent.name`; the run span carries both name
attributes so backends reading either version find the workflow.

- A run is one trace: an INTERNAL span `invoke_workflow {workflow}`.
- An LLM node is a CLIENT span `chat {model}`; a code node an INTERNAL span
  `execute_tool {node}`. Each is a child of the run span and carries span links to the
  spans of its DAG parents that ran, so the execution graph survives in any backend.
- Our own figures go under `configurable_agents.*`. A cost the price map could not give
  (NULL in the tables) is left out, never sent as 0.
- Ids derive from the run id and the node name, so exporting a run twice yields the same
  trace and span ids, and backends that upsert by id keep one copy.
- Prompts and responses (the semconv's opt-in content attributes) are added only when a
  `RunContent` is given, which the engine does for workflows with `telemetry:
  {export_content: true}`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

SEMCONV_VERSION = "1.41.0"
PREFIX = "configurable_agents."
INTERNAL, CLIENT = "INTERNAL", "CLIENT"

# Our provider names (LiteLLM's) to the semconv's well-known `gen_ai.provider.name` values;
# a provider with no well-known value keeps its own name, as the semconv allows.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "gcp.gemini",
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral_ai",
    "perplexity": "perplexity",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
    "moonshot": "moonshot_ai",
}

AttributeValue = str | bool | int | float
# Longest text of one message part or value exported as content; backends cap request
# sizes (often 4 MB), and a trace is for finding a problem, not for archiving outputs.
MAX_CONTENT_CHARS = 16_384


@dataclass(frozen=True)
class RunContent:
    """What a run read and wrote, for workflows that opt in to exporting it: the run's inputs
    and outputs, the chat messages each LLM node sent, and each node's output."""

    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    messages: Mapping[str, Sequence[Mapping[str, str]]]
    results: Mapping[str, Any]


@dataclass(frozen=True)
class SpanData:
    """A finished span, independent of any SDK. `links` are span ids in the same trace;
    `error` is the status message of a failed span (None: it did not fail)."""

    name: str
    kind: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    links: tuple[int, ...] = ()
    error: str | None = None
    node_type: str | None = None  # None for the run span, else 'llm' or 'code'
    inputs: Any = None  # with exported content: what went in and came out, for MLflow
    outputs: Any = None


def trace_id_for(run_id: str) -> int:
    """The run's trace id. Run ids are 128-bit hex already, so they are the trace id itself
    and a run can be found in a backend by pasting its id; anything else is hashed."""
    try:
        value = int(run_id, 16) if len(run_id) == 32 else 0
    except ValueError:
        value = 0
    return value or _hash_id(f"trace/{run_id}", 16)


def span_id_for(run_id: str, node: str | None) -> int:
    """The span id of a node of a run (None: the run span), stable across exports."""
    return _hash_id(f"span/{run_id}/{node or ''}", 8)


def _hash_id(text: str, size: int) -> int:
    # Zero is the invalid id in OTel; a digest of zero is not worth more than this.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:size], "big") or 1


def provider_name(provider: str | None) -> str:
    """`gen_ai.provider.name` for one of our providers ('simulated' stays 'simulated')."""
    if not provider:
        return "unknown"
    return PROVIDER_NAMES.get(provider, provider)


def epoch_ns(value: datetime | str) -> int:
    """Nanoseconds since the epoch; naive values are UTC, as the tables store them."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def run_tags(run: Mapping[str, Any]) -> dict[str, str]:
    """The run's tags: JSON text in the table, a dict in the engine's row."""
    tags = run.get("tags")
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except ValueError:
            return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def run_spans(
    run: Mapping[str, Any],
    nodes: Sequence[Mapping[str, Any]],
    parents: Mapping[str, Sequence[str]] | None = None,
    content: RunContent | None = None,
) -> list[SpanData]:
    """The run span followed by one span per node row; with `content`, each carries the
    prompts and responses too."""
    run_id = run["run_id"]
    trace_id = trace_id_for(run_id)
    root_id = span_id_for(run_id, None)
    start = epoch_ns(run["started_at"])
    end = max(epoch_ns(run.get("finished_at") or run["started_at"]), start)
    ids = {row["node"]: span_id_for(run_id, row["node"]) for row in nodes}
    spans = [_run_span(run, trace_id, root_id, start, end)]
    for row in nodes:
        node = row["node"]
        links = tuple(ids[p] for p in (parents or {}).get(node, ()) if p in ids)
        spans.append(_node_span(run, row, trace_id, root_id, ids[node], links, start, end))
    if content is not None:
        spans = [_with_content(span, content) for span in spans]
    return spans


def _with_content(span: SpanData, content: RunContent) -> SpanData:
    """The span plus the semconv's opt-in content attributes (JSON text, as the semconv
    asks of backends without structured attributes) and MLflow's inputs and outputs."""
    attributes = dict(span.attributes)
    node = attributes.get(PREFIX + "node")
    if span.node_type is None:
        inputs, outputs = dict(content.inputs), dict(content.outputs)
        attributes[PREFIX + "inputs"] = _json(inputs)
        attributes[PREFIX + "outputs"] = _json(outputs)
    elif span.node_type == "code":
        inputs, outputs = None, content.results.get(str(node))
        if node in content.results:
            attributes["gen_ai.tool.call.result"] = _json(outputs)
    else:
        messages = content.messages.get(str(node), ())
        system = [_part(m.get("content")) for m in messages if m.get("role") == "system"]
        chat = [
            {"role": m.get("role"), "parts": [_part(m.get("content"))]}
            for m in messages
            if m.get("role") != "system"
        ]
        inputs, outputs = {"messages": list(messages)}, content.results.get(str(node))
        # Parts are clipped one by one, so these stay valid JSON of bounded size.
        if system:
            attributes["gen_ai.system_instructions"] = json.dumps(system, ensure_ascii=False)
        if chat:
            attributes["gen_ai.input.messages"] = json.dumps(chat, ensure_ascii=False)
        if node in content.results:
            reply = {"role": "assistant", "parts": [_part(outputs)], "finish_reason": "stop"}
            attributes["gen_ai.output.messages"] = json.dumps([reply], ensure_ascii=False)
    return replace(span, attributes=attributes, inputs=inputs, outputs=outputs)


def _part(value: Any) -> dict[str, str]:
    """One text part of a message; a JSON output is its JSON text."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return {"type": "text", "content": _clip(text)}


def _json(value: Any) -> str:
    """`value` as JSON; one too long to export becomes a JSON string of its beginning."""
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_CONTENT_CHARS else json.dumps(_clip(text), ensure_ascii=False)


def _clip(text: str) -> str:
    if len(text) <= MAX_CONTENT_CHARS:
        return text
    return f"{text[:MAX_CONTENT_CHARS]}…[{len(text) - MAX_CONTENT_CHARS} more characters]"


def _run_span(
    run: Mapping[str, Any], trace_id: int, span_id: int, start: int, end: int
) -> SpanData:
    workflow = run.get("workflow") or "workflow"
    status = run.get("status") or "unknown"
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_workflow",
        "gen_ai.workflow.name": workflow,
        "gen_ai.agent.name": workflow,
        **_common(run, status, run.get("simulated")),
    }
    _put(attributes, PREFIX + "experiment", run.get("experiment"))
    _put(attributes, PREFIX + "variant", run.get("variant"))
    for key in ("input_tokens", "output_tokens", "cost_usd", "unpriced_calls", "cache_hits"):
        _put(attributes, PREFIX + key, run.get(key))
    _put(attributes, PREFIX + "saved_cost_usd", run.get("saved_cost_usd"))
    for key, value in run_tags(run).items():
        attributes[f"{PREFIX}tag.{key}"] = value
    error = None
    if status != "success":
        attributes["error.type"] = status
        error = run.get("error") or status
    return SpanData(
        name=f"invoke_workflow {workflow}",
        kind=INTERNAL,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=None,
        start_ns=start,
        end_ns=end,
        attributes=attributes,
        error=error,
    )


def _node_span(
    run: Mapping[str, Any],
    row: Mapping[str, Any],
    trace_id: int,
    root_id: int,
    span_id: int,
    links: tuple[int, ...],
    run_start: int,
    run_end: int,
) -> SpanData:
    node = row["node"]
    status = row.get("status") or "unknown"
    start = epoch_ns(row["started_at"]) if row.get("started_at") else run_start
    end = max(epoch_ns(row["finished_at"]) if row.get("finished_at") else run_end, start)
    attributes = _common(run, status, row.get("simulated", run.get("simulated")))
    attributes[PREFIX + "node"] = node
    if row.get("node_type") == "code":
        name, kind = f"execute_tool {node}", INTERNAL
        attributes["gen_ai.operation.name"] = "execute_tool"
        attributes["gen_ai.tool.name"] = node
        attributes["gen_ai.tool.type"] = "function"  # runs client-side, in our sandbox
        _put(attributes, PREFIX + "sandbox", row.get("provider"))
        for key in ("exit_reason", "cpu_seconds", "peak_memory_mb"):
            _put(attributes, PREFIX + key, row.get(key))
    else:
        model = row.get("model") or "unknown"
        name, kind = f"chat {model}", CLIENT
        attributes["gen_ai.operation.name"] = "chat"
        attributes["gen_ai.provider.name"] = provider_name(row.get("provider"))
        attributes["gen_ai.request.model"] = model
        attributes["gen_ai.response.model"] = model
        _put(attributes, "gen_ai.usage.input_tokens", row.get("input_tokens"))
        _put(attributes, "gen_ai.usage.output_tokens", row.get("output_tokens"))
        for key in ("cache_hit", "saved_cost_usd"):
            _put(attributes, PREFIX + key, row.get(key))
    for key in ("cost_usd", "attempts", "queue_ms"):
        _put(attributes, PREFIX + key, row.get(key))
    error = None
    if status != "success":
        reason = row.get("exit_reason")
        attributes["error.type"] = reason if reason and reason != "ok" else status
        error = row.get("error") or status
    return SpanData(
        name=name,
        kind=kind,
        trace_id=trace_id,
        span_id=span_id,
        parent_id=root_id,
        start_ns=start,
        end_ns=end,
        attributes=attributes,
        links=links,
        error=error,
        node_type=row.get("node_type") or "llm",
    )


def _common(run: Mapping[str, Any], status: str, simulated: Any) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {
        PREFIX + "run_id": run["run_id"],
        PREFIX + "status": status,
        PREFIX + "simulated": bool(simulated),
    }
    _put(attributes, PREFIX + "workflow_hash", run.get("workflow_hash"))
    return attributes


def _put(attributes: dict[str, AttributeValue], key: str, value: Any) -> None:
    """Sets `key` unless the value is unknown: NULL stays absent, never a made-up 0."""
    if value is not None and value == value:  # NaN from a DataFrame is unknown too
        attributes[key] = value

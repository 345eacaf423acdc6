"""Spans built from telemetry rows: names, kinds, ids, links, times and attributes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from core.exporters.spans import (
    CLIENT,
    INTERNAL,
    MAX_CONTENT_CHARS,
    RunContent,
    epoch_ns,
    provider_name,
    run_spans,
    span_id_for,
    trace_id_for,
)

RUN_ID = "0123456789abcdef0123456789abcdef"
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456)  # naive UTC, as DuckDB returns it


def _ms(ms: int) -> timedelta:
    return timedelta(milliseconds=ms)


RUN = {
    "run_id": RUN_ID,
    "workflow": "wf",
    "workflow_hash": "abc123",
    "started_at": T0,
    "finished_at": T0 + _ms(900),
    "status": "success",
    "input_tokens": 30,
    "output_tokens": 40,
    "cost_usd": None,
    "simulated": True,
    "tags": '{"team": "a", "env": "ci"}',
    "unpriced_calls": 1,
    "cache_hits": 0,
}


def _node(name: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "run_id": RUN_ID,
        "node": name,
        "node_type": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "started_at": T0 + _ms(100),
        "finished_at": T0 + _ms(300),
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_usd": 0.0001,
        "cache_hit": False,
        "saved_cost_usd": None,
        "attempts": 1,
        "status": "success",
        "error": None,
        "simulated": True,
    }
    row.update(extra)
    return row


def test_run_span_and_chat_span_follow_the_genai_conventions() -> None:
    root, chat = run_spans(RUN, [_node("plan", provider="google", model="gemini-2.5-flash")])

    assert (root.name, root.kind, root.parent_id) == ("invoke_workflow wf", INTERNAL, None)
    assert root.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert root.attributes["gen_ai.workflow.name"] == "wf"
    assert root.attributes["gen_ai.agent.name"] == "wf"
    assert root.attributes["configurable_agents.tag.team"] == "a"
    assert root.attributes["configurable_agents.tag.env"] == "ci"
    assert root.attributes["configurable_agents.unpriced_calls"] == 1
    assert "configurable_agents.cost_usd" not in root.attributes  # NULL: unknown, not 0
    assert root.error is None

    assert (chat.name, chat.kind, chat.parent_id) == ("chat gemini-2.5-flash", CLIENT, root.span_id)
    assert chat.trace_id == root.trace_id
    assert {k: v for k, v in chat.attributes.items() if k.startswith("gen_ai.")} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "gemini-2.5-flash",
        "gen_ai.response.model": "gemini-2.5-flash",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 20,
    }
    assert chat.attributes["configurable_agents.cost_usd"] == 0.0001
    assert chat.attributes["configurable_agents.cache_hit"] is False
    assert chat.attributes["configurable_agents.attempts"] == 1
    assert chat.attributes["configurable_agents.run_id"] == RUN_ID
    assert chat.attributes["configurable_agents.workflow_hash"] == "abc123"
    assert chat.attributes["configurable_agents.status"] == "success"
    assert chat.attributes["configurable_agents.simulated"] is True
    assert "configurable_agents.saved_cost_usd" not in chat.attributes


def test_code_node_is_an_execute_tool_span() -> None:
    row = _node("count", node_type="code", provider="process", model=None, cost_usd=0.0)
    row.update(exit_reason="ok", cpu_seconds=0.02, peak_memory_mb=10.5)
    _, tool = run_spans(RUN, [row])

    assert (tool.name, tool.kind) == ("execute_tool count", INTERNAL)
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "count"
    assert tool.attributes["configurable_agents.sandbox"] == "process"
    assert tool.attributes["configurable_agents.peak_memory_mb"] == 10.5
    assert "gen_ai.provider.name" not in tool.attributes
    assert "gen_ai.request.model" not in tool.attributes


def test_unpriced_call_has_no_cost_attribute() -> None:
    _, chat = run_spans(RUN, [_node("guess", model="my-unknown-model", cost_usd=None)])

    assert "configurable_agents.cost_usd" not in chat.attributes
    assert chat.attributes["gen_ai.usage.input_tokens"] == 10


def test_failures_set_error_type_and_status_message() -> None:
    failed_run = {**RUN, "status": "failed", "error": "node 'a' failed: boom"}
    timeout = _node("a", status="timeout", error="timed out after 5s")
    killed = _node("b", node_type="code", status="failed", exit_reason="memory", error="OOM")
    root, llm, code = run_spans(failed_run, [timeout, killed])

    assert (root.attributes["error.type"], root.error) == ("failed", "node 'a' failed: boom")
    assert (llm.attributes["error.type"], llm.error) == ("timeout", "timed out after 5s")
    assert (code.attributes["error.type"], code.error) == ("memory", "OOM")


def test_links_point_at_the_spans_of_dag_parents_that_ran() -> None:
    nodes = [_node("plan"), _node("a"), _node("b"), _node("merge")]
    parents = {"plan": (), "a": ("plan",), "b": ("plan",), "merge": ("a", "b", "never_ran")}
    built = run_spans(RUN, nodes, parents)
    spans = {s.attributes.get("configurable_agents.node"): s for s in built}

    assert spans["plan"].links == ()
    assert spans["a"].links == (spans["plan"].span_id,)
    assert spans["merge"].links == (spans["a"].span_id, spans["b"].span_id)


def test_ids_are_derived_from_the_run_and_node() -> None:
    first = run_spans(RUN, [_node("plan")])
    second = run_spans(dict(RUN), [_node("plan")])

    assert [(s.trace_id, s.span_id) for s in first] == [(s.trace_id, s.span_id) for s in second]
    assert first[0].trace_id == int(RUN_ID, 16)  # a 128-bit hex run id is the trace id
    assert trace_id_for("demo-run-7") == trace_id_for("demo-run-7") != 0
    assert span_id_for(RUN_ID, "plan") != span_id_for(RUN_ID, None)
    assert span_id_for(RUN_ID, "plan") != span_id_for("f" * 32, "plan")
    assert 0 < span_id_for(RUN_ID, "plan") < 2**64


def test_times_are_the_recorded_ones_whether_naive_or_aware() -> None:
    aware = {**RUN, "started_at": T0.replace(tzinfo=UTC), "tags": {"team": "a"}}
    root, chat = run_spans(aware, [_node("plan")])

    assert root.start_ns == 1772366400123456000  # 2026-03-01T12:00:00.123456Z
    assert root.end_ns == root.start_ns + 900_000_000
    assert chat.start_ns == epoch_ns(T0 + _ms(100)) == root.start_ns + 100_000_000
    assert chat.end_ns == root.start_ns + 300_000_000
    assert root.attributes["configurable_agents.tag.team"] == "a"


def test_provider_names_map_to_well_known_values() -> None:
    assert provider_name("google") == "gcp.gemini"
    assert provider_name("anthropic") == "anthropic"
    assert provider_name("azure") == "azure.ai.openai"
    assert provider_name("simulated") == "simulated"
    assert provider_name("ollama") == "ollama"


CONTENT = RunContent(
    inputs={"topic": "tides"},
    outputs={"merge": "all done"},
    messages={
        "plan": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Plan tides"},
        ],
        "merge": [{"role": "user", "content": "x" * (MAX_CONTENT_CHARS + 10)}],
    },
    results={"plan": "1. waves", "count": {"n": 3}, "merge": "all done"},
)
CONTENT_KEYS = {
    "gen_ai.system_instructions",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.result",
    "configurable_agents.inputs",
    "configurable_agents.outputs",
}


def _content_spans(content: RunContent | None) -> dict[str, object]:
    nodes = [_node("plan"), _node("count", node_type="code", model=None), _node("merge")]
    built = run_spans(RUN, nodes, None, content)
    return {s.attributes.get("configurable_agents.node", "run"): s for s in built}


def test_without_content_no_prompt_or_response_is_exported() -> None:
    for span in _content_spans(None).values():
        assert not CONTENT_KEYS & span.attributes.keys()
        assert (span.inputs, span.outputs) == (None, None)


def test_content_follows_the_semconv_message_format() -> None:
    spans = _content_spans(CONTENT)
    plan, count, merge, run = spans["plan"], spans["count"], spans["merge"], spans["run"]

    assert json.loads(plan.attributes["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "Be brief."}
    ]
    assert json.loads(plan.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Plan tides"}]}
    ]
    assert json.loads(plan.attributes["gen_ai.output.messages"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "1. waves"}],
            "finish_reason": "stop",
        }
    ]
    assert plan.inputs == {"messages": list(CONTENT.messages["plan"])}
    assert plan.outputs == "1. waves"
    assert json.loads(count.attributes["gen_ai.tool.call.result"]) == {"n": 3}
    assert count.outputs == {"n": 3}
    assert json.loads(run.attributes["configurable_agents.inputs"]) == {"topic": "tides"}
    assert json.loads(run.attributes["configurable_agents.outputs"]) == {"merge": "all done"}
    assert "gen_ai.system_instructions" not in merge.attributes  # it had no system prompt


def test_long_content_is_clipped_and_stays_valid_json() -> None:
    merge = _content_spans(CONTENT)["merge"]

    (message,) = json.loads(merge.attributes["gen_ai.input.messages"])
    text = message["parts"][0]["content"]
    assert text == "x" * MAX_CONTENT_CHARS + "…[10 more characters]"
    big = RunContent({"blob": "y" * MAX_CONTENT_CHARS}, {}, {}, {})
    root = run_spans(RUN, [], None, big)[0]
    clipped = json.loads(root.attributes["configurable_agents.inputs"])  # a JSON string now
    assert clipped.startswith('{"blob": "yyy') and clipped.endswith("more characters]")

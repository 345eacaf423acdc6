"""The scheduler, budgets, cache, inputs and simulated provider, on real telemetry files."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path

import pytest

from core import InputError, arun_workflow, load_workflow, run_workflow
from core.catalog.prices import PriceBook
from core.engine.response_cache import response_cache
from core.telemetry import get_store

FAST = "{provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0, output_tokens: 20}}"


def workflow(text: str):
    return load_workflow(textwrap.dedent(text).lstrip("\n"))


def fan_out(latency_ms: int = 200, concurrency: int = 16):
    return workflow(
        f"""
        workflow:
          name: fan
          max_concurrency: {concurrency}
          llm: {{provider: simulated, model: gpt-4o-mini,
                simulate: {{latency_ms: {latency_ms}, output_tokens: 10}}}}
        nodes:
          - {{name: root, prompt: start}}
          - {{name: a, prompt: "a {{root}}"}}
          - {{name: b, prompt: "b {{root}}"}}
          - {{name: c, prompt: "c {{root}}"}}
          - {{name: join, prompt: "{{a}} {{b}} {{c}}"}}
        edges:
          - {{from: root, to: a}}
          - {{from: root, to: b}}
          - {{from: root, to: c}}
          - {{from: a, to: join}}
          - {{from: b, to: join}}
          - {{from: c, to: join}}
        """
    )


def test_chain_runs_in_list_order_and_outputs_the_last_node(home: Path) -> None:
    wf = workflow(
        f"""
        workflow: {{name: chain, llm: {FAST}}}
        inputs: {{topic: {{type: string, required: true}}}}
        nodes:
          - {{name: first, prompt: "about {{inputs.topic}}"}}
          - {{name: second, prompt: "after {{first}}"}}
        """
    )
    result = run_workflow(wf, {"topic": "tides"}, home=home)
    assert result.status == "success"
    assert list(result.outputs) == ["second"]
    first, second = result.nodes["first"], result.nodes["second"]
    assert first.finished_at <= second.started_at
    assert "about tides" in first.output
    assert result.outputs["second"].startswith("[simulated gpt-4o-mini] after [simulated")


def test_parallel_branches_overlap(home: Path) -> None:
    result = run_workflow(fan_out(), home=home)
    assert result.status == "success"
    spans = [(result.nodes[n].started_at, result.nodes[n].finished_at) for n in "abc"]
    latest_start = max(start for start, _ in spans)
    earliest_end = min(end for _, end in spans)
    assert latest_start < earliest_end, "the three branches should have run at the same time"
    assert result.nodes["join"].started_at >= max(end for _, end in spans)


def test_max_concurrency_one_serialises_calls(home: Path) -> None:
    result = run_workflow(fan_out(latency_ms=50, concurrency=1), home=home)
    waits = sorted(result.nodes[n].queue_ms for n in "abc")
    # each branch queues behind the 50 ms calls of the ones before it
    assert waits[1] >= 45 and waits[2] >= 95


def test_json_node_fields_flow_downstream(home: Path) -> None:
    wf = workflow(
        f"""
        workflow: {{name: js, llm: {FAST}}}
        nodes:
          - name: critique
            prompt: critique it
            output: json
            schema: {{weaknesses: string, severity: integer, tags: [string], ok: boolean}}
          - {{name: fix, prompt: "severity {{critique.severity}}: {{critique.weaknesses}}"}}
        """
    )
    result = run_workflow(wf, home=home)
    value = result.nodes["critique"].output
    assert isinstance(value["severity"], int) and isinstance(value["weaknesses"], str)
    assert isinstance(value["tags"], list) and isinstance(value["ok"], bool)
    assert f"severity {value['severity']}: {value['weaknesses'][:30]}" in result.outputs["fix"]


def test_simulation_is_deterministic_and_varies_with_the_request(home: Path) -> None:
    wf = workflow(
        """
        workflow: {name: sim, llm: {provider: simulated, model: gpt-4o, max_output_tokens: 800,
                   simulate: {latency_ms: 0}}}
        inputs: {topic: {type: string}}
        nodes:
          - {name: write, prompt: "write about {inputs.topic}"}
        """
    )
    first = run_workflow(wf, {"topic": "solar"}, home=home)
    again = run_workflow(wf, {"topic": "solar"}, home=home)
    assert first.outputs == again.outputs
    assert first.output_tokens == again.output_tokens
    lengths = {
        run_workflow(wf, {"topic": f"topic {i}"}, home=home).output_tokens for i in range(12)
    }
    assert len(lengths) > 6, "reply lengths should spread over a distribution"
    assert all(200 < n < 700 for n in lengths)


def test_simulated_cost_is_the_named_models_price(home: Path) -> None:
    wf = workflow(
        """
        workflow: {name: price, llm: {provider: simulated, model: gpt-4o,
                   simulate: {latency_ms: 0, output_tokens: 100}}}
        nodes:
          - {name: one, prompt: hello there}
        """
    )
    result = run_workflow(wf, home=home)
    node = result.nodes["one"]
    price = PriceBook().price("simulated", "gpt-4o")
    assert price is not None
    assert node.output_tokens == 100
    assert node.cost_usd == pytest.approx(
        node.input_tokens * price.input_per_token + 100 * price.output_per_token
    )
    assert node.simulated and result.simulated


def test_unknown_price_is_null_and_pricing_overrides(home: Path) -> None:
    text = """
        workflow: {{name: unpriced, llm: {{provider: simulated, model: my-finetune,
                   simulate: {{latency_ms: 0, output_tokens: 1000}}}}}}
        nodes:
          - {{name: one, prompt: hi}}
        {pricing}
        """
    result = run_workflow(workflow(text.format(pricing="")), home=home)
    assert result.cost_usd is None and result.unpriced_calls == 1
    assert any("no price known" in w for w in result.warnings)
    row = get_store(home).query("SELECT cost_usd FROM node_runs WHERE run_id = ?", [result.run_id])
    assert row == [(None,)]
    priced = run_workflow(
        workflow(
            text.format(
                pricing="pricing: {my-finetune: {input_per_million: 1.0, output_per_million: 2.0}}"
            )
        ),
        home=home,
    )
    node = priced.nodes["one"]
    assert node.cost_usd == pytest.approx(node.input_tokens * 1e-6 + 1000 * 2e-6)


def test_required_input_missing_fails_before_anything_runs(home: Path) -> None:
    wf = workflow(
        f"""
        workflow: {{name: needs, llm: {FAST}}}
        inputs:
          topic: {{type: string, required: true, description: What to research}}
          depth: {{type: integer, default: 2}}
        nodes:
          - {{name: one, prompt: "{{inputs.topic}} {{inputs.depth}}"}}
        """
    )
    with pytest.raises(InputError, match="missing required input 'topic'"):
        run_workflow(wf, {}, home=home)
    with pytest.raises(InputError, match="input 'depth' must be integer"):
        run_workflow(wf, {"topic": "x", "depth": "deep"}, home=home)
    with pytest.raises(InputError, match="unknown input 'topc'; did you mean 'topic'"):
        run_workflow(wf, {"topc": "x"}, home=home)
    assert get_store(home).query("SELECT count(*) FROM runs") == [(0,)]


def test_budget_stops_before_the_call_that_would_exceed_it(home: Path) -> None:
    wf = workflow(
        """
        workflow:
          name: budget
          max_tokens: 900
          llm: {provider: simulated, model: gpt-4o-mini, max_output_tokens: 300,
                simulate: {latency_ms: 0, output_tokens: 250}}
        nodes:
          - {name: one, prompt: first}
          - {name: two, prompt: "second {one}"}
          - {name: three, prompt: "third {two}"}
        """
    )
    result = run_workflow(wf, home=home)
    assert result.status == "budget_exceeded"
    assert result.nodes["one"].status == "success"
    assert result.nodes["two"].status == "success"
    assert result.nodes["three"].status == "budget_exceeded"
    assert "max_tokens 900" in (result.nodes["three"].error or "")
    assert "three" not in result.outputs
    assert result.tokens <= 900
    assert any("of max_tokens used" in w for w in result.warnings)
    rows = get_store(home).query(
        "SELECT node, status FROM node_runs WHERE run_id = ? ORDER BY started_at", [result.run_id]
    )
    assert [status for _, status in rows] == ["success", "success", "budget_exceeded"]


def test_parallel_nodes_share_the_budget(home: Path) -> None:
    branches = "\n".join(f"  - {{name: b{i}, prompt: 'branch {i}'}}" for i in range(6))
    wf = load_workflow(
        "workflow:\n  name: race\n  max_tokens: 1000\n"
        "  llm: {provider: simulated, model: gpt-4o-mini, max_output_tokens: 300,"
        " simulate: {latency_ms: 50, output_tokens: 290}}\n"
        f"nodes:\n{branches}\nedges: []\n"
    )
    result = run_workflow(wf, home=home)
    ran = [n for n in result.nodes.values() if n.status == "success"]
    refused = [n for n in result.nodes.values() if n.status == "budget_exceeded"]
    assert result.status == "budget_exceeded"
    assert len(ran) == 3 and len(refused) == 3
    assert result.tokens <= 1000


def test_cost_budget_and_cli_exit_code_3(home: Path, tmp_path: Path) -> None:
    from core.cli import main

    path = tmp_path / "wf.yaml"
    path.write_text(
        "workflow:\n  name: pricey\n  max_cost: 0.01\n"
        "  llm: {provider: simulated, model: gpt-4o, max_output_tokens: 1000,"
        " simulate: {latency_ms: 0, output_tokens: 900}}\n"
        "nodes:\n  - {name: one, prompt: a}\n  - {name: two, prompt: 'b {one}'}\n"
    )
    assert main(["run", str(path)]) == 3


def test_cache_hit_costs_nothing_and_records_the_saving(home: Path) -> None:
    wf = workflow(
        """
        workflow: {name: cached, llm: {provider: simulated, model: gpt-4o,
                   simulate: {latency_ms: 0, output_tokens: 50}}}
        nodes:
          - {name: ask, prompt: same question, cache: {enabled: true, ttl: 60}}
        """
    )
    first = run_workflow(wf, home=home)
    second = run_workflow(wf, home=home)
    fresh = run_workflow(wf, home=home, use_cache=False)
    assert not first.nodes["ask"].cache_hit
    hit = second.nodes["ask"]
    assert hit.cache_hit and hit.cost_usd == 0.0 and hit.attempts == 0
    assert hit.saved_cost_usd == pytest.approx(first.cost_usd)
    assert hit.output == first.nodes["ask"].output
    assert not fresh.nodes["ask"].cache_hit
    rows = get_store(home).query(
        "SELECT cache_hit, cost_usd, saved_cost_usd FROM node_runs WHERE run_id = ?",
        [second.run_id],
    )
    assert rows == [(True, 0.0, pytest.approx(first.cost_usd))]


def test_cache_entries_expire(home: Path) -> None:
    text = """
        workflow: {{name: ttl, llm: {{provider: simulated, model: gpt-4o-mini,
                   simulate: {{latency_ms: 0, output_tokens: 5}}}}}}
        nodes:
          - {{name: ask, prompt: {prompt}, cache: {{enabled: true, ttl: {ttl}}}}}
        """
    before = time.time()
    stored = run_workflow(workflow(text.format(prompt="kept", ttl=30)), home=home)
    # the entry carries the node's TTL (read back rather than raced against the clock)
    cache = response_cache(home)._cache
    (key,) = [k for k in cache.iterkeys() if k.startswith(stored.nodes["ask"].request_hash)]
    _, expires = cache.get(key, expire_time=True)
    assert before + 30 <= expires <= time.time() + 30
    short = workflow(text.format(prompt="brief", ttl=0.5))
    run_workflow(short, home=home)
    time.sleep(0.6)
    assert not run_workflow(short, home=home).nodes["ask"].cache_hit


def test_simulated_errors_are_retried_and_counted(home: Path) -> None:
    wf = workflow(
        """
        workflow:
          name: flaky
          retries: 2
          llm: {provider: simulated, model: gpt-4o-mini,
                simulate: {latency_ms: 0, output_tokens: 5, error_rate: 1.0}}
        nodes:
          - {name: one, prompt: a}
          - {name: two, prompt: "b {one}"}
        """
    )
    result = run_workflow(wf, home=home)
    assert result.status == "failed"
    node = result.nodes["one"]
    assert node.status == "failed" and node.attempts == 3
    assert "503" in (node.error or "") and "after 3 attempts" in (node.error or "")
    assert "two" not in result.nodes
    assert result.error and "node 'one' failed" in result.error


def test_node_timeout(home: Path) -> None:
    wf = workflow(
        """
        workflow:
          name: slow
          timeout: 0.2
          retries: 0
          llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 5000}}
        nodes:
          - {name: one, prompt: a}
        """
    )
    result = run_workflow(wf, home=home)
    assert result.status == "failed"
    assert result.nodes["one"].status == "timeout"
    assert "timed out after 0.2s" in (result.nodes["one"].error or "")


def test_a_failure_lets_running_branches_finish_but_starts_nothing_new(home: Path) -> None:
    wf = workflow(
        """
        workflow:
          name: partial
          retries: 0
          llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0}}
        nodes:
          - {name: bad, prompt: x, llm: {simulate: {error_rate: 1.0}}}
          - {name: slow, prompt: y, llm: {simulate: {latency_ms: 300}}}
          - {name: after_slow, prompt: "z {slow}"}
        edges:
          - {from: slow, to: after_slow}
        """
    )
    result = run_workflow(wf, home=home)
    assert result.status == "failed"
    assert result.nodes["slow"].status == "success"
    assert "after_slow" not in result.nodes
    stored = get_store(home).query(
        "SELECT node, status FROM node_runs WHERE run_id = ? ORDER BY node", [result.run_id]
    )
    assert stored == [("bad", "failed"), ("slow", "success")]


async def test_cancelling_a_run_keeps_finished_nodes(home: Path) -> None:
    wf = workflow(
        """
        workflow: {name: cancel, llm: {provider: simulated, model: gpt-4o-mini}}
        nodes:
          - {name: quick, prompt: a, llm: {simulate: {latency_ms: 0, output_tokens: 5}}}
          - {name: forever, prompt: "b {quick}", llm: {simulate: {latency_ms: 30000}}}
        """
    )
    finished = asyncio.Event()

    def on_event(kind: str, payload: dict) -> None:
        if kind == "node_finished" and payload["node"] == "quick":
            finished.set()

    task = asyncio.create_task(arun_workflow(wf, home=home, on_event=on_event))
    await finished.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    store = get_store(home)
    assert store.flush()
    assert store.query("SELECT status FROM runs") == [("cancelled",)]
    assert sorted(store.query("SELECT node, status FROM node_runs")) == [
        ("forever", "cancelled"),
        ("quick", "success"),
    ]


def test_telemetry_rows_match_the_result(home: Path) -> None:
    result = run_workflow(fan_out(latency_ms=0), home=home, tags={"team": "search"})
    store = get_store(home)
    run = store.query(
        "SELECT workflow, status, input_tokens, output_tokens, cost_usd, simulated, tags "
        "FROM runs WHERE run_id = ?",
        [result.run_id],
    )
    assert run == [
        (
            "fan",
            "success",
            result.input_tokens,
            result.output_tokens,
            pytest.approx(result.cost_usd),
            True,
            '{"team": "search"}',
        )
    ]
    nodes = store.query(
        "SELECT node, node_type, provider, model, input_tokens, output_tokens, attempts, status "
        "FROM node_runs WHERE run_id = ? ORDER BY node",
        [result.run_id],
    )
    assert [row[0] for row in nodes] == ["a", "b", "c", "join", "root"]
    for name, node_type, provider, model, tokens_in, tokens_out, attempts, status in nodes:
        node = result.nodes[name]
        assert (node_type, provider, model, status, attempts) == (
            "llm",
            "simulated",
            "gpt-4o-mini",
            "success",
            1,
        )
        assert (tokens_in, tokens_out) == (node.input_tokens, node.output_tokens)

"""Figures on the real provider path, against a local OpenAI-compatible server: every cost is
LiteLLM's own price of the provider's usage, budgets hold against what the provider reports,
a missing usage is unknown rather than zero, and no simulated dollar enters real spend."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import NOW, cli, litellm_cost, make_node, make_run, write_rows
from openai_server import OpenAIServer, Reply

from core import load_workflow, run_workflow
from core.analytics.check import check
from core.analytics.cost import cost_report
from core.analytics.profile import profile
from core.analytics.profile_render import render as render_profile
from core.catalog.prices import PriceBook
from core.errors import WorkflowError
from core.telemetry import get_store

FANOUT = 32
REPORTED = (1234, 567)  # prompt and completion tokens the server claims for every call


def workflow_text(
    server: OpenAIServer,
    nodes: str,
    *,
    model: str = "gpt-4o",
    settings: str = "",
    extra: str = "",
) -> str:
    return f"""
workflow:
  name: numbers
  retries: 0
  timeout: 20
  llm: {{provider: openai, model: {model}, api_base: "{server.base_url}"}}
  {settings}
nodes:
{nodes}
{extra}
"""


ONE = """
  - name: write
    prompt: "Write about tides"
"""
# A real node, then a rehearsal of its answer on the simulated provider.
MIXED = """
  - name: real_call
    prompt: "Write about tides"
  - name: rehearsal
    prompt: "Draft {real_call}"
    llm: {provider: simulated, model: gpt-4o, simulate: {latency_ms: 0, output_tokens: 200}}
"""


def node(home: Path, run_id: str, name: str) -> dict[str, Any]:
    columns = (
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "usage_estimated",
        "cost_usd",
        "simulated",
        "reserved_tokens",
    )
    rows = get_store(home).query(
        f"SELECT {', '.join(columns)} FROM node_runs WHERE run_id = ? AND node = ?",
        [run_id, name],
    )
    return dict(zip(columns, rows[0], strict=True))


def run_row(home: Path, run_id: str) -> dict[str, Any]:
    columns = ("cost_usd", "simulated_cost_usd", "simulated", "unpriced_calls", "cached_tokens")
    rows = get_store(home).query(
        f"SELECT {', '.join(columns)} FROM runs WHERE run_id = ?", [run_id]
    )
    return dict(zip(columns, rows[0], strict=True))


# ------------------------------------------------------------------------- 1. LiteLLM prices


def test_cached_and_reasoning_tokens_are_priced_as_litellm_prices_them(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(
        Reply.ok(
            "ok", prompt_tokens=2000, completion_tokens=100, cached_tokens=1536,
            reasoning_tokens=40,
        )
    )  # fmt: skip
    result = run_workflow(load_workflow(workflow_text(openai_server, ONE)), home=home)
    stored = node(home, result.run_id, "write")
    assert (stored["cached_tokens"], stored["reasoning_tokens"]) == (1536, 40)
    expected = litellm_cost("openai", "gpt-4o", 2000, 100, cached_tokens=1536, reasoning_tokens=40)
    flat = litellm_cost("openai", "gpt-4o", 2000, 100)
    assert stored["cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert expected < flat  # the cached price is not the flat one
    assert run_row(home, result.run_id)["cached_tokens"] == 1536
    section = cost_report(home, days=1).real
    assert section is not None
    assert (section.cached_tokens, section.reasoning_tokens) == (1536, 40)


def test_a_tier_over_272k_input_tokens_is_priced_by_the_map(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("long read", prompt_tokens=300_000, completion_tokens=100))
    text = workflow_text(openai_server, ONE, model="gpt-5.4")
    result = run_workflow(load_workflow(text), home=home)
    tiered = litellm_cost("openai", "gpt-5.4", 300_000, 100)
    assert result.cost_usd == pytest.approx(tiered, rel=1e-12)
    # LiteLLM bills the whole prompt at the higher tier: twice the base rate.
    base = litellm_cost("openai", "gpt-5.4", 100_000, 0) * 3
    assert result.cost_usd > 1.9 * base


def test_pricing_overrides_win_and_go_through_litellm(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("ok", prompt_tokens=1_000_000, completion_tokens=500_000))
    pricing = "pricing:\n  house-model: {input_per_million: 0.30, output_per_million: 1.20}"
    text = workflow_text(openai_server, ONE, model="house-model", extra=pricing)
    result = run_workflow(load_workflow(text), home=home)
    assert result.cost_usd == pytest.approx(0.30 + 0.60)


def test_no_price_is_borrowed_from_another_providers_entry(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("ok", prompt_tokens=100, completion_tokens=10))
    text = workflow_text(openai_server, ONE, model="llama-3.1-8b-instant")
    result = run_workflow(load_workflow(text), home=home)
    assert result.cost_usd is None and result.unpriced_calls == 1
    assert node(home, result.run_id, "write")["cost_usd"] is None
    # Another host sells a model of that name, and Vertex one named like Anthropic's: LiteLLM
    # prices neither under these providers, and neither do we.
    for provider, model in (("openai", "llama-3.1-8b-instant"), ("anthropic", "claude-3-5-sonnet")):
        assert not PriceBook().known(provider, model)
        with pytest.raises(Exception, match="isn't mapped"):
            litellm_cost(provider, model, 100, 10)


# ------------------------------------------------------------------- 2. real and simulated


def test_a_simulated_node_in_a_real_run_stays_out_of_real_spend(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(then=Reply.ok("real", prompt_tokens=1000, completion_tokens=100))
    result = run_workflow(load_workflow(workflow_text(openai_server, MIXED)), home=home)
    real = litellm_cost("openai", "gpt-4o", 1000, 100)
    simulated = result.nodes["rehearsal"].cost_usd
    assert simulated and result.nodes["rehearsal"].simulated
    assert not result.simulated
    assert result.cost_usd == pytest.approx(real, rel=1e-12)
    assert result.simulated_cost_usd == pytest.approx(simulated, rel=1e-12)
    stored = run_row(home, result.run_id)
    assert stored["cost_usd"] == pytest.approx(real, rel=1e-12)
    assert stored["simulated_cost_usd"] == pytest.approx(simulated, rel=1e-12)
    report = cost_report(home, days=1)
    assert report.real is not None and report.simulated is not None
    assert report.real.runs.total_cost_usd == pytest.approx(real, rel=1e-12)
    assert report.real.node_cost_usd == pytest.approx(real, rel=1e-12)
    assert report.simulated.runs.total_cost_usd == pytest.approx(simulated, rel=1e-12)
    assert report.simulated.node_cost_usd == pytest.approx(simulated, rel=1e-12)
    gate = check(home, days=1, simulated=False)
    p95 = next(m for m in gate.metrics if m.name == "run_cost_p95")
    assert p95.value == pytest.approx(real, rel=1e-12)
    header = render_profile(profile(home)).splitlines()[0]
    assert "1 real run" in header


def test_run_json_keeps_simulated_cost_apart(
    openai_server: OpenAIServer, home: Path, tmp_path: Path
) -> None:
    openai_server.script(then=Reply.ok("real", prompt_tokens=1000, completion_tokens=100))
    path = tmp_path / "mixed.yaml"
    path.write_text(workflow_text(openai_server, MIXED), encoding="utf-8")
    done = cli("run", str(path), "--json", home=home)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["cost_usd"] == pytest.approx(litellm_cost("openai", "gpt-4o", 1000, 100))
    assert document["simulated_cost_usd"] > 0
    assert document["nodes"]["rehearsal"]["simulated"] is True


# -------------------------------------------------------------------- 3. usage missing


def test_a_reply_without_usage_is_counted_locally_and_left_unpriced(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("a reply of several words", usage=False))
    result = run_workflow(load_workflow(workflow_text(openai_server, ONE)), home=home)
    stored = node(home, result.run_id, "write")
    assert stored["usage_estimated"] is True
    assert stored["input_tokens"] > 0 and stored["output_tokens"] > 0
    assert stored["cost_usd"] is None
    assert result.cost_usd is None and result.unpriced_calls == 1
    assert any("without usage" in w and "unknown" in w for w in result.warnings)
    section = cost_report(home, days=1).real
    assert section is not None and section.unpriced_calls == 1


def test_estimated_usage_is_priced_only_when_the_workflow_allows_it(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(Reply.ok("a reply of several words", usage=False))
    text = workflow_text(openai_server, ONE, settings="budget: {price_estimated_usage: true}")
    result = run_workflow(load_workflow(text), home=home)
    write = result.nodes["write"]
    assert write.usage_estimated
    expected = litellm_cost("openai", "gpt-4o", write.input_tokens, write.output_tokens)
    assert write.cost_usd == pytest.approx(expected, rel=1e-12)
    assert any("priced on that count" in w for w in result.warnings)


# --------------------------------------------------------------------------- 4. budgets


def _fanout(server: OpenAIServer, budget: str, model: str, cap: int) -> str:
    """32 independent calls that all want to start at once; the server bills 1,234/567
    tokens for a prompt counted as a few, whatever the output cap."""
    nodes = "\n".join(
        f'  - {{name: b{i}, prompt: "part {i}", llm: {{max_output_tokens: {cap}}}}}'
        for i in range(FANOUT)
    )
    return workflow_text(
        server,
        nodes,
        model=model,
        settings=f"{budget}\n  max_concurrency: {FANOUT}",
        extra="edges: []",
    )


def _in_flight_overrun(result: Any) -> tuple[int, float]:
    """What the documented bound allows beyond the budget: the overrun (used beyond
    reserved) of the calls in flight when the last call was booked."""
    called = [n for n in result.nodes.values() if n.attempts and n.reserved_tokens is not None]
    booked = {n.name: n.started_at + timedelta(milliseconds=n.queue_ms) for n in called}
    last = max(booked.values())
    flying = [n for n in called if booked[n.name] <= last <= n.finished_at]
    tokens = sum(max(0, n.input_tokens + n.output_tokens - n.reserved_tokens) for n in flying)
    cost = sum(max(0.0, (n.cost_usd or 0.0) - (n.reserved_cost_usd or 0.0)) for n in flying)
    return tokens, cost


@pytest.mark.slow
@pytest.mark.parametrize(
    ("limit", "budget", "model", "cap"),
    [
        ("tokens", 20_000, "gpt-4o", 600),
        ("cost", 0.01, "gpt-4o-mini", 600),
        ("tokens", 20_000, "gpt-4o", 200),  # the server ignores this output cap
    ],
)
def test_spend_never_exceeds_the_documented_bound_under_a_fanout(
    openai_server: OpenAIServer,
    home: Path,
    limit: str,
    budget: float,
    model: str,
    cap: int,
) -> None:
    openai_server.script(
        then=Reply.ok("part", prompt_tokens=REPORTED[0], completion_tokens=REPORTED[1], delay=0.05)
    )
    setting = f"max_tokens: {budget}" if limit == "tokens" else f"max_cost: {budget}"
    workflow = load_workflow(_fanout(openai_server, setting, model, cap))
    worst = -1.0
    for _ in range(20):
        result = run_workflow(workflow, home=home)
        assert result.status == "budget_exceeded"
        tokens_allowed, cost_allowed = _in_flight_overrun(result)
        if limit == "tokens":
            assert result.tokens <= budget + tokens_allowed
            worst = max(worst, result.tokens / budget - 1)
        else:
            assert result.cost_usd is not None
            assert result.cost_usd <= budget + cost_allowed + 1e-12
            worst = max(worst, result.cost_usd / budget - 1)
        # After the first reply showed how the provider counts, calls book that much.
        booked = [n.reserved_tokens or 0 for n in result.nodes.values() if n.attempts]
        assert sorted(booked)[1] >= REPORTED[0]
    if cap >= REPORTED[1]:  # a provider that keeps to the cap: the budget holds exactly
        assert worst <= 1e-9
    print(f"worst spend vs max_{limit} over 20 runs (output cap {cap}): {worst:+.1%}")


def test_an_unpriced_model_under_max_cost_is_refused_at_its_line(
    openai_server: OpenAIServer,
) -> None:
    text = workflow_text(openai_server, ONE, model="house-model", settings="max_cost: 0.001")
    with pytest.raises(WorkflowError) as caught:
        load_workflow(text)
    [problem] = caught.value.problems
    assert "node 'write'" in problem.message and "openai/house-model" in problem.message
    assert "allow_unpriced" in problem.message
    assert text.splitlines()[problem.line - 1].lstrip().startswith("llm:")


def test_allowed_unpriced_calls_count_against_tokens_only(
    openai_server: OpenAIServer, home: Path
) -> None:
    openai_server.script(then=Reply.ok("ok", prompt_tokens=100, completion_tokens=50))
    settings = "max_cost: 0.001\n  max_tokens: 10000\n  budget: {allow_unpriced: true}"
    text = workflow_text(openai_server, ONE, model="house-model", settings=settings)
    result = run_workflow(load_workflow(text), home=home)
    assert result.status == "success" and result.cost_usd is None
    assert any("counted against max_tokens only" in w for w in result.warnings)


# ---------------------------------------------------------- 5. LiteLLM's import, not a node's


def test_the_first_node_of_a_real_run_is_not_an_outlier(
    openai_server: OpenAIServer, home: Path, tmp_path: Path
) -> None:
    """In a fresh process, LiteLLM's import (seconds) must land before the run's clock."""
    openai_server.script(then=Reply.ok("ok", prompt_tokens=10, completion_tokens=5))
    nodes = "\n".join(f'  - {{name: n{i}, prompt: "step {i}"}}' for i in range(4))
    path = tmp_path / "chain.yaml"
    path.write_text(workflow_text(openai_server, nodes), encoding="utf-8")
    done = cli("run", str(path), "--json", home=home)
    assert done.returncode == 0, done.stderr
    durations = [n["duration_ms"] for n in json.loads(done.stdout)["nodes"].values()]
    first, rest = durations[0], durations[1:]
    assert first <= 3 * max(rest) + 500, durations


# ------------------------------------------------------------- 6. days, headers, ranges


def test_a_run_crossing_midnight_is_one_days_spend(home: Path) -> None:
    yesterday = datetime.combine(NOW.date(), datetime.min.time()) - timedelta(minutes=1)
    write_rows(
        home,
        runs=[make_run("late", yesterday, 0.03)],
        nodes=[
            make_node("late", "a", yesterday, cost_usd=0.01, run_started_at=yesterday),
            make_node(
                "late", "b", yesterday + timedelta(minutes=2), cost_usd=0.02,
                run_started_at=yesterday,
            ),
        ],
    )  # fmt: skip
    for days in (1, 2):
        section = cost_report(home, days=days).real
        assert section is not None
        total = section.runs.total_cost_usd or 0.0
        for breakdown in (section.by_day, section.by_node, section.by_model):
            assert sum(b.cost_usd or 0.0 for b in breakdown) == pytest.approx(total)

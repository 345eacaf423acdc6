"""Cost estimates: exact input tokens, history-based output ranges, cache forecasts."""

from __future__ import annotations

import json
import statistics
import textwrap
from pathlib import Path

import pytest
from helpers import litellm_cost, write_rows

from core import load_workflow, run_workflow
from core.analytics.estimate import MIN_HISTORY, MIN_SPREAD, Z_RANGE, estimate
from core.analytics.estimate_render import render
from core.catalog.tokens import count_message_tokens
from core.cli import main
from core.telemetry import get_store

TWO_STEP = textwrap.dedent(
    """
    workflow: {name: two_step, llm: {provider: openai, model: gpt-4o-mini, max_output_tokens: 400}}
    inputs: {topic: {type: string, required: true}}
    nodes:
      - {name: facts, prompt: "List facts about {inputs.topic}."}
      - {name: summary, prompt: "Summarise: {facts}"}
    """
)
FACTS_IN = count_message_tokens(
    "openai", "gpt-4o-mini", [{"role": "user", "content": "List facts about solar."}]
)


def _history(
    home: Path,
    node: str,
    outputs: list[int],
    model: str = "gpt-4o-mini",
    inputs: list[int] | None = None,
) -> None:
    write_rows(
        home,
        nodes=[
            {
                "run_id": f"r{index}",
                "node": node,
                "node_type": "llm",
                "provider": "openai",
                "model": model,
                "duration_ms": 1000.0,
                "input_tokens": inputs[index] if inputs else FACTS_IN,
                "output_tokens": tokens,
                "cost_usd": 0.001,
                "cache_hit": False,
                "attempts": 1,
                "status": "success",
                "workflow": "two_step",
                "simulated": False,
            }
            for index, tokens in enumerate(outputs)
        ],
    )


def test_without_history_defaults_are_wide_and_say_so(home: Path) -> None:
    wf = load_workflow(TWO_STEP)
    found = estimate(wf, {"topic": "solar"}, home=home)
    facts, summary = found.nodes
    expected_in = count_message_tokens(
        "openai", "gpt-4o-mini", [{"role": "user", "content": "List facts about solar."}]
    )
    assert facts.input_tokens == expected_in
    assert (facts.output_low, facts.output_tokens, facts.output_high) == (40, 200, 400)
    assert facts.basis.startswith("no history (0 runs)")
    # the summary's prompt holds the facts' expected 200 tokens
    literal = count_message_tokens(
        "openai", "gpt-4o-mini", [{"role": "user", "content": "Summarise: "}]
    )
    assert summary.input_tokens == literal + 200
    assert facts.cost_usd == pytest.approx(litellm_cost("openai", "gpt-4o-mini", expected_in, 200))
    assert found.cost_usd == pytest.approx(facts.cost_usd + summary.cost_usd)
    assert found.cost_low < found.cost_usd < found.cost_high
    assert found.input_tokens == expected_in + literal + 200
    assert found.output_tokens == 400


def test_history_gives_mean_and_spread(home: Path) -> None:
    outputs = [100, 110, 90, 100, 105, 95]
    _history(home, "facts", outputs)
    _history(home, "summary", [50] * (MIN_HISTORY - 1))  # too few: still the default
    found = estimate(load_workflow(TWO_STEP), {"topic": "solar"}, home=home)
    facts, summary = found.nodes
    mean, sd = statistics.mean(outputs), statistics.stdev(outputs)
    spread = max(sd, MIN_SPREAD * mean)  # the history saw this very input length
    assert facts.basis == "history: 6 runs"
    assert facts.output_tokens == round(mean)
    assert facts.output_low == round(mean - Z_RANGE * spread)
    assert facts.output_high == round(mean + Z_RANGE * spread)
    assert summary.basis.startswith("no history (4 runs)")
    assert summary.input_tokens == count_message_tokens(
        "openai", "gpt-4o-mini", [{"role": "user", "content": "Summarise: "}]
    ) + round(mean)


def test_missing_inputs_are_counted_as_empty_with_a_warning(home: Path) -> None:
    found = estimate(load_workflow(TWO_STEP), {}, home=home)
    assert found.warnings == ["input 'topic' not given: counted as empty"]


def test_unpriced_models_are_listed_not_summed(home: Path) -> None:
    wf = load_workflow(TWO_STEP.replace("gpt-4o-mini", "house-model"))
    found = estimate(wf, {"topic": "x"}, home=home)
    assert found.unpriced == ["facts", "summary"]
    assert found.cost_usd is None and all(n.cost_usd is None for n in found.nodes)
    assert found.cost_low is None and found.cost_high is None
    assert "Estimated Cost: unknown" in render(found) and "$0" not in render(found)


def test_identical_history_still_gives_a_range_that_widens_with_a_new_input(home: Path) -> None:
    _history(home, "facts", [80] * 6)  # six runs of one input, all alike
    same = estimate(load_workflow(TWO_STEP), {"topic": "solar"}, home=home).nodes[0]
    assert same.output_low < same.output_tokens < same.output_high
    assert same.cost_low < same.cost_usd < same.cost_high
    longer = estimate(
        load_workflow(TWO_STEP), {"topic": "solar power in northern winters " * 4}, home=home
    ).nodes[0]
    assert longer.output_high - longer.output_low > same.output_high - same.output_low


def test_an_output_that_follows_its_input_is_predicted_from_it(home: Path) -> None:
    inputs = [20, 40, 60, 80, 100, 120]
    _history(home, "facts", [2 * n + 5 for n in inputs], inputs=inputs)  # an echo, doubled
    facts = estimate(load_workflow(TWO_STEP), {"topic": "solar"}, home=home).nodes[0]
    assert facts.output_tokens == 2 * FACTS_IN + 5


def test_budget_warnings(home: Path) -> None:
    text = TWO_STEP.replace("{name: two_step,", "{name: two_step, max_tokens: 900,")
    found = estimate(load_workflow(text), {"topic": "x"}, home=home)
    assert any("exceeds max_tokens 900" in w for w in found.warnings)


def test_a_cached_answer_is_forecast_at_zero_cost(home: Path) -> None:
    text = TWO_STEP.replace(
        'prompt: "List facts about {inputs.topic}."}',
        'prompt: "List facts about {inputs.topic}.", cache: {enabled: true}}',
    )
    wf = load_workflow(text)
    before = estimate(wf, {"topic": "tides"}, simulate=True, home=home)
    assert not before.nodes[0].cached
    run_workflow(wf, {"topic": "tides"}, simulate=True, home=home)
    after = estimate(wf, {"topic": "tides"}, simulate=True, home=home)
    facts, summary = after.nodes
    assert facts.cached and facts.cost_usd == 0 and facts.basis == "served from cache"
    # the cached text is known, so the summary's input is counted exactly
    assert summary.input_tokens == count_message_tokens(
        "openai",
        "gpt-4o-mini",
        [{"role": "user", "content": "Summarise: " + run_workflow(
            wf, {"topic": "tides"}, simulate=True, home=home).nodes["facts"].output}],
    )  # fmt: skip
    assert not estimate(wf, {"topic": "other"}, simulate=True, home=home).nodes[0].cached


def test_dry_run_cli_prints_the_reference_shape(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "two_step.yaml"
    path.write_text(TWO_STEP)
    assert main(["run", str(path), "--dry-run", "--estimate-cost", "--input", "topic=x"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["Cost Estimation", "===============", f"Workflow: {path}"]
    assert out[3].startswith("Estimated Cost: $") and "(range: $" in out[3]
    assert out[4].startswith("Estimated Tokens: ") and "(input: " in out[4]
    assert "Breakdown by Node:" in out
    assert any(line.startswith("  - facts: $") for line in out)
    assert main(["run", str(path), "--dry-run", "--estimate-cost", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [n["name"] for n in document["nodes"]] == ["facts", "summary"]
    assert get_store(home).query("SELECT count(*) FROM runs") == [(0,)]

"""Every scorer on fixed outputs: the deterministic ones directly, `python` in the real process
sandbox, `llm_judge` through the engine against the real OpenAI-compatible test server and
against the simulated provider."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import quiz_experiment
from jsonschema import Draft202012Validator
from openai_server import OpenAIServer, Reply

from core.engine import arun_workflow
from core.engine.results import NodeResult, RunResult
from core.experiments import scorers
from core.experiments.loader import load_experiment
from core.experiments.model import Python
from core.experiments.python_scorer import run_python_scorer
from core.experiments.scoring import CellScorer


def run_result(
    output: Any = "Paris", *, status: str = "success", cost: float | None = 0.001
) -> RunResult:
    now = datetime.now(UTC)
    node = NodeResult(
        "answer", "llm", status, now, now, 1200.0, output=output, provider="openai", model="gpt-4o"
    )
    return RunResult(
        run_id="r1",
        workflow="quiz",
        workflow_hash="h",
        status=status,
        started_at=now,
        finished_at=now,
        duration_ms=1200.0,
        outputs={"answer": output},
        nodes={"answer": node},
        input_tokens=10,
        output_tokens=2,
        cost_usd=cost,
        unpriced_calls=0,
        simulated=True,
        error=None if status == "success" else "node 'answer' failed: boom",
    )


@pytest.mark.parametrize(
    ("check", "output", "expected", "score"),
    [
        (scorers.equals, " Paris\n", "Paris", 1.0),
        (scorers.equals, "paris", "Paris", 0.0),
        (scorers.equals, "42", 42, 1.0),
        (scorers.equals, "42 apples", 42, 0.0),
        (scorers.equals, {"a": 1}, {"a": 1}, 1.0),
        (scorers.equals, '{"a": 1}', {"a": 1}, 1.0),
        (scorers.contains, "The capital is Paris.", "Paris", 1.0),
        (scorers.contains, "The capital is paris.", "Paris", 0.0),
        (scorers.icontains, "The capital is PARIS.", "paris", 1.0),
        (scorers.icontains, "Lyon", "paris", 0.0),
    ],
)
def test_comparing_scorers(check: Any, output: Any, expected: Any, score: float) -> None:
    verdict = check(output, expected)
    assert verdict.score == score and verdict.reason


def test_regex_json_and_field_scorers() -> None:
    assert scorers.regex("answer: 42", re.compile(r"\d+")).score == 1.0
    assert scorers.regex("none", re.compile(r"\d+")).score == 0.0
    assert scorers.json_valid('{"x": [1, 2]}').score == 1.0
    assert scorers.json_valid({"x": 1}).score == 1.0  # a json node's parsed output
    assert scorers.json_valid("{x: 1}").score == 0.0
    validator = Draft202012Validator(
        {"type": "object", "required": ["total"], "properties": {"total": {"type": "number"}}}
    )
    assert scorers.json_schema('{"total": 3.5}', validator).score == 1.0
    wrong = scorers.json_schema('{"total": "3.5"}', validator)
    assert wrong.score == 0.0 and "total: '3.5' is not of type 'number'" in wrong.reason
    assert scorers.json_schema("not json", validator).score == 0.0
    nested = '{"order": {"status": "shipped"}}'
    assert scorers.json_field_equals(nested, "order.status", "shipped").score == 1.0
    assert scorers.json_field_equals(nested, "order.status", "lost").score == 0.0
    missing = scorers.json_field_equals(nested, "order.id", 1)
    assert missing.score == 0.0 and "no field 'order.id'" in missing.reason


def test_number_close_reads_the_first_number() -> None:
    assert scorers.number_close("Total: 1,234.50 USD", 1234.5, 0, 0).score == 1.0
    assert scorers.number_close("about 101", 100, 0, 0.02).score == 1.0
    assert scorers.number_close("about 103", 100, 0, 0.02).score == 0.0
    assert scorers.number_close("about 103", "100", 5, 0).score == 1.0
    assert scorers.number_close("no digits", 100, 5, 0).score == 0.0
    assert scorers.number_close("7", "not a number", 5, 0) is None


def test_cost_and_latency_scorers_read_the_run() -> None:
    assert scorers.max_cost(run_result(cost=0.001), 0.002).score == 1.0
    assert scorers.max_cost(run_result(cost=0.003), 0.002).score == 0.0
    unpriced = scorers.max_cost(run_result(cost=None), 0.002)
    assert unpriced.score is None and "no known price" in unpriced.reason
    assert scorers.max_latency(run_result(), 2000).score == 1.0
    assert scorers.max_latency(run_result(), 1000).score == 0.0


async def test_cell_scorer_thresholds_targets_and_failed_runs(tmp_path: Path) -> None:
    extra = (
        "  - name: mentions\n    type: icontains\n    expected: '{inputs.question}'\n"
        "    threshold: 1\n"
    )
    experiment = load_experiment(quiz_experiment(tmp_path, extra=extra))
    scorer = CellScorer(experiment, arun_workflow)
    variant, item = experiment.variants["big"], experiment.items[0]
    scores = await scorer.score(variant, item, 0, run_result("Paris"), {})
    assert [(s.scorer, s.score, s.passed) for s in scores] == [
        ("exact", 1.0, True),
        ("quick", 1.0, True),
        ("mentions", 0.0, False),  # the template renders the question, which "Paris" lacks
    ]
    failed = await scorer.score(variant, item, 0, run_result(status="failed"), {})
    assert all(s.score == 0.0 and s.passed is False for s in failed)
    assert failed[0].reason.startswith("the run failed: node 'answer' failed: boom")
    assert json.loads(scorer.cell_output(variant, run_result("Paris"))) == {
        "answer": "Paris",
        "outputs": "Paris",
    }
    references = scorer.references(variant, item)
    assert references["answer"].answer == "Paris" and references["answer"].item == item.key


async def test_python_scorer_runs_in_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-seen")
    code = (
        "import os\n"
        "score = 1.0 if output.strip().lower() == expected.lower() else 0.0\n"
        "reason = f\"{inputs['question']} -> {output} (key {'OPENAI_API_KEY' in os.environ})\"\n"
    )
    scorer = Python(name="custom", type="python", code=code)
    verdict = await run_python_scorer(scorer, "paris", "Paris", {"question": "Capital?"})
    assert verdict.score == 1.0
    assert verdict.reason == "Capital? -> paris (key False)"  # no environment reaches it
    wrong = await run_python_scorer(scorer, "Lyon", "Paris", {"question": "Capital?"})
    assert wrong.score == 0.0
    broken = Python(name="custom", type="python", code="x = 1\nscore = 1 / 0\n")
    failed = await run_python_scorer(broken, "a", "b", {})
    assert failed.score is None
    assert failed.reason == (
        "the scorer's code failed: ZeroDivisionError: division by zero (line 2 of the code)"
    )
    out_of_range = Python(name="custom", type="python", code="score = 3\n")
    assert (await run_python_scorer(out_of_range, "a", "b", {})).score is None


def judge_experiment(folder: Path, llm: str) -> Path:
    extra = (
        "  - name: polite\n    type: llm_judge\n    node: answer\n"
        f"    rubric: The answer is correct and polite.\n    llm: {llm}\n    threshold: 0.7\n"
    )
    return quiz_experiment(folder, extra=extra)


async def test_llm_judge_through_the_engine_on_a_real_http_server(
    home: Path, tmp_path: Path, openai_server: OpenAIServer
) -> None:
    llm = f'{{provider: openai, model: gpt-4o-mini, api_base: "{openai_server.base_url}"}}'
    experiment = load_experiment(judge_experiment(tmp_path, llm))
    openai_server.script(
        Reply.ok(
            json.dumps({"score": 0.8, "reason": "Correct.\nAnd polite."}),
            prompt_tokens=120,
            completion_tokens=15,
        ),
        Reply.ok(json.dumps({"score": 1.7, "reason": "Too kind"})),
        Reply.ok("no json at all"),
    )
    scorer = CellScorer(experiment, arun_workflow)
    variant, item = experiment.variants["big"], experiment.items[0]
    judging = {"home": home, "experiment": "e1", "variant": "big", "tags": {"experiment": "e1"}}
    first = (await scorer.score(variant, item, 0, run_result("Paris"), judging))[2]
    assert (first.score, first.passed, first.reason) == (0.8, True, "Correct. And polite.")
    assert first.cost_usd is not None and first.cost_usd > 0  # LiteLLM's price of the usage
    sent = openai_server.requests[0].json
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0
    assert "The answer is correct and polite." in sent["messages"][-1]["content"]
    assert "Paris" in sent["messages"][-1]["content"]
    clipped = (await scorer.score(variant, item, 0, run_result("Paris"), judging))[2]
    assert clipped.score == 1.0 and clipped.reason.startswith("score 1.7 clipped to [0, 1]")
    unreadable = (await scorer.score(variant, item, 0, run_result("Paris"), judging))[2]
    assert unreadable.score is None and unreadable.passed is None
    assert "judge's run failed" in unreadable.reason


async def test_a_simulated_judge_grades_against_the_expected_answer(
    home: Path, tmp_path: Path
) -> None:
    extra = (
        "  - name: graded\n    type: llm_judge\n    node: answer\n    rubric: Correct?\n"
        "    expected: {column: answer}\n"
        "    llm: {provider: simulated, model: gpt-4.1, simulate: {latency_ms: 0}}\n"
    )
    experiment = load_experiment(quiz_experiment(tmp_path, extra=extra))
    scorer = CellScorer(experiment, arun_workflow)
    variant, item = experiment.variants["big"], experiment.items[0]
    judging = {"home": home, "simulate": True, "tags": {}}
    right = [
        (await scorer.score(variant, item, r, run_result("Paris"), judging))[2] for r in range(6)
    ]
    wrong = [
        (await scorer.score(variant, item, r, run_result("Lyon"), judging))[2] for r in range(6)
    ]
    assert all(s.reason.startswith("simulated judge:") for s in right + wrong)
    mean_right = sum(s.score for s in right) / 6
    mean_wrong = sum(s.score for s in wrong) / 6
    assert mean_right > 0.7 and mean_wrong < 0.3  # a large judge is rarely far off
    assert len({s.score for s in right + wrong}) > 2  # repeats are fresh judge samples

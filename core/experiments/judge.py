"""The `llm_judge` scorer: a rubric sent to a model through the engine, returning a score in
[0, 1] and a one-line reason.

The judge is an ordinary one-node workflow (`judge_<scorer>`), so its calls are budgeted,
priced, retried and recorded like any other: its spend shows in cost reports and counts
against the experiment's `max_cost`. Offline, a simulated judge reads the answer as a
simulated model of its class would (docs/experiments.md): against the expected value when
there is one, else by the quality the answering model's class makes likely, with noise that
shrinks as the judge model grows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from core.experiments.model import Judge
from core.experiments.scorers import Verdict
from core.providers.base import Reference
from core.providers.simulated import answer_quality
from core.workflow import Workflow, parse_workflow
from core.workflow.templates import to_text

JUDGE_NODE = "verdict"
JUDGE_MAX_OUTPUT = 200
SYSTEM = (
    "You are a strict, fair grader. You judge one answer against a rubric and reply with a "
    "score from 0 (fails the rubric) to 1 (fully meets it) and a one-line reason."
)
PROMPT = """Rubric: {rubric}

Input: {{inputs.question}}
{expected}Answer to grade:
{{inputs.answer}}"""
EXPECTED_LINE = "Expected answer: {inputs.expected}\n"
_WORD = re.compile(r"\w+")


def judge_workflow(scorer: Judge) -> Workflow:
    """The judge of `scorer` as a workflow; its model settings default to a deterministic,
    short reply from the workflow format's default model."""
    llm = {"temperature": 0, "max_output_tokens": JUDGE_MAX_OUTPUT}
    llm |= scorer.llm.model_dump(exclude_none=True)
    rubric = scorer.rubric.replace("{", "{{").replace("}", "}}")
    expected = EXPECTED_LINE if scorer.expected is not None else ""
    document = {
        "workflow": {
            "name": f"judge_{scorer.name}",
            "description": f"LLM judge of the experiment scorer '{scorer.name}'",
            "llm": llm,
        },
        "inputs": {"question": "string", "expected": "string", "answer": "string"},
        "nodes": [
            {
                "name": JUDGE_NODE,
                "system": SYSTEM,
                "prompt": PROMPT.format(rubric=rubric, expected=expected),
                "output": "json",
                "schema": {"score": "number", "reason": "string"},
            }
        ],
    }
    return parse_workflow(yaml.safe_dump(document, sort_keys=False), f"<judge {scorer.name}>")


def judge_inputs(output: Any, expected: Any, inputs: dict[str, Any]) -> dict[str, str]:
    question = "\n".join(f"{name}: {to_text(value)}" for name, value in inputs.items())
    return {"question": question, "expected": to_text(expected), "answer": to_text(output)}


def similarity(output: Any, expected: Any) -> float:
    """1 when the expected text appears in the answer, else the word-overlap F1 of the two."""
    answer, wanted = to_text(output).casefold(), to_text(expected).casefold()
    if wanted.strip() and wanted.strip() in answer:
        return 1.0
    got, want = set(_WORD.findall(answer)), set(_WORD.findall(wanted))
    common = len(got & want)
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class Answered:
    """What a simulated judge needs to know about the answer it grades."""

    provider: str
    model: str
    instructions: str  # the answering node's prompt and system, as written
    item: str


def simulated_verdict(output: Any, expected: Any, answered: Answered | None) -> Reference:
    """The grade a perfect simulated judge would give, as the judge node's right answer."""
    if expected is not None:
        quality = similarity(output, expected)
        basis = "compared with the expected answer"
    elif answered is not None:
        quality = answer_quality(
            answered.provider, answered.model, answered.instructions, answered.item, to_text(output)
        )
        basis = f"as a simulated {answered.model} answer"
    else:
        quality, basis = 0.5, "with nothing to compare against"
    if quality >= 0.8:
        reading = "meets the rubric"
    elif quality >= 0.5:
        reading = "partly meets the rubric"
    else:
        reading = "misses the rubric"
    item = answered.item if answered is not None else ""
    reason = f"simulated judge: {reading}, {basis}"
    return Reference({"score": round(quality, 2), "reason": reason}, item=item)


def read_verdict(output: Any) -> Verdict:
    """The judge's JSON reply as a verdict: the score clipped to [0, 1] (and said so), the
    reason cut to one line."""
    score = output.get("score") if isinstance(output, dict) else None
    reason = output.get("reason") if isinstance(output, dict) else None
    if not isinstance(score, int | float) or isinstance(score, bool):
        return Verdict(None, f"the judge gave no score: {to_text(output)[:120]}")
    line = " ".join(to_text(reason).split())[:200]
    if not 0 <= score <= 1:
        line = f"score {score:g} clipped to [0, 1]; {line}"
        score = min(1.0, max(0.0, float(score)))
    return Verdict(float(score), line)

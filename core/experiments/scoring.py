"""Scoring one cell: what each scorer looks at, what it compares with, and its verdict.

A scorer reads a named node's output, or the workflow's outputs (the value itself when there
is one output, a mapping of them otherwise), and compares it with a literal, a template over
the item's inputs, or a dataset column. A cell whose run did not succeed scores 0 on every
scorer: a variant must not look better by failing on the hard items.

For a simulated run the same expectations become the nodes' references (the right answers
the simulated provider knows), so a simulated experiment has differences worth reading.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from core.engine.results import RunResult
from core.experiments import scorers
from core.experiments.dataset import Item
from core.experiments.judge import (
    JUDGE_NODE,
    Answered,
    judge_inputs,
    judge_workflow,
    read_verdict,
    simulated_verdict,
)
from core.experiments.loader import Experiment
from core.experiments.model import COMPARED, Judge, Python
from core.experiments.python_scorer import run_python_scorer
from core.experiments.validation import WHOLE_RUN, column_of
from core.experiments.variants import Variant
from core.providers.base import Reference
from core.workflow.models import LLMNode
from core.workflow.templates import TemplateValues, compile_template

# arun_workflow's signature: the live runner passes the engine itself, the demo a stand-in
# that computes the same runs without waiting for them.
RunFn = Callable[..., Awaitable[RunResult]]

DEFAULT_THRESHOLD = 1.0
GRADED_THRESHOLD = 0.5  # python and llm_judge give graded scores
OUTPUT_KEEP = 2_000  # characters of each scored output kept with its cell
OUTPUTS = "outputs"  # the label of a scorer that reads the workflow's outputs


@dataclass(frozen=True)
class Score:
    scorer: str
    score: float | None  # None: the scorer could not judge this cell
    passed: bool | None
    reason: str
    cost_usd: float | None = None  # what judging cost (llm_judge)


def threshold(scorer: Any) -> float:
    if scorer.threshold is not None:
        return float(scorer.threshold)
    return GRADED_THRESHOLD if scorer.type in ("python", "llm_judge") else DEFAULT_THRESHOLD


def target_label(scorer: Any) -> str:
    """What a scorer reads, as cells and reports label it: a node's name, `outputs`, or the
    cell's `run` (cost and latency scorers)."""
    if scorer.type in WHOLE_RUN:
        return "run"
    return scorer.node or OUTPUTS


class CellScorer:
    """Scores the cells of one experiment."""

    def __init__(self, experiment: Experiment, run: RunFn) -> None:
        self.experiment = experiment
        self.scorers = experiment.spec.scorers
        self.run = run
        self.judges = {s.name: judge_workflow(s) for s in self.scorers if isinstance(s, Judge)}
        self.patterns = {s.name: re.compile(s.pattern) for s in self.scorers if s.type == "regex"}
        self.validators = {
            s.name: _validator(s.schema_) for s in self.scorers if s.type == "json_schema"
        }

    # ------------------------------------------------------------------ what is compared

    def expected(self, scorer: Any, item: Item) -> Any:
        """The value a scorer compares with for `item` (None: it has none)."""
        value = getattr(scorer, "expected", None)
        column = column_of(value)
        if column is not None:
            return item.values.get(column)
        if isinstance(value, str):
            return compile_template(value).render(TemplateValues(item.inputs, {}, {}))
        return value

    def target(self, scorer: Any, variant: Variant, result: RunResult) -> Any:
        if scorer.node is not None:
            node = result.nodes.get(scorer.node)
            return node.output if node is not None else None
        outputs = variant.workflow.outputs
        if len(outputs) == 1:
            return result.outputs.get(outputs[0])
        return dict(result.outputs)

    def references(self, variant: Variant, item: Item) -> dict[str, Reference]:
        """The right answer per node that a scorer's expectation implies (the first scorer
        on a node wins), for the simulated provider."""
        found: dict[str, Reference] = {}
        outputs = variant.workflow.outputs
        for scorer in self.scorers:
            if scorer.type not in COMPARED:
                continue
            node = scorer.node or (outputs[0] if len(outputs) == 1 else None)
            expected = self.expected(scorer, item)
            if node is None or node in found or expected is None:
                continue
            if scorer.type == "json_field_equals":
                if "." in scorer.field:
                    continue
                expected = {scorer.field: expected}
            choices = self.experiment.choices.get(scorer.name, ())
            found[node] = Reference(expected, choices, item.key)
        return found

    # ------------------------------------------------------------------ scoring

    async def score(
        self, variant: Variant, item: Item, repeat: int, result: RunResult, judging: dict[str, Any]
    ) -> list[Score]:
        """Every scorer's verdict on one cell; `judging` is what a judge's run is given
        (data folder, simulate, tags, the experiment's budget...)."""
        if result.status != "success":
            reason = f"the run {result.status.replace('_', ' ')}: {result.error or 'no detail'}"
            return [Score(s.name, 0.0, False, reason[:300]) for s in self.scorers]
        # Most scorers are plain functions: only a judge or sandboxed code is awaited.
        waiting = [
            self._awaited(s, variant, item, repeat, result, judging)
            for s in self.scorers
            if isinstance(s, Judge | Python)
        ]
        awaited = iter(await asyncio.gather(*waiting)) if waiting else iter(())
        return [
            next(awaited) if isinstance(s, Judge | Python) else self._now(s, item, variant, result)
            for s in self.scorers
        ]

    def _now(self, scorer: Any, item: Item, variant: Variant, result: RunResult) -> Score:
        if scorer.type in WHOLE_RUN:
            check = scorers.max_cost if scorer.type == "max_cost" else scorers.max_latency
            return _scored(scorer, check(result, scorer.limit))
        expected = self.expected(scorer, item)
        if expected is None and scorer.type in COMPARED:
            return _scored(
                scorer, scorers.Verdict(None, f"item {item.number} has no expected value")
            )
        return _scored(
            scorer, self._deterministic(scorer, self.target(scorer, variant, result), expected)
        )

    async def _awaited(
        self,
        scorer: Judge | Python,
        variant: Variant,
        item: Item,
        repeat: int,
        result: RunResult,
        judging: dict[str, Any],
    ) -> Score:
        output = self.target(scorer, variant, result)
        if isinstance(scorer, Python):
            verdict = await run_python_scorer(
                scorer, output, self.expected(scorer, item), item.inputs
            )
            return _scored(scorer, verdict)
        verdict, cost = await self._judge(scorer, variant, item, repeat, output, judging)
        return _scored(scorer, verdict, cost)

    def _deterministic(self, scorer: Any, output: Any, expected: Any) -> scorers.Verdict:
        kind = scorer.type
        if kind == "equals":
            return scorers.equals(output, expected)
        if kind == "contains":
            return scorers.contains(output, expected)
        if kind == "icontains":
            return scorers.icontains(output, expected)
        if kind == "regex":
            return scorers.regex(output, self.patterns[scorer.name])
        if kind == "json_valid":
            return scorers.json_valid(output)
        if kind == "json_schema":
            return scorers.json_schema(output, self.validators[scorer.name])
        if kind == "json_field_equals":
            return scorers.json_field_equals(output, scorer.field, expected)
        verdict = scorers.number_close(output, expected, scorer.tolerance, scorer.relative)
        return verdict or scorers.Verdict(None, f"the expected value {expected!r} is no number")

    async def _judge(
        self,
        scorer: Judge,
        variant: Variant,
        item: Item,
        repeat: int,
        output: Any,
        judging: dict[str, Any],
    ) -> tuple[scorers.Verdict, float | None]:
        expected = self.expected(scorer, item)
        reference = simulated_verdict(output, expected, self._answered(scorer, variant, item))
        tags = {**judging.get("tags", {}), "role": "judge", "scorer": scorer.name}
        result = await self.run(
            self.judges[scorer.name],
            judge_inputs(output, expected, item.inputs),
            **{**judging, "tags": tags},
            use_cache=False,
            sample=repeat,
            references={JUDGE_NODE: reference},
        )
        if result.status != "success":
            return scorers.Verdict(None, f"the judge's run {result.status}: {result.error}"), (
                result.cost_usd
            )
        return read_verdict(result.outputs.get(JUDGE_NODE)), result.cost_usd

    def _answered(self, scorer: Judge, variant: Variant, item: Item) -> Answered | None:
        """Who answered what the judge grades: the node's model and prompt as written."""
        name = scorer.node or (variant.workflow.outputs[0] if variant.workflow.outputs else None)
        node = variant.workflow.nodes.get(name) if name else None
        if not isinstance(node, LLMNode):
            return None
        llm = variant.workflow.llm_for(node)
        instructions = f"{node.system or ''}\n{node.prompt}"
        return Answered(llm.provider, llm.model, instructions, item.key)

    def cell_output(self, variant: Variant, result: RunResult) -> str:
        """What the scorers read, kept with the cell for the per-item view (JSON text)."""
        shown: dict[str, Any] = {}
        for scorer in self.scorers:
            label = target_label(scorer)
            if label not in shown and scorer.type not in WHOLE_RUN:
                shown[label] = _kept(self.target(scorer, variant, result))
        return json.dumps(shown, ensure_ascii=False, default=str)


def _scored(scorer: Any, verdict: scorers.Verdict, cost: float | None = None) -> Score:
    passed = None if verdict.score is None else verdict.score >= threshold(scorer)
    return Score(scorer.name, verdict.score, passed, verdict.reason, cost)


def _kept(value: Any) -> Any:
    if isinstance(value, str) and len(value) > OUTPUT_KEEP:
        return value[: OUTPUT_KEEP - 1] + "…"
    if isinstance(value, dict):
        return {key: _kept(sub) for key, sub in value.items()}
    return value


def _validator(schema: dict[str, Any]) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema)

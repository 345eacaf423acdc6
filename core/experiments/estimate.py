"""What an experiment will cost before anything runs: every variant's runs and every judge call.

Each variant is estimated as the `run --dry-run --estimate-cost` estimate does it: input
tokens counted on the prompts rendered with an item's inputs, output lengths from the
recorded history of the same node and model (or wide defaults without history). Items are
estimated one by one up to ESTIMATED_ITEMS of them (spread over the dataset) and the mean
scaled to all: counting tokens costs milliseconds per run, and thousands of items add
nothing but time. A judge's prompt holds the answer it grades, counted at the length the
graded node is expected to write. Repeats bypass the cache, so no cache hit is assumed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.analytics.estimate import Estimate, estimate, output_history
from core.experiments.dataset import Item
from core.experiments.judge import JUDGE_NODE, judge_inputs
from core.experiments.loader import Experiment
from core.experiments.model import Judge
from core.experiments.scoring import CellScorer, RunFn
from core.formatting import aligned, money
from core.settings import data_home
from core.workflow import Workflow
from core.workflow.models import LLMNode

ESTIMATED_ITEMS = 25
# A stand-in for a graded answer of n tokens: " word" is one token in the common encodings.
_TOKEN = " word"


@dataclass
class Range:
    cost_usd: float = 0.0
    low: float = 0.0
    high: float = 0.0

    def add(self, other: Range, times: float = 1.0) -> None:
        self.cost_usd += other.cost_usd * times
        self.low += other.low * times
        self.high += other.high * times


@dataclass
class VariantEstimate:
    name: str
    runs: int
    per_run: Range
    total: Range
    unpriced: list[str] = field(default_factory=list)  # nodes with no known price


@dataclass
class JudgeEstimate:
    scorer: str
    model: str
    calls: int
    per_call: Range
    total: Range


@dataclass
class ExperimentEstimate:
    name: str
    simulated: bool
    cells: int
    items: int
    estimated_items: int
    repeats: int
    variants: list[VariantEstimate]
    judges: list[JudgeEstimate]
    total: Range
    max_cost: float | None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["cost_usd"] = self.total.cost_usd
        document["cost_low"] = self.total.low
        document["cost_high"] = self.total.high
        return document


def _spread(items: list[Item], size: int) -> list[Item]:
    """Up to `size` items evenly spread over the dataset (deterministic)."""
    if len(items) <= size:
        return items
    step = len(items) / size
    return [items[int(index * step)] for index in range(size)]


def _mean(found: list[Estimate]) -> Range:
    n = len(found)
    return Range(
        sum(e.cost_usd for e in found) / n,
        sum(e.cost_low for e in found) / n,
        sum(e.cost_high for e in found) / n,
    )


def estimate_experiment(
    experiment: Experiment, *, simulate: bool, run: RunFn, home: str | Path | None = None
) -> ExperimentEstimate:
    folder = data_home(home)
    scorer = CellScorer(experiment, run)
    chosen = _spread(experiment.items, ESTIMATED_ITEMS)
    runs_per_variant = len(experiment.items) * experiment.spec.repeats
    variants, judges = [], []
    total = Range()
    outputs: dict[str, dict[str, int]] = {}  # variant -> node -> mean output tokens
    for name, variant in experiment.variants.items():
        history = output_history(folder, variant.workflow.name, simulate)
        found = [
            estimate(
                variant.workflow,
                item.inputs,
                simulate=simulate,
                use_cache=False,
                home=folder,
                history=history,
            )
            for item in chosen
        ]
        per_run = _mean(found)
        variant_total = Range()
        variant_total.add(per_run, runs_per_variant)
        total.add(variant_total)
        unpriced = sorted({node for e in found for node in e.unpriced})
        variants.append(VariantEstimate(name, runs_per_variant, per_run, variant_total, unpriced))
        outputs[name] = {
            node.name: round(
                sum(n.output_tokens for e in found for n in e.nodes if n.name == node.name)
                / len(found)
            )
            for node in found[0].nodes
        }
    for spec in experiment.spec.scorers:
        if isinstance(spec, Judge):
            judge = _judge(experiment, scorer, spec, chosen, outputs, simulate, folder)
            judges.append(judge)
            total.add(judge.total)
    max_cost = experiment.spec.max_cost
    warnings = list(experiment.warnings)
    if max_cost is not None and total.high > max_cost:
        warnings.append(
            f"the high estimate {money(total.high)} exceeds max_cost {money(max_cost)}: the "
            "experiment may stop before its last cells (finish them later with --resume)"
        )
    for variant in variants:
        if variant.unpriced:
            warnings.append(
                f"variant {variant.name}: no known price for {', '.join(variant.unpriced)}; "
                "their cost is not in the total"
            )
    return ExperimentEstimate(
        name=experiment.name,
        simulated=simulate,
        cells=experiment.cells,
        items=len(experiment.items),
        estimated_items=len(chosen),
        repeats=experiment.spec.repeats,
        variants=variants,
        judges=judges,
        total=total,
        max_cost=max_cost,
        warnings=warnings,
    )


def _judge(
    experiment: Experiment,
    scorer: CellScorer,
    spec: Judge,
    chosen: list[Item],
    outputs: dict[str, dict[str, int]],
    simulate: bool,
    home: Path,
) -> JudgeEstimate:
    workflow: Workflow = scorer.judges[spec.name]
    history = output_history(home, workflow.name, simulate)
    total, per_call = Range(), Range()
    calls = 0
    for name, variant in experiment.variants.items():
        node = spec.node or (variant.workflow.outputs[0] if variant.workflow.outputs else "")
        answer = _TOKEN * outputs[name].get(node, 0)
        found = [
            estimate(
                workflow,
                judge_inputs(answer, scorer.expected(spec, item), item.inputs),
                simulate=simulate,
                use_cache=False,
                home=home,
                history=history,
            )
            for item in chosen
        ]
        variant_calls = len(experiment.items) * experiment.spec.repeats
        mean = _mean(found)
        total.add(mean, variant_calls)
        per_call.add(mean, 1 / len(experiment.variants))
        calls += variant_calls
    node = workflow.nodes[JUDGE_NODE]
    assert isinstance(node, LLMNode)
    llm = workflow.llm_for(node)
    return JudgeEstimate(spec.name, f"{llm.provider}/{llm.model}", calls, per_call, total)


def render_estimate(found: ExperimentEstimate) -> str:
    mode = " (simulated: what the calls would cost)" if found.simulated else ""
    lines = [
        f"Estimate for experiment {found.name}{mode}",
        f"{found.cells:,} cells = {found.items:,} items × {len(found.variants)} variants × "
        f"{found.repeats} repeats, estimated on {found.estimated_items} of the items",
        "",
    ]
    rows = [("variant", "per run", "runs", "total")]
    for variant in found.variants:
        rows.append(
            (variant.name, _range(variant.per_run), f"{variant.runs:,}", _range(variant.total))
        )
    for judge in found.judges:
        label = f"judge {judge.scorer} ({judge.model})"
        rows.append((label, _range(judge.per_call), f"{judge.calls:,}", _range(judge.total)))
    lines += aligned(rows)
    budget = f" · max_cost {money(found.max_cost)}" if found.max_cost is not None else ""
    lines += ["", f"Total: {_range(found.total)}{budget}"]
    lines += [f"warning: {warning}" for warning in found.warnings]
    return "\n".join(lines)


def _range(value: Range) -> str:
    return f"{money(value.cost_usd)} ({money(value.low)}..{money(value.high)})"

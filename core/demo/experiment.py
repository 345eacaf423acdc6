"""A finished example experiment in the demo history, so the Experiments page has one to show.

Running the example for real takes its simulated latency (a dozen seconds); the demo must
take one or two. So the experiment runner runs it as it runs any experiment (cells, scores,
judges, telemetry, all through the same code) with one difference: each run is computed
instead of waited for. `EmulatedRuns` stands in for the engine's `arun_workflow`: it renders
each node's request as the engine does, takes the simulated provider's reply and the
latency it would have slept (`SimulatedProvider.answer_now`), prices it from the price book,
and lays the nodes out on the DAG's earliest starts. Its runs are recorded like the
engine's, marked simulated and tagged `source=demo`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.catalog.prices import PriceBook
from core.catalog.tokens import count_message_tokens
from core.catalog.usage import Usage
from core.demo.history import DEMO_TAG
from core.engine.budget import Budget, BudgetExceeded
from core.engine.inputs import check_inputs
from core.engine.llm_node import SHARED_BUDGET, build_request, decode_output
from core.engine.results import NodeResult, RunResult
from core.experiments.loader import load_experiment
from core.experiments.runner import Outcome, run_experiment
from core.providers.base import Reference
from core.providers.simulated import SimulatedProvider
from core.resources import EXAMPLE_EXPERIMENTS
from core.telemetry import get_store
from core.telemetry.rows import node_row, run_row, workflow_row
from core.workflow import Workflow
from core.workflow.models import LLMNode
from core.workflow.templates import TemplateValues

DEMO_EXPERIMENT = EXAMPLE_EXPERIMENTS / "model_choice.yaml"
ENGINE_OVERHEAD = timedelta(milliseconds=2)
STARTED_AGO = timedelta(hours=2)  # when the demo's experiment "ran"
RUN_SPACING = timedelta(milliseconds=40)  # between the starts of consecutive cells


class EmulatedRuns:
    """`arun_workflow` for simulated LLM-only workflows, computed rather than waited for."""

    def __init__(self, home: Path, start: datetime) -> None:
        self.store = get_store(home)
        self.clock = start
        self.provider = SimulatedProvider()

    async def __call__(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        tags: Mapping[str, str],
        experiment: str,
        variant: str | None,
        sample: int,
        references: Mapping[str, Reference],
        shared_budget: Budget | None,
        **_engine_only: Any,
    ) -> RunResult:
        values = check_inputs(workflow, dict(inputs))
        run_id = uuid.uuid4().hex
        started = self.clock
        self.clock += RUN_SPACING
        prices = PriceBook(workflow.spec.pricing)
        outputs: dict[str, Any] = {}
        results: dict[str, NodeResult] = {}
        failure = None
        for name in workflow.graph.topological:
            node = workflow.nodes[name]
            if not isinstance(node, LLMNode):
                raise ValueError(f"the demo computes LLM nodes only, not {node.type} node {name}")
            begin = max(
                (results[p].finished_at for p in workflow.graph.parents[name]), default=started
            )
            result = self._node(
                workflow,
                node,
                TemplateValues(values, outputs, {}),
                begin + ENGINE_OVERHEAD,
                prices,
                sample,
                references.get(name),
                shared_budget,
            )
            results[name] = result
            if not result.ok:
                failure = f"node '{name}' {result.status}: {result.error}"
                break
            outputs[name] = result.output
        finished = max((r.finished_at for r in results.values()), default=started)
        called = [r for r in results.values() if r.attempts]
        priced = [r.cost_usd for r in called if r.cost_usd is not None]
        cost = sum(priced) if priced or not called else None
        status = "success" if failure is None else results[list(results)[-1]].status
        result = RunResult(
            run_id=run_id,
            workflow=workflow.name,
            workflow_hash=workflow.hash,
            status=status,
            started_at=started,
            finished_at=finished,
            duration_ms=(finished - started).total_seconds() * 1000,
            outputs={n: outputs[n] for n in workflow.outputs if n in outputs},
            nodes=results,
            input_tokens=sum(r.input_tokens for r in results.values()),
            output_tokens=sum(r.output_tokens for r in results.values()),
            cost_usd=cost,
            unpriced_calls=len(called) - len(priced),
            simulated=True,
            simulated_cost_usd=cost if called else None,
            error=failure,
            tags={**tags, DEMO_TAG[0]: DEMO_TAG[1]},
        )
        self._record(workflow, result, experiment, variant, values)
        return result

    def _node(
        self,
        workflow: Workflow,
        node: LLMNode,
        values: TemplateValues,
        begin: datetime,
        prices: PriceBook,
        sample: int,
        reference: Reference | None,
        shared_budget: Budget | None,
    ) -> NodeResult:
        request = build_request(workflow, node, values, True, sample=sample, reference=reference)
        result = NodeResult(
            name=node.name,
            node_type="llm",
            status="success",
            started_at=begin,
            finished_at=begin,
            duration_ms=0.0,
            provider=request.provider,
            model=request.model,
            simulated=True,
            request_hash=request.fingerprint[:32],
        )
        reservation = None
        if shared_budget is not None:
            prompt = count_message_tokens(request.provider, request.model, request.messages)
            worst = Usage(prompt, request.max_output_tokens)
            try:
                reservation = shared_budget.reserve(
                    worst.tokens, prices.cost(request.provider, request.model, worst)
                )
            except BudgetExceeded as exc:
                result.status, result.error = "budget_exceeded", f"{SHARED_BUDGET}: {exc}"
                return result
        reply, delay = self.provider.answer_now(request)
        result.attempts = 1
        usage = reply.usage
        result.input_tokens, result.output_tokens = usage.input_tokens, usage.output_tokens
        result.cost_usd = prices.cost(request.provider, request.model, usage)
        if reservation is not None and shared_budget is not None:
            shared_budget.settle(reservation, usage.tokens, result.cost_usd)
        result.output = decode_output(node, reply.text)
        result.finished_at = begin + timedelta(seconds=delay)
        result.duration_ms = delay * 1000
        return result

    def _record(
        self,
        workflow: Workflow,
        result: RunResult,
        experiment: str,
        variant: str | None,
        inputs: dict[str, Any],
    ) -> None:
        self.store.workflow_seen(
            workflow_row(
                workflow_hash=workflow.hash,
                workflow=workflow.name,
                workflow_file=workflow.filename,
                source=workflow.source,
                first_seen=result.started_at,
            )
        )
        for node in result.nodes.values():
            row = node_row(
                node,
                run_id=result.run_id,
                node=node.name,
                workflow=workflow.name,
                workflow_hash=workflow.hash,
                run_started_at=result.started_at,
            )
            self.store.node_finished(row)
        self.store.run_finished(
            run_row(
                run_id=result.run_id,
                workflow=workflow.name,
                workflow_hash=workflow.hash,
                started_at=result.started_at,
                finished_at=result.finished_at,
                duration_ms=result.duration_ms,
                status=result.status,
                input_tokens=result.input_tokens,
                output_tokens=result.output_tokens,
                cost_usd=result.cost_usd,
                simulated_cost_usd=result.simulated_cost_usd,
                unpriced_calls=result.unpriced_calls,
                cache_hits=0,
                saved_cost_usd=0.0,
                simulated=True,
                experiment=experiment,
                variant=variant,
                error=result.error,
                tags=json.dumps(result.tags),
                inputs=json.dumps(inputs, default=str),
                node_count=len(workflow.nodes),
                workflow_file=workflow.filename,
            )
        )


def has_experiments(home: Path) -> bool:
    return bool(get_store(home).query("SELECT EXISTS (SELECT 1 FROM experiments)")[0][0])


def seed_demo_experiment(home: Path, now: datetime | None = None) -> Outcome | None:
    """Runs the example experiment into `home` as if two hours ago; None when the database
    already holds an experiment (a demo one or the user's own)."""
    if has_experiments(home):
        return None
    start = (now or datetime.now(UTC)) - STARTED_AGO
    experiment = load_experiment(DEMO_EXPERIMENT)
    outcome = asyncio.run(
        run_experiment(experiment, simulate=True, home=home, run=EmulatedRuns(home, start))
    )
    get_store(home).flush()
    return outcome


def describe_experiment(outcome: Outcome | None) -> str:
    if outcome is None:
        return "  the database already holds an experiment: no example experiment added"
    return (
        f"  and the example experiment {outcome.name} ({outcome.cells:,} cells, simulated): "
        f"configurable-agents experiment report {outcome.experiment_id}"
    )

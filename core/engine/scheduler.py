"""The scheduler: runs a workflow's DAG on one asyncio loop.

Each node starts the moment its last parent finishes (no level-by-level waves), so a slow
branch never holds up an independent one; calls in flight are bounded by `max_concurrency`.
When a node fails or the budget runs out, nothing new starts, nodes already running finish
(their spend is real and worth recording) and the run ends with the matching status.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.catalog.key_variables import redact, secret_values
from core.catalog.litellm_runtime import loaded as litellm_loaded
from core.catalog.litellm_runtime import warm as warm_litellm
from core.catalog.prices import PriceBook
from core.catalog.tokens import encoder_loaded, preload_encoders
from core.engine.budget import Budget
from core.engine.code_node import memory_namespace, run_code_node
from core.engine.inputs import check_inputs
from core.engine.keys import check_keys, real_calls
from core.engine.live_export import export_finished_run
from core.engine.llm_node import LLMContext, run_llm_node
from core.engine.memory import memory_store
from core.engine.response_cache import response_cache
from core.engine.results import NodeResult, RunResult
from core.providers.base import LLMRequest, Reference
from core.providers.simulated import SimulatedProvider
from core.settings import data_home
from core.telemetry import TelemetryStore, get_store
from core.telemetry.content import content_events
from core.telemetry.rows import node_row, run_row, workflow_row
from core.workflow import Workflow, load_workflow
from core.workflow.models import CodeNode, LLMNode
from core.workflow.templates import TemplateValues

EventHandler = Callable[[str, Mapping[str, Any]], None]


class _Run:
    def __init__(
        self,
        workflow: Workflow,
        inputs: dict[str, Any],
        *,
        simulate: bool,
        use_cache: bool,
        home: Path,
        tags: dict[str, str],
        experiment: str | None,
        variant: str | None,
        on_event: EventHandler | None,
        sample: int = 0,
        references: Mapping[str, Reference] | None = None,
        shared_budget: Budget | None = None,
    ) -> None:
        self.workflow = workflow
        self.inputs = inputs
        self.simulate = simulate
        self.tags = tags
        self.experiment = experiment
        self.variant = variant
        self.on_event = on_event
        self.run_id = uuid.uuid4().hex
        self.store: TelemetryStore = get_store(home)
        spec = workflow.spec.workflow
        self.budget = Budget(spec.max_tokens, spec.max_cost)
        needs_real = not simulate and not workflow.only_simulated
        self.llm = LLMContext(
            workflow=workflow,
            simulate=simulate,
            use_cache=use_cache,
            cache=response_cache(home) if use_cache and _any_cached(workflow) else None,
            prices=PriceBook(workflow.spec.pricing),
            budget=self.budget,
            price_estimated_usage=workflow.spec.budget_settings.price_estimated_usage,
            semaphore=asyncio.Semaphore(spec.max_concurrency),
            real=_real_provider() if needs_real else None,
            simulated=SimulatedProvider(),
            sample=sample,
            references=references or {},
            shared_budget=shared_budget,
        )
        self.memory = memory_store(home)
        # Prompts and responses go to telemetry for simulated runs unless the workflow says
        # otherwise, and for real ones only when it asks (docs/telemetry.md).
        chosen = workflow.spec.workflow.telemetry.store_content
        self.store_content = (simulate or workflow.only_simulated) if chosen is None else chosen
        # Values of key variables, so an error echoing one is stored and shown redacted.
        self.secrets = secret_values(workflow.key_variables)
        self.outputs: dict[str, Any] = {}
        self.results: dict[str, NodeResult] = {}
        self.memory_read: dict[str, dict[str, Any]] = {}  # per LLM node, for exported content
        self.stop_reason: str | None = None
        self.failure: str | None = None
        self.final_totals: dict[str, Any] = {}  # set once the run ends
        self._waiting = {name: len(parents) for name, parents in workflow.graph.parents.items()}
        self._tasks: set[asyncio.Task[None]] = set()
        self._done = asyncio.Event()
        self._outstanding = 0

    def real_calls(self) -> list[LLMRequest]:
        """What keys and warm-ups need: none when every call is simulated."""
        return [] if self.llm.real is None else real_calls(self.workflow)

    def preflight(self) -> None:
        """Refuse before any spend when a real call would lack its key."""
        if self.llm.real is not None:
            check_keys(self.workflow)

    async def execute(self) -> str:
        self.started_at = datetime.now(UTC)
        self._clock = time.perf_counter()
        self.store.workflow_seen(
            workflow_row(
                workflow_hash=self.workflow.hash,
                workflow=self.workflow.name,
                workflow_file=self.workflow.filename,
                source=self.workflow.source,
                first_seen=self.started_at,
            )
        )
        self.store.run_started(self._run_row("running"))
        roots = [name for name, count in self._waiting.items() if count == 0]
        for name in roots:
            self._start(name)
        try:
            await self._done.wait()
        except asyncio.CancelledError:
            self.stop_reason = "cancelled"
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise
        finally:
            self.finish()
        return self.status

    def _start(self, name: str) -> None:
        self._outstanding += 1
        self._tasks.add(asyncio.create_task(self._worker(name), name=f"node:{name}"))

    async def _worker(self, name: str | None) -> None:
        """Run a node, then go straight on with one of the children it unblocked.

        Continuing in the same task spares a chain one task creation per node; the other
        children get tasks of their own and run in parallel. A worker removes itself from
        the task set as it ends: a done-callback would cost one more loop callback per task,
        all queued at once when a wide fan-out finishes.
        """
        try:
            while name is not None:
                ready = await self._run_node(name)
                for child in ready[1:]:
                    self._start(child)
                if ready:
                    name = ready[0]
                else:
                    name = None
                    self._outstanding -= 1
                    if self._outstanding == 0:
                        self._done.set()
        finally:
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _run_node(self, name: str) -> list[str]:
        """Run one node; return the children that became ready (none once the run stops)."""
        node = self.workflow.nodes[name]
        self._emit("node_started", name)
        try:
            namespace = memory_namespace(self.workflow, node)
            if isinstance(node, LLMNode):
                memory = self.memory.snapshot(namespace) if namespace else {}
                self.memory_read[name] = memory
                values = TemplateValues(self.inputs, self.outputs, memory)
                result = await run_llm_node(self.llm, node, values)
                if result.ok and namespace:
                    ttl = node.memory.ttl if node.memory else None
                    self.memory.set(namespace, node.name, result.output, ttl)
            else:
                waited = time.perf_counter()
                async with self.llm.semaphore:
                    queued = (time.perf_counter() - waited) * 1000
                    result = await run_code_node(
                        self.workflow,
                        node,
                        self.inputs,
                        self.outputs,
                        self.memory,
                        private=(str(self.store.home),),
                    )
                result.queue_ms = queued
        except asyncio.CancelledError:
            self._record(self._stub_result(node, "cancelled", "run cancelled"))
            raise
        except Exception as exc:  # a bug must fail the node, never hang the run
            result = self._stub_result(node, "failed", f"internal error: {exc!r}")
        self._record(result)
        if not result.ok:
            if self.stop_reason is None:
                self.stop_reason = (
                    "budget_exceeded" if result.status == "budget_exceeded" else "failed"
                )
                self.failure = f"node '{name}' {result.status}: {result.error}"
            return []
        self.outputs[name] = result.output
        if self.stop_reason is not None:
            return []
        ready = []
        for child in self.workflow.graph.children[name]:
            self._waiting[child] -= 1
            if self._waiting[child] == 0:
                ready.append(child)
        return ready

    @staticmethod
    def _stub_result(node: LLMNode | CodeNode, status: str, error: str) -> NodeResult:
        now = datetime.now(UTC)
        return NodeResult(
            name=node.name,
            node_type=node.type,
            status=status,
            started_at=now,
            finished_at=now,
            duration_ms=0.0,
            error=error,
        )

    def _record(self, result: NodeResult) -> None:
        if result.error and self.secrets:
            result.error = redact(result.error, self.secrets)
        self.results[result.name] = result
        if self.store_content and (result.cache_key is not None or result.ok):
            self._record_content(result)
        self.store.node_finished(
            node_row(
                result,
                run_id=self.run_id,
                run_started_at=self.started_at,
                node=result.name,
                workflow=self.workflow.name,
                workflow_hash=self.workflow.hash,
            )
        )
        self._emit("node_finished", result.name, result)

    def _record_content(self, result: NodeResult) -> None:
        """Spools the texts the node sent and received (a code node: its result, as JSON),
        before its node row, so one segment carries both (core.telemetry.content); key
        values stay redacted."""
        response = result.response
        if result.node_type == "code":
            response = json.dumps(result.output, ensure_ascii=False, default=str)
        texts = {"prompt": result.prompt, "system": result.system, "response": response}
        if self.secrets:
            texts = {k: v if v is None else redact(v, self.secrets) for k, v in texts.items()}
        events = content_events(
            self.run_id,
            result.name,
            self.started_at,
            texts,
            result.cache_key,
            result.finished_at,
        )
        for event, row in events:
            self.store.record(event, row)

    def _emit(self, kind: str, node: str, result: NodeResult | None = None) -> None:
        # Called twice per node: without a listener it must not even build a payload.
        if self.on_event is not None:
            payload: dict[str, Any] = {"run_id": self.run_id, "node": node}
            if result is not None:
                payload["result"] = result
            self.on_event(kind, payload)

    @property
    def status(self) -> str:
        if self.stop_reason:
            return self.stop_reason
        return "success"

    def finish(self) -> None:
        self.finished_at = datetime.now(UTC)
        self.duration_ms = (time.perf_counter() - self._clock) * 1000
        self.final_totals = self.totals()
        row = self._run_row(self.status)
        self.store.run_finished(row)
        export_finished_run(self, row)  # live traces / MLflow when configured; never raises

    def _run_row(self, status: str) -> dict[str, Any]:
        """The runs row; a 'running' row carries no totals, so none can outlive the final ones."""
        totals: dict[str, Any] = {}
        if status != "running":
            totals = {
                **self.final_totals,
                "finished_at": self.finished_at,
                "duration_ms": self.duration_ms,
                "error": self.failure if status != "success" else None,
            }
        return run_row(
            run_id=self.run_id,
            workflow=self.workflow.name,
            workflow_hash=self.workflow.hash,
            started_at=self.started_at,
            status=status,
            simulated=self.is_simulated,
            experiment=self.experiment,
            variant=self.variant,
            tags=json.dumps(self.tags) if self.tags else None,
            inputs=json.dumps(self.inputs, default=str),
            node_count=len(self.workflow.nodes),
            workflow_file=self.workflow.filename,
            **totals,
        )

    @property
    def models(self) -> set[tuple[str, str]]:
        return {
            (llm.provider, llm.model)
            for node in self.workflow.spec.nodes
            if isinstance(node, LLMNode)
            for llm in [self.workflow.llm_for(node)]
        }

    @property
    def counts_tokens(self) -> bool:
        """Simulated calls and budgeted runs count tokens locally before each call."""
        return (
            self.is_simulated
            or self.budget.max_tokens is not None
            or (self.budget.max_cost is not None)
            or self.llm.shared_budget is not None
        )

    @property
    def is_simulated(self) -> bool:
        return self.simulate or self.workflow.only_simulated

    def totals(self) -> dict[str, Any]:
        """The runs row's totals. Real and simulated calls are told apart call by call: the
        run's cost is that of its own kind (real calls for a real run), and the cost of any
        simulated call is kept apart, so no simulated dollar enters real spend. A cost is
        unknown only when calls were made and none of them had a price. The SQL that closes
        a dead writer's runs (core.telemetry.tables) applies the same rules."""
        nodes = self.results.values()
        called = [n for n in nodes if n.node_type == "llm" and n.attempts and not n.cache_hit]
        simulated = [n for n in called if n.simulated]
        own = simulated if self.is_simulated else [n for n in called if not n.simulated]
        return {
            "input_tokens": sum(n.input_tokens for n in nodes),
            "output_tokens": sum(n.output_tokens for n in nodes),
            "cached_tokens": sum(n.cached_tokens for n in nodes),
            "reasoning_tokens": sum(n.reasoning_tokens for n in nodes),
            "cost_usd": _cost_of(own),
            "simulated_cost_usd": _cost_of(simulated) if simulated else None,
            "unpriced_calls": sum(1 for n in called if n.cost_usd is None),
            "estimated_usage_calls": sum(1 for n in called if n.usage_estimated),
            "cache_hits": sum(1 for n in nodes if n.cache_hit),
            "saved_cost_usd": sum(n.saved_cost_usd or 0.0 for n in nodes if n.cache_hit),
        }

    def warnings(self) -> list[str]:
        warnings = list(self.budget.warnings)
        called = [n for n in self.results.values() if n.node_type == "llm" and n.attempts]
        estimated = [n.name for n in called if n.usage_estimated]
        if estimated:
            priced = self.workflow.spec.budget_settings.price_estimated_usage
            warnings.append(
                f"{len(estimated)} call{'s' * (len(estimated) > 1)} ({', '.join(estimated)}) "
                "came back without usage: tokens were counted locally and "
                + ("priced on that count" if priced else "their cost is unknown")
            )
        unpriced = sorted(
            {
                f"{n.provider}/{n.model}"
                for n in called
                if n.cost_usd is None and not n.usage_estimated
            }
        )
        if unpriced:
            budget = self.budget.max_cost is not None
            warnings.append(
                "no price known for "
                + ", ".join(unpriced)
                + (
                    ": their calls counted against max_tokens only, not max_cost"
                    if budget
                    else ": their cost is recorded as unknown; add them under pricing:"
                )
            )
        return warnings

    def result(self) -> RunResult:
        totals = self.final_totals
        return RunResult(
            run_id=self.run_id,
            workflow=self.workflow.name,
            workflow_hash=self.workflow.hash,
            status=self.status,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration_ms=self.duration_ms,
            outputs={
                name: self.outputs[name] for name in self.workflow.outputs if name in self.outputs
            },
            nodes={
                name: self.results[name]
                for name in self.workflow.graph.order
                if name in self.results
            },
            input_tokens=totals["input_tokens"],
            output_tokens=totals["output_tokens"],
            cost_usd=totals["cost_usd"],
            simulated_cost_usd=totals["simulated_cost_usd"],
            unpriced_calls=totals["unpriced_calls"],
            simulated=self.is_simulated,
            error=self.failure,
            warnings=self.warnings(),
            tags=self.tags,
        )


def _cost_of(calls: list[NodeResult]) -> float | None:
    priced = [n.cost_usd for n in calls if n.cost_usd is not None]
    return sum(priced) if priced or not calls else None


def _prepare(encoders: list[tuple[str, str]], pricing: bool) -> None:
    if pricing:
        warm_litellm()
    preload_encoders(encoders)


def _any_cached(workflow: Workflow) -> bool:
    return any(
        isinstance(node, LLMNode) and node.cache is not None and node.cache.enabled
        for node in workflow.spec.nodes
    )


def _real_provider() -> Any:
    from core.providers.litellm_provider import LiteLLMProvider

    return LiteLLMProvider()


async def arun_workflow(
    workflow: Workflow | str | os.PathLike[str],
    inputs: Mapping[str, Any] | None = None,
    *,
    simulate: bool = False,
    use_cache: bool = True,
    tags: Mapping[str, str] | None = None,
    experiment: str | None = None,
    variant: str | None = None,
    home: str | os.PathLike[str] | None = None,
    on_event: EventHandler | None = None,
    inputs_from_text: bool = False,
    sample: int = 0,
    references: Mapping[str, Reference] | None = None,
    shared_budget: Budget | None = None,
) -> RunResult:
    """Run a workflow; telemetry reaches DuckDB in the background (see core.telemetry).

    Raises WorkflowError, InputError or ProviderConfigError before anything runs; a failed,
    over-budget or cancelled run is a RunResult with that status, not an exception (except
    cancellation, which is recorded and then propagates).

    Experiments run each cell through here: `sample` is the repeat (a fresh sample of the
    same requests), `references` the right answer per node (read by the simulated provider
    only), and `shared_budget` a budget spanning many runs, which every call reserves on as
    well as on the run's own.
    """
    if not isinstance(workflow, Workflow):
        workflow = load_workflow(workflow)
    values = check_inputs(workflow, dict(inputs or {}), from_text=inputs_from_text)
    run = _Run(
        workflow,
        values,
        simulate=simulate,
        use_cache=use_cache,
        home=data_home(home),
        tags=dict(tags or {}),
        experiment=experiment,
        variant=variant,
        on_event=on_event,
        sample=sample,
        references=references,
        shared_budget=shared_budget,
    )
    missing = [p for p in run.models if not encoder_loaded(*p)] if run.counts_tokens else []
    if missing or (run.models and not litellm_loaded()):
        # LiteLLM (seconds to import; it prices every call and sends the real ones) and the
        # tokenizers (up to a few hundred ms each) load here, off the loop and before the
        # run's clock: in a node they would inflate its latency and stall parallel branches.
        await asyncio.to_thread(_prepare, missing, bool(run.models))
    run.preflight()
    calls = run.real_calls()
    if calls:
        from core.providers.litellm_provider import warm

        await warm(calls)  # LiteLLM's first call sets itself up: not inside a node
    try:
        await run.execute()
    finally:
        run.store.flush_soon()
    return run.result()


def run_workflow(
    workflow: Workflow | str | os.PathLike[str],
    inputs: Mapping[str, Any] | None = None,
    **options: Any,
) -> RunResult:
    """Blocking arun_workflow; telemetry is in DuckDB when it returns."""
    coroutine = arun_workflow(workflow, inputs, **options)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        result = asyncio.run(coroutine)
    else:  # called from inside an event loop (a notebook): run on a loop of its own
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["result"] = asyncio.run(coroutine)
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        result = box["result"]
    get_store(data_home(options.get("home"))).flush()
    return result

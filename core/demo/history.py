"""Demo history: weeks of simulated runs of the example workflows, so every page has data.

A first-time user opens the app to empty charts. Running hundreds of workflows to fill them
would take hours of (simulated) latency, so this module writes the rows directly through the
telemetry bulk path instead. The figures still come from the engine's own models, not from
invented numbers: input tokens are counted on each node's rendered prompt with the model's
tokenizer, output lengths and latencies follow the simulated provider's model classes and
spreads (JSON replies are sampled from the simulated provider itself), prices come from the
workflow's price book, budgets are enforced by the engine's `Budget`, a failed node stops the
run the way the scheduler does, and node start times are the DAG's earliest starts.

Every row is marked simulated and every run is tagged `source=demo`, so reports can leave
them out and nobody mistakes them for real spend. The same seed gives the same history
(relative to the moment it is generated).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import random
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from core.analytics.critical_path import critical_path
from core.catalog.prices import PriceBook
from core.catalog.tokens import count_message_tokens
from core.catalog.usage import Usage
from core.engine.budget import Budget, BudgetExceeded
from core.engine.llm_node import build_request
from core.errors import WorkflowError
from core.formatting import money
from core.providers.base import LLMReply, LLMRequest, ProviderError
from core.providers.simulated import (
    LATENCY_JITTER,
    LENGTH_SPREAD,
    ModelClass,
    SimulatedProvider,
    model_class,
)
from core.resources import EXAMPLE_WORKFLOWS
from core.settings import DB_FILE
from core.telemetry import get_store
from core.telemetry.rows import arrow_table, node_row, run_row, workflow_row
from core.workflow import ResolvedLLM, Workflow, load_workflow, with_models
from core.workflow.models import CodeNode, LLMNode, SimulateSettings
from core.workflow.templates import Reference, TemplateValues

EXAMPLES_DIR = EXAMPLE_WORKFLOWS
DEMO_TAG = ("source", "demo")
DEFAULT_DAYS = 30
DEFAULT_RUNS_PER_DAY = 40
DEFAULT_SEED = 7

# How often each example runs, relative to the others; files not listed get OTHER_WEIGHT.
WORKFLOW_MIX = {
    "research_fanout": 3.0,
    "cached_faq": 3.0,
    "article_writer": 2.0,
    "budgeted_summary": 1.5,
    "echo": 0.5,
}
OTHER_WEIGHT = 1.0
TEAMS = ("search", "support")
WORKFLOW_TEAM = {
    "research_fanout": "search",
    "article_writer": "search",
    "cached_faq": "support",
    "echo": "support",
}


@dataclass(frozen=True)
class Experiment:
    """An A/B test of one node's model over the last part of the window."""

    name: str
    workflow: str
    node: str
    variants: tuple[tuple[str, tuple[str, str] | None], ...]  # label, (provider, model) or as is
    share_of_window: float


EXPERIMENT = Experiment(
    name="synthesis-model",
    workflow="research_fanout",
    node="synthesis",
    # The file's own model is the control; labels sort it first, where comparisons put A.
    variants=(("A: gpt-4o", None), ("B: gpt-4.1-mini", ("openai", "gpt-4.1-mini"))),
    share_of_window=0.4,
)

# Daily and weekly load: most runs in (UTC) business hours on weekdays, a trickle at night.
PEAK_HOUR = 13.5
PEAK_WIDTH_HOURS = 3.5
NIGHT_LOAD = 0.08
WEEKEND_LOAD = 0.3
TREND = (0.8, 1.2)  # load at the start and the end of the window: adoption grows

# Failures: a provider error on a first attempt is rare, but errors cluster (an outage, a
# rate limit), so a retry fails far more often than a first try. With the default two
# retries this gives ~2 % of calls retried and ~0.2 % failing for good.
FIRST_ATTEMPT_ERROR = 0.02
REPEAT_ERROR = 0.3
TIMEOUT_SHARE = 0.1  # of errors, the share that are timeouts rather than 503s
CACHE_LOOKUP_MS = 2.0
# A small code node in the process sandbox, as measured on the examples: mostly the cost of
# starting the sandboxed interpreter.
CODE_NODE_MS = 300.0
CODE_NODE_CPU_S = 0.04
CODE_NODE_MEMORY_MB = 10.3
ENGINE_OVERHEAD_MS = (1.0, 4.0)
JSON_SAMPLES = 24
ZIPF = 1.1  # popular questions and topics come back: what makes caching pay
# History stops this long before now, so that no demo run would still be going (the longest,
# three 90 s timeouts in a row, takes under five minutes).
QUIET_BEFORE_NOW = timedelta(minutes=10)

_PARAGRAPH = (
    "Revenue grew in every region this quarter, led by the enterprise segment, while support "
    "costs fell after the new triage workflow went live. Churn stayed flat; the two largest "
    "accounts renewed early. Hiring lagged the plan in engineering, which delayed the "
    "analytics release by three weeks, and cloud spend rose faster than usage because of "
    "idle staging clusters that are now scheduled to shut down at night."
)
# Values the example workflows' inputs take, most frequent first. The long report overruns
# budgeted_summary's max_tokens now and then: what a budget is for.
EXAMPLE_VALUES: dict[str, list[Any]] = {
    "topic": [
        "solar power",
        "heat pumps",
        "tidal energy",
        "battery recycling",
        "vertical farming",
        "small modular reactors",
        "urban air quality",
        "coral reef restoration",
    ],
    "question": [
        "How do budgets work?",
        "Can I run a workflow without an API key?",
        "How is the cost of a run computed?",
        "Why did my run stop with budget_exceeded?",
        "How do I compare two models on the same dataset?",
        "Does the response cache survive a restart?",
        "How do I point a node at a local vLLM server?",
        "Where is the telemetry stored?",
        "How do I export a cost report?",
        "What does the SLOW status in a profile mean?",
    ],
    "text": [
        _PARAGRAPH,
        "The city council approved the new cycling network after a year of consultation. "
        "Construction starts in spring on the three busiest corridors; parking on those "
        "streets moves to side roads, and shops get loading bays on every block.",
        "Our incident review found that the outage began with an expired certificate on an "
        "internal load balancer. Alerts fired within two minutes but paged the wrong "
        "rotation. Actions: automate renewal, test paging weekly, add a runbook link.",
        " ".join([_PARAGRAPH] * 62),
    ],
    "version": ["2.4.0", "2.4.1", "2.5.0", "2.5.1", "2.6.0"],
    "message": ["hello", "ping", "Deploy check: please echo this line.", "Release 2.4 is live"],
}


class DemoExists(Exception):
    """The database already holds demo runs; adding more needs an explicit --force."""

    def __init__(self, runs: int) -> None:
        super().__init__(f"{runs:,} demo runs are already there")
        self.runs = runs


@dataclass(frozen=True)
class DemoSummary:
    runs: int
    node_rows: int
    workflows: int
    days: int
    cost_usd: float
    failed: int
    budget_exceeded: int
    cache_hits: int
    experiment_runs: int
    seconds: float


# ------------------------------------------------------------------------------ plans


class _InputsOnly(TemplateValues):
    """Renders a prompt's own text and inputs; quoted upstream outputs render empty, because
    their length varies per run and is added as a number instead of being re-counted."""

    def __init__(self, inputs: dict[str, Any]) -> None:
        super().__init__(inputs, {}, {})

    def lookup(self, ref: Reference) -> str:
        return "" if ref.kind == "node" else super().lookup(ref)


@dataclass(frozen=True)
class _NodePlan:
    """What every run of one node shares."""

    node: LLMNode | CodeNode
    parents: tuple[str, ...]
    feeds: tuple[tuple[str, float], ...] = ()  # upstream outputs quoted, as shares of length
    llm: ResolvedLLM | None = None  # None for a code node
    klass: ModelClass | None = None
    prices: PriceBook | None = None  # the workflow's, with its overrides
    cache_ttl: float | None = None  # seconds; None when not cached, inf: entries never expire
    timeout: float = 0.0
    retries: int = 0
    json_lengths: tuple[int, ...] = ()  # reply lengths the simulator gives a JSON node

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """What the engine would record: LiteLLM's price of this usage, None if unknown."""
        if self.llm is None or self.prices is None:
            return None
        return self.prices.cost(
            self.llm.provider, self.llm.model, Usage(input_tokens, output_tokens)
        )


@dataclass(frozen=True)
class _Scenario:
    """One workflow as it runs: the file itself, or an experiment variant of it."""

    workflow: Workflow
    nodes: dict[str, _NodePlan]
    team: str | None
    experiment: str | None = None
    variant: str | None = None


def _feeds(workflow: Workflow, node: LLMNode) -> tuple[tuple[str, float], ...]:
    """Upstream outputs a prompt quotes; a `{node.field}` quotes about one field's share, the
    same assumption the estimator makes."""
    schemas = {n.name: n.schema_ for n in workflow.spec.nodes if isinstance(n, LLMNode)}
    feeds = []
    for template in workflow.templates[node.name]:
        for ref in template.references if template else ():
            if ref.kind == "node":
                fields = len(schemas.get(ref.name) or {}) or 2
                feeds.append((ref.name, 1.0 if not ref.fields else 1.0 / fields))
    return tuple(feeds)


def _plan(workflow: Workflow, example_inputs: dict[str, Any]) -> dict[str, _NodePlan]:
    prices = PriceBook(workflow.spec.pricing)
    plans = {}
    json_nodes: dict[str, LLMRequest] = {}
    for node in workflow.spec.nodes:
        parents = workflow.graph.parents[node.name]
        if isinstance(node, CodeNode):
            plans[node.name] = _NodePlan(node, parents)
            continue
        llm = workflow.llm_for(node)
        cache = node.cache if node.cache is not None and node.cache.enabled else None
        ttl = None if cache is None else (cache.ttl or math.inf)
        plans[node.name] = _NodePlan(
            node=node,
            parents=parents,
            feeds=_feeds(workflow, node),
            llm=llm,
            klass=model_class(llm.provider, llm.model),
            prices=prices,
            cache_ttl=ttl,
            timeout=workflow.timeout_for(node),
            retries=workflow.retries_for(node),
        )
        if node.output == "json" and llm.simulate.output_tokens is None:
            json_nodes[node.name] = build_request(workflow, node, _InputsOnly(example_inputs), True)
    for name, lengths in _sample_json_lengths(json_nodes).items():
        plans[name] = dataclasses.replace(plans[name], json_lengths=lengths)
    return plans


def _sample_json_lengths(requests: dict[str, LLMRequest]) -> dict[str, tuple[int, ...]]:
    """JSON replies' lengths from the simulated provider itself: they follow the schema, not
    the model class. Zero latency, so sampling takes no time."""
    if not requests:
        return {}
    provider = SimulatedProvider()
    instant = SimulateSettings(latency_ms=0)

    async def sample() -> list[LLMReply]:
        calls = [
            provider.complete(dataclasses.replace(r, seed=i, simulate=instant), 0)
            for r in requests.values()
            for i in range(JSON_SAMPLES)
        ]
        return await asyncio.gather(*calls)

    replies = asyncio.run(sample())
    lengths = [reply.usage.output_tokens for reply in replies]
    return {
        name: tuple(lengths[i * JSON_SAMPLES : (i + 1) * JSON_SAMPLES])
        for i, name in enumerate(requests)
    }


# ------------------------------------------------------------------------------ one run


@dataclass(frozen=True)
class _Outcome:
    status: str  # success | failed | timeout | budget_exceeded
    duration_us: int
    output_id: str  # identifies the output's content, for downstream request hashes
    input_tokens: int = 0  # billed: 0 on a cache hit, as the engine records it
    output_tokens: int = 0
    feed_tokens: int = 0  # the output's length as downstream prompts see it (also on a hit)
    cost_usd: float | None = 0.0
    cache_hit: bool = False
    saved_cost_usd: float | None = None
    attempts: int = 0
    error: str | None = None
    request_hash: str | None = None
    cpu_seconds: float | None = None  # code nodes only
    peak_memory_mb: float | None = None


@dataclass(frozen=True)
class _CacheEntry:
    output_id: str
    output_tokens: int
    cost_usd: float | None
    written_us: int
    expires_us: float


def _epoch_us(moment: datetime) -> int:
    return round(moment.replace(tzinfo=UTC).timestamp() * 1_000_000)


class _HistoryGenerator:
    def __init__(self, scenarios: dict[str, list[_Scenario]], seed: str) -> None:
        self.scenarios = scenarios
        self.rng = random.Random(seed)
        self.simulator = SimulatedProvider()  # for its retry back-off
        self.cache: dict[str, _CacheEntry] = {}
        self._literal: dict[tuple[int, str, str], int] = {}
        self.runs: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []

    # -- choosing what runs when

    def generate(self, days: int, runs_per_day: int, now: datetime) -> None:
        begin = _epoch_us(now - timedelta(days=days))
        end = _epoch_us(now - QUIET_BEFORE_NOW)
        experiment_from = end - EXPERIMENT.share_of_window * (end - begin)
        names = list(self.scenarios)
        weights = [WORKFLOW_MIX.get(name, OTHER_WEIGHT) for name in names]
        for start in _start_times(self.rng, begin, end, days * runs_per_day):
            name = self.rng.choices(names, weights)[0]
            options = self.scenarios[name]
            scenario = options[0]
            if len(options) > 1 and start >= experiment_from:
                scenario = self.rng.choice(options[1:])
            self._run(scenario, start)

    def _inputs(self, workflow: Workflow) -> dict[str, Any]:
        values = {}
        for name, spec in workflow.spec.inputs.items():
            pool = EXAMPLE_VALUES.get(name)
            if pool:
                values[name] = self.rng.choices(pool, cum_weights=_zipf_cumulative(len(pool)))[0]
            elif spec.default is not None:
                values[name] = spec.default
            else:
                values[name] = _placeholder(name, spec.type)
        return values

    # -- simulating one run

    def _run(self, scenario: _Scenario, start_us: int) -> None:
        rng, workflow = self.rng, scenario.workflow
        run_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        inputs = self._inputs(workflow)
        inputs_key = json.dumps(inputs, sort_keys=True)
        outcomes: dict[str, _Outcome] = {}
        for name in workflow.graph.topological:
            plan = scenario.nodes[name]
            if plan.llm is None:
                outcomes[name] = _Outcome(
                    "success",
                    round(CODE_NODE_MS * 1000 * math.exp(0.1 * rng.gauss(0, 1))),
                    f"{run_id}:{name}",
                    attempts=1,
                    cpu_seconds=CODE_NODE_CPU_S * math.exp(0.2 * rng.gauss(0, 1)),
                    peak_memory_mb=CODE_NODE_MEMORY_MB * math.exp(0.02 * rng.gauss(0, 1)),
                )
                continue
            outcomes[name] = self._llm_node(
                scenario, plan, run_id, start_us, inputs, inputs_key, outcomes
            )
        schedule = critical_path(workflow.graph, {n: o.duration_us for n, o in outcomes.items()})
        ran = self._execute(scenario, schedule.earliest_start, outcomes, start_us)
        self._record(scenario, run_id, start_us, inputs, schedule.earliest_start, ran)

    def _literal_tokens(
        self, scenario: _Scenario, plan: _NodePlan, inputs: dict[str, Any], inputs_key: str
    ) -> int:
        key = (id(scenario), plan.node.name, inputs_key)
        found = self._literal.get(key)
        if found is None:
            assert isinstance(plan.node, LLMNode) and plan.llm is not None
            request = build_request(scenario.workflow, plan.node, _InputsOnly(inputs), True)
            found = count_message_tokens(plan.llm.provider, plan.llm.model, request.messages)
            self._literal[key] = found
        return found

    def _llm_node(
        self,
        scenario: _Scenario,
        plan: _NodePlan,
        run_id: str,
        start_us: int,
        inputs: dict[str, Any],
        inputs_key: str,
        upstream: dict[str, _Outcome],
    ) -> _Outcome:
        """The node's call as the engine would record it, had it started with the run."""
        rng, llm, name = self.rng, plan.llm, plan.node.name
        assert llm is not None and plan.klass is not None
        material = [scenario.workflow.hash, name, llm.provider, llm.model, inputs_key]
        material += [upstream[parent].output_id for parent in plan.parents]
        request_hash = hashlib.blake2b(json.dumps(material).encode(), digest_size=16).hexdigest()
        if plan.cache_ttl is not None:
            entry = self.cache.get(request_hash)
            if entry is not None and entry.written_us <= start_us < entry.expires_us:
                lookup_ms = CACHE_LOOKUP_MS * math.exp(0.3 * rng.gauss(0, 1))
                return _Outcome(
                    "success",
                    round(lookup_ms * 1000),
                    entry.output_id,
                    feed_tokens=entry.output_tokens,
                    cache_hit=True,
                    saved_cost_usd=entry.cost_usd,
                    request_hash=request_hash,
                )

        input_tokens = self._literal_tokens(scenario, plan, inputs, inputs_key) + round(
            sum(share * upstream[parent].feed_tokens for parent, share in plan.feeds)
        )
        if llm.simulate.output_tokens is not None:
            output_tokens = llm.simulate.output_tokens
        elif plan.json_lengths:
            output_tokens = rng.choice(plan.json_lengths)
        else:
            median = min(plan.klass.typical_output, 0.6 * llm.max_output_tokens)
            output_tokens = max(1, round(median * math.exp(LENGTH_SPREAD * rng.gauss(0, 1))))
        output_tokens = min(output_tokens, llm.max_output_tokens)

        error_rates = (FIRST_ATTEMPT_ERROR, REPEAT_ERROR)
        if llm.simulate.error_rate:
            error_rates = (llm.simulate.error_rate, llm.simulate.error_rate)
        elapsed_s = 0.0
        for attempt in range(plan.retries + 1):
            jitter = math.exp(LATENCY_JITTER * rng.gauss(0, 1))
            if llm.simulate.latency_ms is not None:
                latency = llm.simulate.latency_ms / 1000
            else:
                latency = (
                    plan.klass.first_token_s + output_tokens / plan.klass.tokens_per_s
                ) * jitter
            error: ProviderError | None = None
            if rng.random() < error_rates[min(attempt, 1)]:
                if rng.random() < TIMEOUT_SHARE:
                    latency = plan.timeout + 1  # counted as the timeout below
                else:
                    error = ProviderError(
                        "simulated provider error (503 Service Unavailable)",
                        retryable=True,
                        status=503,
                    )
                    latency = plan.klass.first_token_s * jitter  # an error comes back early
            if latency > plan.timeout:
                error = ProviderError(
                    f"timed out after {plan.timeout:g}s", retryable=True, timeout=True
                )
                latency = plan.timeout
            elapsed_s += latency
            if error is None:
                cost = plan.cost(input_tokens, output_tokens)
                return _Outcome(
                    "success",
                    round(elapsed_s * 1e6),
                    f"{run_id}:{name}",
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    feed_tokens=output_tokens,
                    cost_usd=cost,
                    attempts=attempt + 1,
                    request_hash=request_hash,
                )
            if attempt == plan.retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                return _Outcome(
                    "timeout" if error.timeout else "failed",
                    round(elapsed_s * 1e6),
                    f"{run_id}:{name}",
                    attempts=attempt + 1,
                    error=f"{error}{tries}",
                    request_hash=request_hash,
                )
            elapsed_s += self.simulator.retry_delay(error, attempt, plan.retries)
        raise AssertionError("unreachable")

    def _execute(
        self,
        scenario: _Scenario,
        starts: dict[str, float],
        outcomes: dict[str, _Outcome],
        run_start_us: int,
    ) -> dict[str, _Outcome]:
        """Which nodes the scheduler would have run, in start order: nothing starts after a
        node fails or the budget refuses a call; nodes already running finish."""
        spec = scenario.workflow.spec.workflow
        budget = None
        if spec.max_tokens is not None or spec.max_cost is not None:
            budget = Budget(spec.max_tokens, spec.max_cost)
        in_flight: list[tuple[float, Any, _Outcome]] = []
        stop_at = math.inf
        ran: dict[str, _Outcome] = {}
        for name in sorted(starts, key=lambda n: starts[n]):
            plan, outcome, start = scenario.nodes[name], outcomes[name], starts[name]
            if start > stop_at or any(
                p not in ran or ran[p].status != "success" for p in plan.parents
            ):
                continue
            if budget is not None and plan.llm is not None and not outcome.cache_hit:
                for entry in [e for e in in_flight if e[0] <= start]:
                    in_flight.remove(entry)
                    done = entry[2]
                    budget.settle(entry[1], done.input_tokens + done.output_tokens, done.cost_usd)
                worst_tokens = outcome.input_tokens + plan.llm.max_output_tokens
                worst_cost = plan.cost(outcome.input_tokens, plan.llm.max_output_tokens)
                try:
                    reservation = budget.reserve(worst_tokens, worst_cost)
                except BudgetExceeded as exc:
                    outcome = _Outcome(
                        "budget_exceeded",
                        0,
                        outcome.output_id,
                        error=str(exc),
                        request_hash=outcome.request_hash,
                    )
                else:
                    in_flight.append((start + outcome.duration_us, reservation, outcome))
            ran[name] = outcome
            if outcome.status != "success":
                stop_at = min(stop_at, start + outcome.duration_us)
            elif plan.cache_ttl is not None and not outcome.cache_hit:
                assert outcome.request_hash is not None
                written = run_start_us + round(start) + outcome.duration_us
                self.cache[outcome.request_hash] = _CacheEntry(
                    outcome.output_id,
                    outcome.output_tokens,
                    outcome.cost_usd,
                    written_us=written,
                    expires_us=written + plan.cache_ttl * 1e6,
                )
        return ran

    def _record(
        self,
        scenario: _Scenario,
        run_id: str,
        start_us: int,
        inputs: dict[str, Any],
        starts: dict[str, float],
        ran: dict[str, _Outcome],
    ) -> None:
        workflow = scenario.workflow
        finish_us = 0
        failure: tuple[float, str, str] | None = None  # (when, status, message): first wins
        for name in workflow.graph.topological:
            outcome = ran.get(name)
            if outcome is None:
                continue
            plan = scenario.nodes[name]
            node_start = start_us + round(starts[name])
            node_finish = node_start + outcome.duration_us
            finish_us = max(finish_us, node_finish - start_us)
            if outcome.status != "success":
                reason = "budget_exceeded" if outcome.status == "budget_exceeded" else "failed"
                message = f"node '{name}' {outcome.status}: {outcome.error}"
                if failure is None or node_finish < failure[0]:
                    failure = (node_finish, reason, message)
            self.nodes.append(
                node_row(
                    outcome,
                    run_id=run_id,
                    node=name,
                    node_type=plan.node.type,
                    provider=plan.llm.provider if plan.llm else _sandbox_backend(plan.node),
                    model=plan.llm.model if plan.llm else None,
                    started_at=node_start,
                    run_started_at=start_us,
                    finished_at=node_finish,
                    duration_ms=outcome.duration_us / 1000,
                    cache_enabled=plan.cache_ttl is not None,
                    workflow=workflow.name,
                    workflow_hash=workflow.hash,
                    simulated=True,
                    cached_tokens=0,
                    reasoning_tokens=0,
                    usage_estimated=False,
                    queue_ms=0.0,
                    exit_reason="ok" if plan.llm is None else None,
                )
            )
        # The engine's totals: cost counts calls made, and is unknown only when none of them
        # had a price.
        called = [
            o
            for n, o in ran.items()
            if scenario.nodes[n].llm is not None and o.attempts and not o.cache_hit
        ]
        priced = [o.cost_usd for o in called if o.cost_usd is not None]
        cost = sum(priced) if priced or not called else None
        duration_us = finish_us + round(self.rng.uniform(*ENGINE_OVERHEAD_MS) * 1000)
        tags = {DEMO_TAG[0]: DEMO_TAG[1], "team": scenario.team or self.rng.choice(TEAMS)}
        self.runs.append(
            run_row(
                run_id=run_id,
                workflow=workflow.name,
                workflow_hash=workflow.hash,
                started_at=start_us,
                finished_at=start_us + duration_us,
                duration_ms=duration_us / 1000,
                status=failure[1] if failure else "success",
                input_tokens=sum(o.input_tokens for o in ran.values()),
                output_tokens=sum(o.output_tokens for o in ran.values()),
                cost_usd=cost,
                simulated_cost_usd=cost if called else None,
                simulated=True,
                experiment=scenario.experiment,
                variant=scenario.variant,
                error=failure[2] if failure else None,
                tags=json.dumps(tags),
                inputs=json.dumps(inputs),
                unpriced_calls=len(called) - len(priced),
                cached_tokens=0,
                reasoning_tokens=0,
                estimated_usage_calls=0,
                cache_hits=sum(o.cache_hit for o in ran.values()),
                saved_cost_usd=sum(o.saved_cost_usd or 0.0 for o in ran.values()),
                node_count=len(workflow.nodes),
                workflow_file=workflow.filename,
            )
        )


def _sandbox_backend(node: LLMNode | CodeNode) -> str | None:
    """Code nodes record their sandbox backend as the provider, as the engine does."""
    return node.sandbox.backend if isinstance(node, CodeNode) else None


@functools.cache
def _zipf_cumulative(size: int) -> list[float]:
    return list(itertools.accumulate(1 / (rank**ZIPF) for rank in range(1, size + 1)))


def _placeholder(name: str, kind: str) -> Any:
    """A plausible value for an input the demo has no examples of."""
    return {
        "integer": 3,
        "number": 1.0,
        "boolean": True,
        "array": ["first", "second"],
        "object": {"example": name},
    }.get(kind, f"example {name.replace('_', ' ')}")


def _load_weight(moment_us: float, begin: int, end: int) -> float:
    moment = datetime.fromtimestamp(moment_us / 1e6, UTC)
    hour = moment.hour + moment.minute / 60
    daily = NIGHT_LOAD + math.exp(-(((hour - PEAK_HOUR) / PEAK_WIDTH_HOURS) ** 2))
    weekly = WEEKEND_LOAD if moment.weekday() >= 5 else 1.0
    progress = (moment_us - begin) / (end - begin)
    return daily * weekly * (TREND[0] + (TREND[1] - TREND[0]) * progress)


def _start_times(rng: random.Random, begin: int, end: int, total: int) -> list[int]:
    """`total` start times in [begin, end), spread by load hour by hour.

    Counts per hour are apportioned by largest remainder, so the total is exact and the same
    seed gives the same history.
    """
    hour = 3_600_000_000
    edges = [begin, *range(begin - begin % hour + hour, end, hour), end]
    slots = list(itertools.pairwise(edges))
    weights = [(hi - lo) * _load_weight((lo + hi) / 2, begin, end) for lo, hi in slots]
    scale = total / sum(weights)
    shares = [w * scale for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(slots)), key=lambda i: counts[i] - shares[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    times = [
        rng.randrange(lo, hi) for (lo, hi), n in zip(slots, counts, strict=True) for _ in range(n)
    ]
    return sorted(times)


# ------------------------------------------------------------------------------ entry points


def example_workflows(folder: Path = EXAMPLES_DIR) -> list[Workflow]:
    """The valid workflows in `folder`. An invalid file is skipped with a warning rather than
    stopping the demo: the editor may have saved a draft next to the examples."""
    workflows = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            workflows.append(load_workflow(path))
        except WorkflowError as exc:
            print(
                f"{path}: skipped, not a valid workflow ({exc.problems[0].message})",
                file=sys.stderr,
            )
    return workflows


def _scenarios(workflows: Iterable[Workflow]) -> dict[str, list[_Scenario]]:
    """Each workflow's plan; the experiment's workflow also gets one plan per variant."""
    scenarios: dict[str, list[_Scenario]] = {}
    for workflow in workflows:
        inputs = {
            name: (EXAMPLE_VALUES.get(name) or [spec.default or _placeholder(name, spec.type)])[0]
            for name, spec in workflow.spec.inputs.items()
        }
        team = WORKFLOW_TEAM.get(workflow.name)
        options = [_Scenario(workflow, _plan(workflow, inputs), team)]
        if workflow.name == EXPERIMENT.workflow and EXPERIMENT.node in workflow.nodes:
            for label, model in EXPERIMENT.variants:
                variant = with_models(workflow, {EXPERIMENT.node: model}) if model else workflow
                plans = _plan(variant, inputs) if model else options[0].nodes
                options.append(_Scenario(variant, plans, team, EXPERIMENT.name, label))
        scenarios[workflow.name] = options
    return scenarios


def generate(
    workflows: Sequence[Workflow],
    *,
    days: int = DEFAULT_DAYS,
    runs_per_day: int = DEFAULT_RUNS_PER_DAY,
    seed: int | str = DEFAULT_SEED,
    now: datetime | None = None,
) -> dict[str, pa.Table]:
    """The demo history as tables for `TelemetryStore.bulk_load`, ending at `now` (UTC)."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    rng_seed = f"configurable-agents demo {seed}"
    generator = _HistoryGenerator(_scenarios(workflows), rng_seed)
    generator.generate(days, runs_per_day, now)
    first_seen = now - timedelta(days=days)
    workflow_rows = [
        workflow_row(
            workflow_hash=workflow.hash,
            workflow=workflow.name,
            workflow_file=workflow.filename,
            source=workflow.source,
            first_seen=_epoch_us(first_seen),
        )
        for workflow in workflows
    ]
    return {
        "runs": arrow_table("runs", generator.runs),
        "node_runs": arrow_table("node_runs", generator.nodes),
        "workflows": arrow_table("workflows", workflow_rows),
    }


def demo_runs(home: Path) -> int:
    """How many demo runs the database holds."""
    return get_store(home).query(
        "SELECT count(*) FROM runs WHERE json_extract_string(tags, ?) = ?",
        [f"$.{DEMO_TAG[0]}", DEMO_TAG[1]],
    )[0][0]


def seed_demo(
    home: Path,
    *,
    days: int = DEFAULT_DAYS,
    runs_per_day: int = DEFAULT_RUNS_PER_DAY,
    seed: int = DEFAULT_SEED,
    force: bool = False,
    now: datetime | None = None,
    workflows: Sequence[Workflow] | None = None,
) -> DemoSummary:
    """Writes demo history into `home`'s telemetry; raises DemoExists when some is already
    there and `force` is not set."""
    clock = time.perf_counter()
    existing = demo_runs(home)
    if existing and not force:
        raise DemoExists(existing)
    workflows = list(workflows if workflows is not None else example_workflows())
    # A second set must not reuse the first one's run ids, so the existing count enters the
    # seed; on an empty database the seed alone decides.
    tables = generate(
        workflows,
        days=days,
        runs_per_day=runs_per_day,
        seed=f"{seed}+{existing}" if existing else seed,
        now=now,
    )
    store = get_store(home)
    known = {row[0] for row in store.query("SELECT workflow_hash FROM workflows")}
    versions = tables["workflows"]
    keep = [h not in known for h in versions.column("workflow_hash").to_pylist()]
    tables["workflows"] = versions.filter(pa.array(keep, pa.bool_()))
    store.bulk_load(tables)
    runs = tables["runs"]
    statuses = runs.column("status").to_pylist()
    return DemoSummary(
        runs=runs.num_rows,
        node_rows=tables["node_runs"].num_rows,
        workflows=len(workflows),
        days=days,
        cost_usd=sum(c for c in runs.column("cost_usd").to_pylist() if c is not None),
        failed=statuses.count("failed"),
        budget_exceeded=statuses.count("budget_exceeded"),
        cache_hits=sum(runs.column("cache_hits").to_pylist()),
        experiment_runs=runs.num_rows - runs.column("experiment").null_count,
        seconds=time.perf_counter() - clock,
    )


def describe(summary: DemoSummary, home: Path) -> str:
    lines = [
        f"Added {summary.runs:,} simulated runs ({summary.node_rows:,} node rows) of "
        f"{summary.workflows} example workflows over the last {summary.days} days "
        f"in {summary.seconds:.1f} s.",
        f"  simulated spend {money(summary.cost_usd)} (what these calls would cost; nothing "
        "was paid)",
        f"  {summary.failed:,} failed, {summary.budget_exceeded:,} over budget, "
        f"{summary.cache_hits:,} cache hits",
    ]
    if summary.experiment_runs:
        lines.append(
            f"  {summary.experiment_runs:,} runs of {EXPERIMENT.workflow} in the A/B experiment "
            f"'{EXPERIMENT.name}' ({' vs '.join(label for label, _ in EXPERIMENT.variants)})"
        )
    lines.append(
        f"  all marked simulated and tagged {DEMO_TAG[0]}={DEMO_TAG[1]}, in {home / DB_FILE}"
    )
    return "\n".join(lines)

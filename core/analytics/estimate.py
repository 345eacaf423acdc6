"""Cost and token estimates for a run that has not happened, calibrated on past runs.

Input tokens are counted exactly on each node's rendered prompt with the model's tokenizer;
an upstream output that does not exist yet stands in at its expected length. Output tokens
come from the node's own history (same workflow, node and model): a mean and spread, or,
when the output length follows the input length (an echo, a summary), a regression on it.
The spread never falls below a tenth of the mean, nor, when the history saw only one
input, below how far this input differs from it, so no range collapses to a point. Without
enough history, defaults with a wide range stand in. A run's cost is linear in the nodes'
output lengths (each output is paid once as output and again as input wherever it is
referenced), with per-token rates taken from LiteLLM's cost function at each call's size,
so its expected value and spread follow from the per-node figures. A node without a known
price is unknown, not $0.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.catalog.model_names import SIMULATED
from core.catalog.prices import Price, PriceBook
from core.catalog.tokens import count_message_tokens
from core.catalog.usage import Usage
from core.engine.code_node import memory_namespace
from core.engine.inputs import check_inputs
from core.engine.llm_node import build_request, decode_output
from core.engine.memory import memory_store
from core.engine.response_cache import ResponseCache, response_cache
from core.providers.base import LLMRequest
from core.settings import data_home
from core.telemetry import get_store
from core.workflow import Workflow
from core.workflow.models import LLMNode
from core.workflow.templates import Reference, TemplateValues

MIN_HISTORY = 5
Z_RANGE = 1.96  # the range covers ~95 % of runs when output lengths vary independently
DEFAULT_SHARE = (0.1, 0.5, 1.0)  # low / expected / high output, as shares of max_output_tokens
MIN_SPREAD = 0.1  # the least relative spread of an output length, whatever the history
FOLLOWS_INPUT_R2 = 0.5  # above this, the output length is predicted from the input length


@dataclass(frozen=True)
class OutputHistory:
    runs: int
    mean: float
    sd: float
    input_mean: float = 0.0
    input_sd: float = 0.0
    slope: float | None = None  # output tokens per input token, when the input varied
    intercept: float | None = None
    r2: float | None = None

    def expected(self, input_tokens: float) -> tuple[float, float]:
        """Mean and spread of the output for an input of this length."""
        mean, sd = self.mean, self.sd
        follows = self.r2 is not None and self.r2 >= FOLLOWS_INPUT_R2 and self.slope is not None
        if follows and self.intercept is not None and self.slope is not None:
            mean = max(1.0, self.intercept + self.slope * input_tokens)
            sd = self.sd * math.sqrt(max(0.0, 1.0 - (self.r2 or 0.0)))
        floor = MIN_SPREAD
        if self.input_mean and self.input_sd < MIN_SPREAD * self.input_mean:
            # A history of (nearly) one input cannot tell whether the output follows the
            # input: an input unlike it leaves the output open by at least as much.
            floor = max(floor, abs(input_tokens - self.input_mean) / self.input_mean)
        return mean, max(sd, mean * floor)


@dataclass
class NodeEstimate:
    name: str
    provider: str
    model: str
    basis: str
    input_tokens: int
    output_tokens: int
    output_low: int
    output_high: int
    cost_usd: float | None
    cost_low: float | None
    cost_high: float | None
    history_runs: int = 0
    cached: bool = False

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Estimate:
    workflow: str
    filename: str
    simulated: bool
    nodes: list[NodeEstimate]
    cost_usd: float | None  # None: no node has a known price
    cost_low: float | None
    cost_high: float | None
    input_tokens: int
    output_tokens: int
    tokens_low: int
    tokens_high: int
    unpriced: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["tokens"] = self.tokens
        for node, source in zip(document["nodes"], self.nodes, strict=True):
            node["tokens"] = source.tokens
        return document


def output_history(
    home: Path, workflow: str, simulated: bool
) -> dict[tuple[str, str], OutputHistory]:
    """Output-length statistics per (node, model) from successful, uncached calls."""
    store = get_store(home)
    rows = store.query(
        """
        SELECT node, model, simulated, count(*), avg(output_tokens),
               coalesce(stddev_samp(output_tokens), 0), avg(input_tokens),
               coalesce(stddev_samp(input_tokens), 0),
               regr_slope(output_tokens, input_tokens), regr_intercept(output_tokens, input_tokens),
               regr_r2(output_tokens, input_tokens)
        FROM node_runs
        WHERE workflow = ? AND node_type = 'llm' AND status = 'success' AND NOT cache_hit
        GROUP BY node, model, simulated
        """,
        [workflow],
    )
    preferred: dict[tuple[str, str], OutputHistory] = {}
    fallback: dict[tuple[str, str], OutputHistory] = {}
    for node, model, was_simulated, runs, mean, sd, *inputs in rows:
        target = preferred if bool(was_simulated) == simulated else fallback
        target[(node, model)] = OutputHistory(int(runs), float(mean), float(sd), *inputs)
    return {**fallback, **preferred}


class _PlanValues(TemplateValues):
    """Renders known values; an output not known yet renders empty and is noted instead."""

    def __init__(
        self, inputs: dict[str, Any], known: dict[str, Any], schemas: dict, memory: dict
    ) -> None:
        super().__init__(inputs, known, memory)
        self.schemas = schemas
        self.pending: list[tuple[str, float]] = []

    def lookup(self, ref: Reference) -> str:
        if ref.kind == "node" and ref.name not in self.nodes:
            schema = self.schemas.get(ref.name)
            share = 1.0 if not ref.fields else 1.0 / max(1, len(schema or {}) or 2)
            self.pending.append((ref.name, share))
            return ""
        return super().lookup(ref)


@dataclass
class _Planned:
    node: LLMNode
    request: LLMRequest
    literal_tokens: int
    pending: list[tuple[str, float]]
    price: Price | None
    low: float
    mean: float
    high: float
    sd: float | None  # None: no history, the range is a plain interval
    basis: str
    runs: int
    cached: bool


def estimate(
    workflow: Workflow,
    inputs: dict[str, Any] | None = None,
    *,
    simulate: bool = False,
    use_cache: bool = True,
    home: str | Path | None = None,
    inputs_from_text: bool = False,
    history: dict[tuple[str, str], OutputHistory] | None = None,
) -> Estimate:
    """`history` is `output_history` of the workflow, for callers estimating many runs of one
    workflow (an experiment): each estimate would otherwise query it again."""
    folder = data_home(home)
    values = check_inputs(workflow, dict(inputs or {}), from_text=inputs_from_text, partial=True)
    warnings = [
        f"input '{name}' not given: counted as empty"
        for name, spec in workflow.spec.inputs.items()
        if spec.required and name not in values
    ]
    if history is None:
        history = output_history(folder, workflow.name, simulate)
    prices = PriceBook(workflow.spec.pricing)
    cache = response_cache(folder) if use_cache else None
    memory = memory_store(folder)
    schemas = {node.name: node.schema_ for node in workflow.spec.nodes if isinstance(node, LLMNode)}
    known: dict[str, Any] = {}
    planned: dict[str, _Planned] = {}
    for name in workflow.graph.topological:
        node = workflow.nodes[name]
        if not isinstance(node, LLMNode):
            continue
        namespace = memory_namespace(workflow, node)
        remembered = memory.snapshot(namespace) if namespace else {}
        plan_values = _PlanValues(values, known, schemas, remembered)
        llm = workflow.llm_for(node)
        simulated = simulate or llm.provider == SIMULATED
        request = build_request(workflow, node, plan_values, simulated)
        literal = count_message_tokens(request.provider, request.model, request.messages)
        cached_output = _cached_output(cache, node, request, plan_values)
        stats, basis = history.get((name, request.model)), "history"
        if stats is None or stats.runs < MIN_HISTORY:
            # Another model's lengths for the same prompt beat a blind default (what-ifs).
            others = [
                (m, h) for (n, m), h in history.items() if n == name and h.runs >= MIN_HISTORY
            ]
            if others:
                other_model, stats = max(others, key=lambda item: item[1].runs)
                basis = f"history of {other_model}"
        upstream = sum(share * planned[u].mean for u, share in plan_values.pending if u in planned)
        if cached_output is not None:
            known[name] = cached_output
            plan = _Planned(node, request, 0, [], None, 0, 0, 0, 0.0, "served from cache", 0, True)
        elif stats and stats.runs >= MIN_HISTORY:
            mean, sd = stats.expected(literal + upstream)
            mean = min(mean, float(request.max_output_tokens))
            low = max(0.0, mean - Z_RANGE * sd)
            high = min(float(request.max_output_tokens), mean + Z_RANGE * sd)
            plan = _Planned(
                node, request, literal, plan_values.pending, None, low, mean, high,
                sd, f"{basis}: {stats.runs} runs", stats.runs, False,
            )  # fmt: skip
        else:
            low, mean, high = (share * request.max_output_tokens for share in DEFAULT_SHARE)
            runs = stats.runs if stats else 0
            plan = _Planned(
                node, request, literal, plan_values.pending, None, low, mean, high, None,
                f"no history ({runs} runs): default {DEFAULT_SHARE[1]:.0%} of "
                f"max_output_tokens {request.max_output_tokens:,}",
                runs, False,
            )  # fmt: skip
        if not plan.cached:
            plan.price = prices.rates_at(
                request.provider, request.model, round(literal + upstream), round(plan.mean)
            )
        planned[name] = plan
    return _combine(workflow, planned, prices, simulate, warnings)


def _cached_output(
    cache: ResponseCache | None, node: LLMNode, request: LLMRequest, values: _PlanValues
) -> Any:
    """The node's answer if running now would be a cache hit (its prompt must be complete)."""
    if cache is None or node.cache is None or not node.cache.enabled or values.pending:
        return None
    hit = cache.get(request.fingerprint)
    if hit is None:
        return None
    try:
        return decode_output(node, hit.text)
    except ValueError:
        return None


def _combine(
    workflow: Workflow,
    planned: dict[str, _Planned],
    prices: PriceBook,
    simulate: bool,
    warnings: list[str],
) -> Estimate:
    # Each node's output is paid as its own output and as input of every node that quotes it.
    cost_weight = {
        name: (p.price.output_per_token if p.price else 0.0) for name, p in planned.items()
    }
    token_weight = {name: 1.0 for name in planned}
    for plan in planned.values():
        for upstream, share in plan.pending:
            if upstream in planned:
                token_weight[upstream] += share
                if plan.price:
                    cost_weight[upstream] += share * plan.price.input_per_token

    cost = low = high = 0.0
    tokens = tokens_low = tokens_high = 0.0
    cost_var = token_var = 0.0
    input_total = output_total = 0.0
    nodes: list[NodeEstimate] = []
    unpriced: list[str] = []
    for name, plan in planned.items():
        upstream_mean = sum(share * planned[u].mean for u, share in plan.pending if u in planned)
        input_tokens = plan.literal_tokens + upstream_mean
        input_total += input_tokens
        output_total += plan.mean
        price = plan.price
        if price is None and not plan.cached:
            unpriced.append(name)
        fixed_cost = plan.literal_tokens * price.input_per_token if price else 0.0
        cost += fixed_cost + cost_weight[name] * plan.mean
        tokens += plan.literal_tokens + token_weight[name] * plan.mean
        if plan.sd is not None:
            cost_var += (cost_weight[name] * plan.sd) ** 2
            token_var += (token_weight[name] * plan.sd) ** 2
            low += fixed_cost + cost_weight[name] * plan.mean
            high += fixed_cost + cost_weight[name] * plan.mean
            tokens_low += plan.literal_tokens + token_weight[name] * plan.mean
            tokens_high += plan.literal_tokens + token_weight[name] * plan.mean
        else:
            low += fixed_cost + cost_weight[name] * plan.low
            high += fixed_cost + cost_weight[name] * plan.high
            tokens_low += plan.literal_tokens + token_weight[name] * plan.low
            tokens_high += plan.literal_tokens + token_weight[name] * plan.high
        nodes.append(_node_estimate(plan, prices, round(input_tokens)))
    spread, token_spread = Z_RANGE * math.sqrt(cost_var), Z_RANGE * math.sqrt(token_var)
    priced = any(p.price is not None or p.cached for p in planned.values())
    result = Estimate(
        workflow=workflow.name,
        filename=workflow.filename,
        simulated=simulate,
        nodes=nodes,
        cost_usd=cost if priced else None,
        cost_low=max(0.0, low - spread) if priced else None,
        cost_high=high + spread if priced else None,
        input_tokens=round(input_total),
        output_tokens=round(output_total),
        tokens_low=max(0, round(tokens_low - token_spread)),
        tokens_high=round(tokens_high + token_spread),
        unpriced=unpriced,
        warnings=warnings,
    )
    _budget_warnings(workflow, result)
    return result


def _node_estimate(plan: _Planned, prices: PriceBook, input_tokens: int) -> NodeEstimate:
    if plan.cached:
        cost: float | None = 0.0
        low: float | None = 0.0
        high: float | None = 0.0
    else:
        provider, model = plan.request.provider, plan.request.model
        cost, low, high = (
            prices.cost(provider, model, Usage(input_tokens, round(tokens)))
            for tokens in (plan.mean, plan.low, plan.high)
        )
    return NodeEstimate(
        name=plan.node.name,
        provider=plan.request.provider,
        model=plan.request.model,
        basis=plan.basis,
        input_tokens=input_tokens,
        output_tokens=round(plan.mean),
        output_low=round(plan.low),
        output_high=round(plan.high),
        cost_usd=cost,
        cost_low=low,
        cost_high=high,
        history_runs=plan.runs,
        cached=plan.cached,
    )


def _budget_warnings(workflow: Workflow, estimate: Estimate) -> None:
    spec = workflow.spec.workflow
    if spec.max_tokens is not None and estimate.tokens_high > spec.max_tokens:
        estimate.warnings.append(
            f"the high estimate of {estimate.tokens_high:,} tokens exceeds max_tokens "
            f"{spec.max_tokens:,}: the run may stop with budget_exceeded"
        )
    if (
        spec.max_cost is not None
        and estimate.cost_high is not None
        and estimate.cost_high > spec.max_cost
    ):
        estimate.warnings.append(
            f"the high estimate of ${estimate.cost_high:.4f} exceeds max_cost "
            f"${spec.max_cost:.4f}: the run may stop with budget_exceeded"
        )

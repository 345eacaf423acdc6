"""Running one LLM node: render, consult the cache, reserve budget, call with retries, and
price the provider's usage with LiteLLM."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from core.catalog.model_names import SIMULATED
from core.catalog.prices import PriceBook
from core.catalog.tokens import count_message_tokens
from core.catalog.usage import Usage
from core.engine import json_output
from core.engine.budget import Budget, BudgetExceeded, Reservation
from core.engine.response_cache import CachedReply, ResponseCache
from core.engine.results import NodeResult
from core.providers.base import LLMRequest, Provider, ProviderError, Reference
from core.workflow import Workflow
from core.workflow.models import LLMNode
from core.workflow.templates import TemplateValues


@dataclass
class LLMContext:
    """What every LLM node of one run shares."""

    workflow: Workflow
    simulate: bool
    use_cache: bool
    cache: ResponseCache | None
    prices: PriceBook
    budget: Budget
    price_estimated_usage: bool  # price a reply without usage on locally counted tokens
    semaphore: asyncio.Semaphore
    real: Provider | None
    simulated: Provider
    # Per real model under a budget: set once its first call has shown how it counts.
    probes: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict)
    # An experiment's cell: its repeat, the right answers it knows (simulated calls only), and
    # the experiment's budget, which every call reserves on as well as on the run's own.
    sample: int = 0
    references: Mapping[str, Reference] = field(default_factory=dict)
    shared_budget: Budget | None = None


# How a call refused by the shared budget says so: the run's error then names it, and an
# experiment tells its own budget's refusal from a cell's.
SHARED_BUDGET = "shared budget"


def build_request(
    workflow: Workflow,
    node: LLMNode,
    values: TemplateValues,
    simulated: bool,
    *,
    sample: int = 0,
    reference: Reference | None = None,
) -> LLMRequest:
    """The call a node would make; raises KeyError when a referenced field is missing."""
    llm = workflow.llm_for(node)
    prompt_template, system_template = workflow.templates[node.name]
    system = system_template.render(values) if system_template else None
    json_mode = node.output == "json"
    if json_mode:
        extra = json_output.instruction(node.schema_)
        system = f"{system}\n\n{extra}" if system else extra
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt_template.render(values)})
    return LLMRequest(
        provider=llm.provider,
        model=llm.model,
        messages=messages,
        max_output_tokens=llm.max_output_tokens,
        temperature=llm.temperature,
        top_p=llm.top_p,
        seed=llm.seed,
        json_schema=node.schema_,
        json_mode=json_mode,
        api_base=llm.api_base,
        api_key_env=llm.api_key_env,
        timeout=workflow.timeout_for(node),
        simulate=llm.simulate,
        simulated=simulated,
        sample=sample,
        reference=reference if simulated else None,
    )


async def run_llm_node(ctx: LLMContext, node: LLMNode, values: TemplateValues) -> NodeResult:
    started = datetime.now(UTC)
    clock = time.perf_counter()
    llm = ctx.workflow.llm_for(node)
    simulated = ctx.simulate or llm.provider == SIMULATED
    result = NodeResult(
        name=node.name,
        node_type="llm",
        status="failed",
        started_at=started,
        finished_at=started,
        duration_ms=0.0,
        provider=llm.provider,
        model=llm.model,
        simulated=simulated,
    )
    try:
        await _execute(ctx, node, values, result, simulated)
    except (NodeFailed, BudgetExceeded):
        pass  # the result already carries the status and the reason
    except asyncio.CancelledError:
        result.status, result.error = "cancelled", "run cancelled"
        raise
    finally:
        result.finished_at = datetime.now(UTC)
        result.duration_ms = (time.perf_counter() - clock) * 1000
    return result


async def _execute(
    ctx: LLMContext, node: LLMNode, values: TemplateValues, result: NodeResult, simulated: bool
) -> None:
    try:
        request = build_request(
            ctx.workflow,
            node,
            values,
            simulated,
            sample=ctx.sample,
            reference=ctx.references.get(node.name),
        )
    except KeyError as exc:
        result.error = str(exc.args[0])
        return
    key = request.fingerprint
    result.request_hash = key[:32]
    result.cache_key = key
    for message in request.messages:
        if message["role"] == "system":
            result.system = message["content"]
        else:
            result.prompt = message["content"]
    caching = (
        ctx.use_cache and ctx.cache is not None and node.cache is not None and node.cache.enabled
    )
    result.cache_enabled = caching
    if caching and _serve_from_cache(ctx, node, key, result):
        return

    shared = _reserve_shared(ctx, request, result)
    provider = ctx.simulated if simulated else ctx.real
    assert provider is not None, "real provider requested but not configured"
    probe = await _probe(ctx, request)
    budgeted: list[_Reserved] = []  # filled inside the concurrency slot, just before the call
    try:
        try:
            reply = await _call_with_retries(ctx, provider, request, result, node, budgeted)
        except BaseException:
            if budgeted:
                ctx.budget.settle(budgeted[0].reservation, 0, 0.0)
            if shared is not None and ctx.shared_budget is not None:
                ctx.shared_budget.settle(shared, 0, 0.0)
            raise
        usage = reply.usage
        result.input_tokens, result.output_tokens = usage.input_tokens, usage.output_tokens
        result.cached_tokens, result.reasoning_tokens = usage.cached_tokens, usage.reasoning_tokens
        result.usage_estimated = usage.estimated
        result.cost_usd = (
            None
            if usage.estimated and not ctx.price_estimated_usage
            else ctx.prices.cost(request.provider, request.model, usage)
        )
        if budgeted:
            model = (request.provider, request.model)
            if not usage.estimated:
                ctx.budget.learn(model, budgeted[0].counted, usage.input_tokens)
            ctx.budget.settle(budgeted[0].reservation, usage.tokens, result.cost_usd)
        if shared is not None and ctx.shared_budget is not None:
            ctx.shared_budget.settle(shared, usage.tokens, result.cost_usd)
    finally:
        if probe is not None:
            probe.set()
    result.response = reply.text
    try:
        result.output = decode_output(node, reply.text)
    except ValueError as exc:
        result.status, result.error = "failed", str(exc)
        return
    result.status = "success"
    if caching and ctx.cache is not None:
        cached = CachedReply(reply.text, usage.input_tokens, usage.output_tokens, result.cost_usd)
        ctx.cache.put(key, cached, node.cache.ttl if node.cache else None)


async def _probe(ctx: LLMContext, request: LLMRequest) -> asyncio.Event | None:
    """Under a budget, the first real call of each model goes alone: until a reply shows
    how the provider counts input (templates, tool prompts, another tokenizer), a wave of
    parallel calls could each overrun a reservation made on our own count. Returns the event
    to set when this call, the probe, is done; later calls wait for it. Simulated calls
    count exactly as the engine does and never wait."""
    if not ctx.budget.active or request.simulated:
        return None
    model = (request.provider, request.model)
    done = ctx.probes.get(model)
    if done is None:
        ctx.probes[model] = asyncio.Event()
        return ctx.probes[model]
    await done.wait()
    return None


@dataclass(slots=True)
class _Reserved:
    reservation: Reservation
    counted: int  # input tokens counted here, to learn how the provider counts


def _reserve(ctx: LLMContext, request: LLMRequest, result: NodeResult) -> _Reserved:
    """Book the call's worst case: input counted here, scaled by how far the provider has
    out-counted us in this run, plus every output token it may return."""
    counted = count_message_tokens(request.provider, request.model, request.messages)
    factor = ctx.budget.input_factor((request.provider, request.model))
    worst = Usage(math.ceil(counted * factor), request.max_output_tokens)
    cost = ctx.prices.cost(request.provider, request.model, worst)
    result.reserved_tokens, result.reserved_cost_usd = worst.tokens, cost
    try:
        return _Reserved(ctx.budget.reserve(worst.tokens, cost), counted)
    except BudgetExceeded as exc:
        result.status, result.error = "budget_exceeded", str(exc)
        raise


def _reserve_shared(ctx: LLMContext, request: LLMRequest, result: NodeResult) -> Reservation | None:
    """Book the call's worst case on the shared budget (an experiment's) before it waits for
    a slot, so calls of parallel runs cannot overshoot it together; a refusal stops the node
    with an error that names the shared budget."""
    if ctx.shared_budget is None:
        return None
    worst = Usage(
        count_message_tokens(request.provider, request.model, request.messages),
        request.max_output_tokens,
    )
    cost = ctx.prices.cost(request.provider, request.model, worst)
    try:
        return ctx.shared_budget.reserve(worst.tokens, cost)
    except BudgetExceeded as exc:
        result.status, result.error = "budget_exceeded", f"{SHARED_BUDGET}: {exc}"
        raise


def decode_output(node: LLMNode, text: str) -> Any:
    return json_output.parse(text, node.schema_) if node.output == "json" else text


def _serve_from_cache(ctx: LLMContext, node: LLMNode, key: str, result: NodeResult) -> bool:
    assert ctx.cache is not None
    hit = ctx.cache.get(key)
    if hit is None:
        return False
    try:
        result.output = decode_output(node, hit.text)
    except ValueError:
        return False  # an entry the current schema rejects is a miss, not a failure
    result.response = hit.text
    result.status = "success"
    result.cache_hit = True
    result.cost_usd = 0.0
    result.saved_cost_usd = hit.cost_usd
    return True


async def _call_with_retries(
    ctx: LLMContext,
    provider: Provider,
    request: LLMRequest,
    result: NodeResult,
    node: LLMNode,
    budgeted: list[_Reserved],
) -> Any:
    max_retries = ctx.workflow.retries_for(node)
    for attempt in range(max_retries + 1):
        waited = time.perf_counter()
        async with ctx.semaphore:
            result.queue_ms += (time.perf_counter() - waited) * 1000
            if ctx.budget.active and not budgeted:
                budgeted.append(_reserve(ctx, request, result))
            result.attempts = attempt + 1
            try:
                if provider.enforces_timeout:
                    reply = await provider.complete(request, attempt)
                else:
                    async with asyncio.timeout(request.timeout):
                        reply = await provider.complete(request, attempt)
                result.status = "success"
                return reply
            except TimeoutError:
                error = ProviderError(
                    f"timed out after {request.timeout:g}s", retryable=True, timeout=True
                )
            except ProviderError as exc:
                error = exc
        if not error.retryable or attempt == max_retries:
            result.status = "timeout" if error.timeout else "failed"
            tries = f" after {attempt + 1} attempts" if attempt else ""
            result.error = f"{error}{tries}"
            raise NodeFailed(result.error)
        await asyncio.sleep(provider.retry_delay(error, attempt, max_retries))
    raise AssertionError("unreachable")


class NodeFailed(Exception):
    """A node's call failed for good; its NodeResult already says why."""

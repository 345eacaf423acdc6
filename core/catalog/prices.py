"""What a call costs: LiteLLM's own cost functions applied to the provider's usage, with the
workflow's `pricing:` overrides passed to them.

LiteLLM prices tiers (over 200k input tokens), cached input tokens, reasoning tokens and the
rest of a provider's usage as the provider bills them, which flat per-token arithmetic gets
wrong. A model LiteLLM cannot price is None all the way through (NULL in telemetry), never
$0, and a price is never borrowed from another provider's entry.

Whether a model has a price is answered from LiteLLM's bundled price map without importing
LiteLLM (validation and pages must stay fast), resolving names the way LiteLLM's cost
function does; tests hold the two to the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache, lru_cache
from typing import Any, Protocol

from core.catalog import litellm_data
from core.catalog.litellm_runtime import litellm
from core.catalog.model_names import SIMULATED, bare_model, litellm_provider
from core.catalog.usage import Usage


class PriceOverride(Protocol):
    """A `pricing:` entry of a workflow (USD per million tokens)."""

    input_per_million: float
    output_per_million: float


@dataclass(frozen=True)
class Price:
    """A model's base rates: for display and for ranking models, never to bill a call."""

    input_per_token: float
    output_per_token: float
    source: str  # the price-map key or "pricing:" override it came from
    override: bool = False


def _entry_priced(entry: Mapping[str, Any]) -> bool:
    return entry.get("input_cost_per_token") is not None or (
        entry.get("output_cost_per_token") is not None
    )


def map_key(provider: str, model: str) -> str | None:
    """The price-map entry LiteLLM's cost function uses for this node, or None.

    Mirrors its lookup: `provider/model`, then the name as given, then the name without its
    prefix, an entry counting only when it is sold by that provider. A simulated node names
    a model without a provider, which LiteLLM resolves from the name alone.
    """
    prices = litellm_data.model_prices()
    if provider == SIMULATED:
        family, _, name = model.rpartition("/") if "/" in model else ("", "", model)
        candidates = [model, name]
    else:
        family, name = litellm_provider(provider), bare_model(provider, model)
        candidates = [f"{family}/{name}", model, name]
    for key in dict.fromkeys(candidates):
        entry = prices.get(key)
        if entry is None or not _entry_priced(entry):
            continue
        seller = str(entry.get("litellm_provider", ""))
        if not family or seller == family or seller.startswith(family + "-"):
            return key
    return None


class PriceBook:
    """Prices and costs for one workflow: its `pricing:` overrides win over LiteLLM's map."""

    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._overrides = {
            name: Price(
                p.input_per_million / 1e6, p.output_per_million / 1e6, f"pricing:{name}", True
            )
            for name, p in (overrides or {}).items()
        }
        self._memo: dict[tuple[str, str], Price | None] = {}
        self._cheaper: dict[tuple[str, str], list[tuple[str, Price]]] = {}

    def price(self, provider: str, model: str) -> Price | None:
        """The model's base rates, or None when nobody prices it."""
        key = (provider, model)
        if key not in self._memo:
            self._memo[key] = self._lookup(provider, model)
        return self._memo[key]

    def known(self, provider: str, model: str) -> bool:
        return self.price(provider, model) is not None

    def cost(self, provider: str, model: str, usage: Usage) -> float | None:
        """What the call cost, by LiteLLM's cost function; None when it has no price."""
        price = self.price(provider, model)
        if price is None:
            return None
        if price.override:
            return _cost(model, None, usage.input_tokens, usage.output_tokens, 0, 0, price)
        target, family = _litellm_target(provider, model)
        if usage.raw is not None:
            return _price_usage_object(target, family, usage)
        return _cost(
            target,
            family,
            usage.input_tokens,
            usage.output_tokens,
            usage.cached_tokens,
            usage.reasoning_tokens,
            None,
        )

    def rates_at(
        self, provider: str, model: str, input_tokens: int, output_tokens: int
    ) -> Price | None:
        """Marginal USD per input and per output token of a call of about this size, from
        LiteLLM's cost function: what a linear model of a run's cost multiplies by. Taken at
        the call's size so a tier (over 200k input tokens) shows in the rates."""
        size_in, size_out = max(1, input_tokens), max(1, output_tokens)
        prompt = self.cost(provider, model, Usage(size_in, 0))
        whole = self.cost(provider, model, Usage(size_in, size_out))
        if prompt is None or whole is None:
            return None
        price = self.price(provider, model)
        source = price.source if price else f"{provider}/{model}"
        return Price(prompt / size_in, (whole - prompt) / size_out, source)

    def cost_of_calls(
        self,
        provider: str,
        model: str,
        calls: int,
        input_tokens: float,
        output_tokens: float,
        cached_tokens: float = 0,
        reasoning_tokens: float = 0,
    ) -> float | None:
        """What `calls` calls with these token totals would cost: the average call priced by
        LiteLLM, times the number of calls. Exact while the calls fall in one price tier;
        what-ifs (another model for recorded tokens) have no per-call usage to do better."""
        if calls <= 0:
            return 0.0 if self.known(provider, model) else None
        average = Usage(
            round(input_tokens / calls),
            round(output_tokens / calls),
            round(cached_tokens / calls),
            round(reasoning_tokens / calls),
        )
        one = self.cost(provider, model, average)
        return None if one is None else one * calls

    def _lookup(self, provider: str, model: str) -> Price | None:
        for name in dict.fromkeys((model, bare_model(provider, model))):
            if name in self._overrides:
                return self._overrides[name]
        key = map_key(provider, model)
        return None if key is None else _map_price(key)

    def cheaper_models(self, provider: str, model: str, limit: int = 2) -> list[tuple[str, Price]]:
        """Chat models sold by the same provider for less, nearest in price first.

        Nearest first because the closest cheaper model is the likeliest drop-in; the
        cheapest of all is rarely comparable in quality. Each model's list is worked out
        once per book: it walks the whole price map.
        """
        key = (provider, model)
        if key not in self._cheaper:
            self._cheaper[key] = self._find_cheaper(provider, model)
        return self._cheaper[key][:limit]

    def _find_cheaper(self, provider: str, model: str) -> list[tuple[str, Price]]:
        current = self.price(provider, model)
        if current is None or current.override:
            return []
        entry = litellm_data.model_prices().get(current.source, {})
        family = entry.get("litellm_provider")
        if family is None:
            return []
        current_rate = current.input_per_token + current.output_per_token
        options = []
        today = date.today().isoformat()
        for key, other in litellm_data.model_prices().items():
            if other.get("litellm_provider") != family or other.get("mode") != "chat":
                continue
            price = _map_price(key)
            retired = other.get("deprecation_date", "9999") < today
            if price is None or key == current.source or retired:
                continue
            rate = price.input_per_token + price.output_per_token
            if 0 < rate < current_rate:
                options.append((key, price))
        options.sort(key=lambda item: -(item[1].input_per_token + item[1].output_per_token))
        unique: dict[tuple[float, float], tuple[str, Price]] = {}
        for key, price in options:  # dated snapshots of one model share its price
            unique.setdefault((price.input_per_token, price.output_per_token), (key, price))
        return list(unique.values())


def _map_price(key: str) -> Price | None:
    entry = litellm_data.model_prices().get(key)
    if not entry or not _entry_priced(entry):
        return None
    return Price(
        float(entry.get("input_cost_per_token") or 0.0),
        float(entry.get("output_cost_per_token") or 0.0),
        key,
    )


def _litellm_target(provider: str, model: str) -> tuple[str, str | None]:
    """The model name and provider to hand LiteLLM's cost function."""
    if provider == SIMULATED:
        return model, None
    return bare_model(provider, model), litellm_provider(provider)


def _litellm_usage(
    input_tokens: int, output_tokens: int, cached_tokens: int, reasoning_tokens: int
) -> Any:
    types = litellm().types.utils
    return types.Usage(
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        prompt_tokens_details=types.PromptTokensDetailsWrapper(cached_tokens=cached_tokens),
        completion_tokens_details=types.CompletionTokensDetailsWrapper(
            reasoning_tokens=reasoning_tokens
        ),
    )


# The cost of a usage is a pure function of it: calls repeating a usage (one template, one
# cached answer) need not pay LiteLLM's ~40 µs again.
@lru_cache(maxsize=16384)
def _cost(
    model: str,
    family: str | None,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int,
    reasoning_tokens: int,
    override: Price | None,
) -> float | None:
    module = litellm()
    custom = None
    if override is not None:
        custom = {
            "input_cost_per_token": override.input_per_token,
            "output_cost_per_token": override.output_per_token,
        }
    try:
        prompt, completion = module.cost_per_token(
            model=model,
            custom_llm_provider=family,
            prompt_tokens=input_tokens,
            completion_tokens=output_tokens,
            usage_object=_litellm_usage(
                input_tokens, output_tokens, cached_tokens, reasoning_tokens
            ),
            custom_cost_per_token=custom,
        )
    except Exception:  # LiteLLM raises several kinds for a model it cannot price
        return None
    return float(prompt) + float(completion)


def _price_usage_object(model: str, family: str | None, usage: Usage) -> float | None:
    """A real call: the provider's own usage object, whatever fields it carries."""
    try:
        prompt, completion = litellm().cost_per_token(
            model=model,
            custom_llm_provider=family,
            prompt_tokens=usage.input_tokens,
            completion_tokens=usage.output_tokens,
            usage_object=usage.raw,
        )
    except Exception:  # LiteLLM raises several kinds for a model it cannot price
        return None
    return float(prompt) + float(completion)


@cache
def chat_models() -> dict[str, tuple[str, ...]]:
    """Current chat models with a price, per LiteLLM provider: the what-if choices.

    Fine-tunes (`ft:`) and retired models are left out: nobody can swap to them.
    """
    today = date.today().isoformat()
    catalogue: dict[str, list[str]] = {}
    for key, entry in litellm_data.model_prices().items():
        if (
            entry.get("mode") != "chat"
            or entry.get("input_cost_per_token") is None
            or entry.get("output_cost_per_token") is None
            or key.startswith("ft:")
            or entry.get("deprecation_date", "9999") < today
        ):
            continue
        catalogue.setdefault(entry.get("litellm_provider", "other"), []).append(key)
    return {provider: tuple(sorted(keys)) for provider, keys in catalogue.items()}

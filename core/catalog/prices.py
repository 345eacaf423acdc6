"""Prices per token from LiteLLM's bundled price map, overridden by the workflow's `pricing:`.

An unknown price is None all the way through (NULL in telemetry), never $0: a report that
silently priced a model at zero would under-state spend exactly where nobody is looking.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Protocol

from core.catalog import litellm_data
from core.catalog.model_names import SIMULATED, price_keys

# Where a bare model name (a simulated node's `model: claude-haiku-4-5`) is looked up when
# the map lists it only under a provider prefix; first match wins.
_PREFERRED_PREFIXES = ("openai", "anthropic", "gemini", "vertex_ai", "mistral", "groq")


class PriceOverride(Protocol):
    """A `pricing:` entry of a workflow (USD per million tokens)."""

    input_per_million: float
    output_per_million: float


@dataclass(frozen=True)
class Price:
    input_per_token: float
    output_per_token: float
    source: str  # the price-map key or "pricing:" override it came from

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * self.input_per_token + output_tokens * self.output_per_token


@cache
def _suffix_index() -> dict[str, str]:
    """Bare model name -> its preferred prefixed key in the price map."""
    index: dict[str, str] = {}
    rank = {prefix: position for position, prefix in enumerate(_PREFERRED_PREFIXES)}
    for key in litellm_data.model_prices():
        if "/" not in key:
            continue
        prefix, bare = key.split("/", 1)
        current = index.get(bare)
        if current is None or rank.get(prefix, 99) < rank.get(current.split("/", 1)[0], 99):
            index[bare] = key
    return index


def _chat_price(key: str) -> Price | None:
    entry = litellm_data.model_prices().get(key)
    if not entry:
        return None
    input_cost = entry.get("input_cost_per_token")
    output_cost = entry.get("output_cost_per_token")
    if input_cost is None and output_cost is None:
        return None
    return Price(float(input_cost or 0.0), float(output_cost or 0.0), key)


class PriceBook:
    """Looks up prices once per model; the workflow's overrides win over the bundled map."""

    def __init__(self, overrides: Mapping[str, PriceOverride] | None = None) -> None:
        self._overrides = {
            name: Price(p.input_per_million / 1e6, p.output_per_million / 1e6, f"pricing:{name}")
            for name, p in (overrides or {}).items()
        }
        self._memo: dict[tuple[str, str], Price | None] = {}
        self._cheaper: dict[tuple[str, str], list[tuple[str, Price]]] = {}

    def price(self, provider: str, model: str) -> Price | None:
        key = (provider, model)
        if key not in self._memo:
            self._memo[key] = self._lookup(provider, model)
        return self._memo[key]

    def cost(
        self, provider: str, model: str, input_tokens: int, output_tokens: int
    ) -> float | None:
        price = self.price(provider, model)
        return None if price is None else price.cost(input_tokens, output_tokens)

    def _lookup(self, provider: str, model: str) -> Price | None:
        candidates = price_keys(provider, model)
        for candidate in candidates:
            if candidate in self._overrides:
                return self._overrides[candidate]
        for candidate in candidates:
            found = _chat_price(candidate)
            if found:
                return found
        if provider == SIMULATED or "/" not in model:
            prefixed = _suffix_index().get(candidates[-1])
            if prefixed:
                return _chat_price(prefixed)
        return None

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
        if current is None:
            return []
        entry = litellm_data.model_prices().get(current.source, {})
        family = entry.get("litellm_provider")
        if family is None:
            return []
        current_rate = current.input_per_token + current.output_per_token
        options = []
        for key, other in litellm_data.model_prices().items():
            if other.get("litellm_provider") != family or other.get("mode") != "chat":
                continue
            price = _chat_price(key)
            retired = other.get("deprecation_date", "9999") < date.today().isoformat()
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

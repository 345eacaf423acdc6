"""How a workflow's `provider` + `model` map onto LiteLLM's `provider/model` names."""

from __future__ import annotations

SIMULATED = "simulated"

# Workflow-friendly provider names that LiteLLM spells differently.
PROVIDER_ALIASES = {"google": "gemini"}

# Providers that sell the same models under another prefix in the price map.
PRICE_FALLBACK_PREFIXES = {"gemini": ("vertex_ai",), "vertex_ai": ("gemini",)}


def litellm_provider(provider: str) -> str:
    return PROVIDER_ALIASES.get(provider, provider)


def litellm_model(provider: str, model: str) -> str:
    """The name LiteLLM routes on: `gemini/gemini-2.0-flash`, `gpt-4o-mini` stays prefixed too."""
    prefix = litellm_provider(provider)
    if model.startswith(prefix + "/"):
        return model
    return f"{prefix}/{model}"


def bare_model(provider: str, model: str) -> str:
    prefix = litellm_provider(provider) + "/"
    return model[len(prefix) :] if model.startswith(prefix) else model


def price_keys(provider: str, model: str) -> list[str]:
    """Candidate keys in a price map, most specific first.

    A simulated node is priced as the model it names, under whatever provider sells it.
    """
    bare = bare_model(provider, model)
    keys = [model, bare]
    if provider != SIMULATED:
        prefix = litellm_provider(provider)
        keys.insert(0, f"{prefix}/{bare}")
        keys += [f"{other}/{bare}" for other in PRICE_FALLBACK_PREFIXES.get(prefix, ())]
    return list(dict.fromkeys(keys))

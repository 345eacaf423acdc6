"""How a workflow's `provider` + `model` map onto LiteLLM's `provider/model` names."""

from __future__ import annotations

SIMULATED = "simulated"

# Workflow-friendly provider names that LiteLLM spells differently.
PROVIDER_ALIASES = {"google": "gemini"}


# And back: the name a workflow file writes for a LiteLLM provider (`gemini` -> `google`).
WORKFLOW_PROVIDERS = {litellm: ours for ours, litellm in PROVIDER_ALIASES.items()}


def litellm_provider(provider: str) -> str:
    return PROVIDER_ALIASES.get(provider, provider)


def workflow_provider(provider: str) -> str:
    """The provider as workflow files (and the docs) write it: pickers that list LiteLLM's
    providers show and write this name, so a what-if reads like the file it changes."""
    return WORKFLOW_PROVIDERS.get(provider, provider)


def litellm_model(provider: str, model: str) -> str:
    """The name LiteLLM routes on: `gemini/gemini-2.0-flash`, `gpt-4o-mini` stays prefixed too."""
    prefix = litellm_provider(provider)
    if model.startswith(prefix + "/"):
        return model
    return f"{prefix}/{model}"


def bare_model(provider: str, model: str) -> str:
    prefix = litellm_provider(provider) + "/"
    return model[len(prefix) :] if model.startswith(prefix) else model

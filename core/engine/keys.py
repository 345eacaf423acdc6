"""A workflow's real calls, bare of messages, and refusing before any spend when one would
lack its key: a run checks before it starts, a batch or experiment once on the driver
rather than on every row (or cell) of its workers."""

from __future__ import annotations

from core.catalog.model_names import SIMULATED
from core.providers.base import LLMRequest
from core.workflow import Workflow
from core.workflow.models import LLMNode


def real_calls(workflow: Workflow) -> list[LLMRequest]:
    """One bare request per LLM node that calls a real provider: what the key check needs."""
    calls = []
    for node in workflow.spec.nodes:
        if isinstance(node, LLMNode):
            llm = workflow.llm_for(node)
            if llm.provider != SIMULATED:
                calls.append(
                    LLMRequest(
                        provider=llm.provider,
                        model=llm.model,
                        messages=[],
                        max_output_tokens=llm.max_output_tokens,
                        api_base=llm.api_base,
                        api_key_env=llm.api_key_env,
                    )
                )
    return calls


def check_keys(workflow: Workflow) -> None:
    """Raises ProviderConfigError naming the missing key variable, if any."""
    calls = real_calls(workflow)
    if calls:
        from core.providers.litellm_provider import check_keys as check

        check(calls)

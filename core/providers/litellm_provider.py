"""Real model calls through LiteLLM, which speaks every provider's API.

The engine owns the retry loop (so attempts are counted in telemetry); the back-off between
attempts is LiteLLM's own (`calculate_retry_after`, honouring Retry-After). A reply keeps
the provider's usage object, which is what the call is priced on; a reply without usage is
counted locally and marked estimated, never taken as zero tokens.
"""

from __future__ import annotations

import contextlib
import json
import os
from types import ModuleType
from typing import Any

from core.catalog.litellm_runtime import litellm
from core.catalog.model_names import litellm_model, litellm_provider
from core.catalog.tokens import count_message_tokens, encoder_for
from core.catalog.usage import Usage
from core.errors import ProviderConfigError
from core.providers.base import LLMReply, LLMRequest, ProviderError

# OpenAI-compatible servers (vLLM, llama.cpp, test servers) often need no key, but the client
# insists on one; send a placeholder rather than a real provider key to a custom server.
_PLACEHOLDER_KEY = "no-key-needed"
_BODY_PREVIEW = 200
# How LiteLLM words a 200 response whose body it could not use (it raises those as a 500).
_MALFORMED_MARKERS = ("response with no 'choices'", "Empty or invalid response")


def missing_key(request: LLMRequest) -> str | None:
    """The environment variable a request needs but lacks, or None when it can be sent."""
    if request.api_base:
        if request.api_key_env and not os.environ.get(request.api_key_env):
            return request.api_key_env
        return None
    report = litellm().validate_environment(litellm_model(request.provider, request.model))
    missing = [name for name in report.get("missing_keys", []) if not name.endswith("_API_BASE")]
    if not missing or any(os.environ.get(name) for name in missing):
        return None
    return missing[-1] if "GEMINI_API_KEY" in missing else missing[0]


def check_keys(requests: list[LLMRequest]) -> None:
    """Raise ProviderConfigError for the first call whose key is missing, before any spend."""
    for request in requests:
        variable = missing_key(request)
        if variable:
            raise ProviderConfigError(
                f"{variable} is not set: the {request.provider} model '{request.model}' needs "
                f"it. Export {variable}=..., or run with --simulate to use the offline "
                "simulated provider."
            )


_warmed: set[str] = set()


async def warm(requests: list[LLMRequest]) -> None:
    """One call per provider through LiteLLM's own mock path, before a run's clock: its
    first real call would otherwise import and set up dozens of modules (100 ms and
    more) inside the first node's latency. Nothing leaves the process. Once per provider
    per process."""
    for request in requests:
        family = litellm_provider(request.provider)
        if family in _warmed:
            continue
        _warmed.add(family)
        with contextlib.suppress(Exception):  # a warm-up must never stop a run
            await litellm().acompletion(
                model=litellm_model(request.provider, request.model),
                messages=[{"role": "user", "content": "warm-up"}],
                max_tokens=1,
                mock_response="ok",
                api_base=request.api_base,
                api_key=_PLACEHOLDER_KEY,
            )


class LiteLLMProvider:
    enforces_timeout = False

    async def complete(self, request: LLMRequest, attempt: int) -> LLMReply:
        module = litellm()
        kwargs: dict[str, Any] = {
            "model": litellm_model(request.provider, request.model),
            "messages": request.messages,
            "max_tokens": request.max_output_tokens,
            "timeout": request.timeout,
            "num_retries": 0,
            "max_retries": 0,
        }
        for name in ("temperature", "top_p", "seed"):
            value = getattr(request, name)
            if value is not None:
                kwargs[name] = value
        if request.json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        if request.api_base:
            kwargs["api_base"] = request.api_base
            key = os.environ.get(request.api_key_env) if request.api_key_env else None
            kwargs["api_key"] = key or _PLACEHOLDER_KEY
        try:
            response = await module.acompletion(**kwargs)
        except Exception as exc:  # every LiteLLM failure becomes a located, classified error
            raise _classify(exc, module) from exc
        return _reply(response, request)

    def retry_delay(self, error: ProviderError, attempt: int, max_retries: int) -> float:
        headers = {"retry-after": str(error.retry_after)} if error.retry_after else None
        return float(
            litellm().utils.calculate_retry_after(
                remaining_retries=max_retries - attempt,
                max_retries=max_retries,
                response_headers=headers,
            )
        )


def _reply(response: Any, request: LLMRequest) -> LLMReply:
    try:
        text = response.choices[0].message.content or ""
    except (AttributeError, IndexError, TypeError) as exc:
        raise ProviderError(f"malformed response from provider: {exc}", retryable=False) from exc
    return LLMReply(text, _usage(getattr(response, "usage", None), request, text))


def _usage(usage: Any, request: LLMRequest, text: str) -> Usage:
    """The provider's usage; when it sent none (or no token counts), what we count here."""
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int) or prompt + completion <= 0:
        return Usage(
            count_message_tokens(request.provider, request.model, request.messages),
            encoder_for(request.provider, request.model)(text),
            estimated=True,
        )
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or getattr(usage, "cache_read_input_tokens", 0)
    reasoning = getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", 0)
    return Usage(prompt, completion, int(cached or 0), int(reasoning or 0), raw=usage)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _classify(exc: Exception, module: ModuleType) -> ProviderError:
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", None) or exc)
    message = " ".join(message.split())[: _BODY_PREVIEW * 2]
    if _caused_by(exc, json.JSONDecodeError) or any(m in message for m in _MALFORMED_MARKERS):
        # LiteLLM reports a body it cannot use as a 500; the server did answer, and asking
        # again would most likely get the same malformed body.
        return ProviderError(f"malformed response from provider: {message}", retryable=False)
    if isinstance(exc, module.Timeout):
        return ProviderError(f"timed out: {message}", retryable=True, status=status, timeout=True)
    if isinstance(exc, module.APIConnectionError) and status in (None, 500):
        return ProviderError(f"connection failed: {message}", retryable=True, status=status)
    if isinstance(exc, module.AuthenticationError):
        return ProviderError(f"authentication failed (401): {message}", retryable=False, status=401)
    retry_after = _retry_after(exc)
    if isinstance(status, int):
        retryable = bool(module.utils.should_retry(status))
        return ProviderError(
            f"HTTP {status}: {message}", retryable=retryable, status=status, retry_after=retry_after
        )
    return ProviderError(f"{type(exc).__name__}: {message}", retryable=False)


def _retry_after(exc: Exception) -> float | None:
    headers = getattr(exc, "litellm_response_headers", None) or getattr(
        getattr(exc, "response", None), "headers", None
    )
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

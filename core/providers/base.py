"""What every provider takes and returns, and how it reports failures."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.schema import SimulateSettings


@dataclass(frozen=True)
class LLMRequest:
    provider: str
    model: str
    messages: list[dict[str, str]]
    max_output_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = 60.0
    simulate: SimulateSettings = field(default_factory=SimulateSettings)

    def fingerprint(self, simulated: bool) -> str:
        """Hash of everything that changes the answer; the cache key and the simulation seed.

        Credentials never enter it (only the *name* of a key variable could, and does not), so
        cache keys and telemetry carry no secrets.
        """
        material = {
            "provider": self.provider,
            "model": self.model,
            "messages": self.messages,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "max_output_tokens": self.max_output_tokens,
            "json": self.json_mode,
            "schema": self.json_schema,
            "api_base": self.api_base,
            "simulated": simulated,
        }
        if simulated:
            material["simulate"] = self.simulate.model_dump()
        blob = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class LLMReply:
    text: str
    input_tokens: int
    output_tokens: int


class ProviderError(Exception):
    """A failed call; `retryable` marks the transient kinds (429, 5xx, timeouts, connections)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        timeout: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.timeout = timeout


class Provider(Protocol):
    async def complete(self, request: LLMRequest, attempt: int) -> LLMReply: ...

    def retry_delay(self, error: ProviderError, attempt: int, max_retries: int) -> float: ...

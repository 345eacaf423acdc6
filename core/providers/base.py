"""What every provider takes and returns, and how it reports failures."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from core.catalog.usage import Usage
from core.workflow.models import SimulateSettings


@dataclass(frozen=True, slots=True)
class Reference:
    """The right answer to a request, known only to the simulation.

    An experiment knows each item's expected answer; a simulated model gives it as often as its
    class and the item's difficulty make plausible (docs/experiments.md), which is what makes a
    simulated experiment worth reading. Real providers never see it.
    """

    answer: Any  # text or a number; for a json node, an object of the fields known
    choices: tuple[str, ...] = ()  # the wrong answers a model plausibly gives instead
    item: str = ""  # the dataset item: its difficulty is the same for every variant


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building a request cost several µs on the engine's hot path.
@dataclass(slots=True)
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

    simulated: bool = False
    # An experiment's repeat: a fresh sample of the same request. It reaches the cache key and
    # the simulation's seed, never a real provider's call.
    sample: int = 0
    reference: Reference | None = None  # read by the simulated provider only
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        """Hash of everything that changes the answer; the cache key and the simulation seed.

        Credentials never enter it, so cache keys and telemetry carry no secrets. A simulated
        answer never shares a key with a real one. Computed once: a built request is never
        changed.
        """
        if self._fingerprint is None:
            self._fingerprint = self._hash()
        return self._fingerprint

    def _hash(self) -> str:
        material = [
            self.provider,
            self.model,
            self.messages,
            self.temperature,
            self.top_p,
            self.seed,
            self.max_output_tokens,
            self.json_mode,
            self.json_schema,
            self.api_base,
            self.simulated,
        ]
        if self.simulated:
            settings = self.simulate
            material += [settings.latency_ms, settings.output_tokens, settings.error_rate]
            if self.reference is not None:
                reference = self.reference
                material += [reference.answer, reference.choices, reference.item]
        if self.sample:  # left out at 0, so keys made before repeats existed still match
            material.append(self.sample)
        return hashlib.sha256(orjson.dumps(material)).hexdigest()


@dataclass(slots=True)
class LLMReply:
    text: str
    usage: Usage


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
    # True when complete() itself gives up after request.timeout; the engine then sets no
    # timer of its own around the call.
    enforces_timeout: bool

    async def complete(self, request: LLMRequest, attempt: int) -> LLMReply: ...

    def retry_delay(self, error: ProviderError, attempt: int, max_retries: int) -> float: ...

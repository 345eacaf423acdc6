"""The simulated provider: realistic, deterministic LLM calls with no network and no key.

Everything derives from the request's fingerprint, so the same request always yields the same
text, length and latency (runs are reproducible), while different requests spread over a
realistic distribution (estimates have something to calibrate against). Latency follows the
shape of real streaming APIs: time to first token plus output tokens over a throughput that
depends on the model's class.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from core.catalog.model_names import bare_model
from core.catalog.tokens import count_message_tokens, encoder_for
from core.catalog.usage import Usage
from core.providers.base import LLMReply, LLMRequest, ProviderError


@dataclass(frozen=True)
class ModelClass:
    name: str
    first_token_s: float
    tokens_per_s: float
    typical_output: int  # median reply length when max_output_tokens leaves room


FAST = ModelClass("fast", 0.30, 140.0, 260)
STANDARD = ModelClass("standard", 0.55, 75.0, 380)
LARGE = ModelClass("large", 1.10, 40.0, 520)

_FAST = re.compile(r"mini|nano|flash|haiku|lite|small|tiny|instant|[^0-9](1|3|7|8)b\b")
_LARGE = re.compile(
    r"opus|\bo1\b|\bo3\b|o1-|o3-|gpt-4(?!o|\.1-mini|\.1-nano)|-pro\b|70b|405b|large"
)

# Relative spread of reply lengths for one prompt shape (log-normal sigma).
LENGTH_SPREAD = 0.12
LATENCY_JITTER = 0.08

_VOCABULARY = """
analysis approach baseline budget cache careful clear context cost data design detail
evidence example factor finding focus impact insight key latency measure method model
note option outcome pattern plan point process quality result review risk scope signal
simple source step summary system target team tradeoff trend useful value workflow
"""
_WORDS = _VOCABULARY.split()


@cache
def model_class(provider: str, model: str) -> ModelClass:
    name = bare_model(provider, model).lower()
    if _FAST.search(name):
        return FAST
    if _LARGE.search(name):
        return LARGE
    return STANDARD


def _uniforms(seed_hex: str, salt: str = "") -> list[float]:
    """Four deterministic uniforms in (0, 1) from a hex digest: cheaper than seeding a PRNG,
    which matters when thousands of zero-latency nodes run in a benchmark."""
    if salt:
        seed_hex = hashlib.sha256((seed_hex + salt).encode()).hexdigest()
    return [(int(seed_hex[i : i + 14], 16) + 0.5) / 16**14 for i in range(0, 56, 14)]


def _normal(u1: float, u2: float) -> float:
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _prose(rng: random.Random, words: int) -> str:
    """Sentences of plausible length from a small vocabulary: reads like text, costs little."""
    sentences = []
    while words > 0:
        length = min(words, rng.randint(6, 16))
        picked = rng.choices(_WORDS, k=length)
        sentences.append(" ".join(picked).capitalize() + ".")
        words -= length
    return " ".join(sentences)


def _fake_value(kind: Any, rng: random.Random) -> Any:
    if isinstance(kind, dict):
        return {field: _fake_value(sub, rng) for field, sub in kind.items()}
    if isinstance(kind, list):
        return [_fake_value(kind[0] if kind else "string", rng) for _ in range(rng.randint(2, 4))]
    if kind == "integer":
        return rng.randint(1, 10)
    if kind == "number":
        return round(rng.uniform(0, 100), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [_prose(rng, rng.randint(2, 6)) for _ in range(rng.randint(2, 4))]
    if kind == "object":
        return {"note": _prose(rng, 4)}
    return _prose(rng, rng.randint(6, 24))


def _subject(messages: list[dict[str, str]]) -> str:
    """A short echo of the prompt, so simulated outputs visibly follow their inputs."""
    text = " ".join(messages[-1]["content"].split())
    return text[:80] + ("…" if len(text) > 80 else "")


# ---------------------------------------------------------------------------- experiments
# When an experiment tells the simulation an item's right answer (a Reference), a simulated
# model gives it with a probability that rises with the model's class and falls with the
# item's difficulty, on a logit scale: bigger models score higher on average, every model
# misses hard items more often, and the same item is as hard for every variant (pairing).
SKILL = {FAST.name: 0.4, STANDARD.name: 1.1, LARGE.name: 1.9}
MODEL_SPREAD = 0.3  # models of one class differ by up to this much, fixed per model name
DIFFICULTY_MEAN, DIFFICULTY_SD = 0.2, 1.1  # an item's difficulty, drawn once per item
# Prompts that show examples or ask for reasoning help, as they tend to with real models.
FEW_SHOT_BONUS = 0.5
REASONING_BONUS = 0.3
_FEW_SHOT = re.compile(r"\bexamples?\b|\be\.g\.", re.IGNORECASE)
_REASONING = re.compile(r"step by step|think (it )?through|reason carefully", re.IGNORECASE)
# A prompt asking for the bare answer gets exactly that; any other gets it inside prose.
_TERSE = re.compile(
    r"\b(only|just|exactly|one word|single word|nothing else|no explanation)\b", re.IGNORECASE
)
NUMBER_ERROR = 0.25  # relative spread of a wrong numeric answer
FIELD_NOISE = 0.5  # spread of a numeric JSON field (a judge's score) at zero skill
ANSWER_SPREAD = 0.15  # how much one answer's quality strays from its model's average


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@cache
def _skill(provider: str, model: str) -> float:
    """The model's class skill plus its own fixed offset within the class."""
    offset = MODEL_SPREAD * (2 * _uniforms(_digest(bare_model(provider, model)))[0] - 1)
    return SKILL[model_class(provider, model).name] + offset


@lru_cache(maxsize=1 << 16)
def _difficulty(item: str) -> float:
    u = _uniforms(_digest(f"item {item}"))
    return DIFFICULTY_MEAN + DIFFICULTY_SD * _normal(u[0], u[1])


def success_probability(provider: str, model: str, instructions: str, item: str) -> float:
    """Chance that a simulated `model` answers `item` right, given the prompt's wording."""
    bonus = FEW_SHOT_BONUS * bool(_FEW_SHOT.search(instructions)) + REASONING_BONUS * bool(
        _REASONING.search(instructions)
    )
    logit = _skill(provider, model) + bonus - _difficulty(item)
    return 1 / (1 + math.exp(-logit))


def answer_quality(provider: str, model: str, instructions: str, item: str, output: str) -> float:
    """The quality in [0, 1] a simulated judge perceives in a simulated answer that has no
    known right answer: its model's chance of success on the item, plus a spread per answer."""
    u = _uniforms(_digest(f"answer {output}"))
    p = success_probability(provider, model, instructions, item)
    return min(1.0, max(0.0, p + ANSWER_SPREAD * _normal(u[0], u[1])))


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _wrong(answer: Any, choices: tuple[str, ...], u: list[float]) -> Any:
    """A plausible wrong answer: another label, a number that is off, or a partial answer."""
    number = _as_number(answer)
    if number is not None:
        off = number * (1 + NUMBER_ERROR * _normal(u[1], u[2])) or _normal(u[1], u[2])
        if float(number).is_integer():
            off = round(off)
            return int(off if off != number else off + 1)
        decimals = len(str(answer).rsplit(".", 1)[-1]) if "." in str(answer) else 2
        return round(off, decimals)
    others = [choice for choice in choices if choice != answer]
    if others:
        return others[int(u[1] * len(others))]
    words = str(answer).split()
    if len(words) > 1:
        del words[int(u[1] * len(words))]
        return " ".join(words)
    return "unknown"


def _wrong_field(answer: Any, choices: tuple[str, ...], p: float, u: list[float]) -> Any:
    """A JSON field as a model of success chance `p` reports it: numbers drift (a judge's
    score in [0, 1] stays there), other values are right with chance p."""
    if isinstance(answer, int | float) and not isinstance(answer, bool):
        value = answer + FIELD_NOISE * (1 - p) * _normal(u[1], u[2])
        return round(min(1.0, max(0.0, value)) if 0 <= answer <= 1 else value, 2)
    return answer if u[3] < p else _wrong(answer, choices, u)


def _reference_answer(request: LLMRequest, seed: str, verbose_tokens: int) -> str:
    """The reply to a request whose right answer is known (docs/experiments.md)."""
    reference = request.reference
    assert reference is not None
    instructions = " ".join(message["content"] for message in request.messages)
    p = success_probability(request.provider, request.model, instructions, reference.item)
    u = _uniforms(seed, "reference")
    if request.json_mode:
        value = _fake_value(request.json_schema or {"result": "string"}, random.Random(seed))
        known = reference.answer if isinstance(reference.answer, dict) else {}
        for field, answer in known.items():
            value[field] = _wrong_field(answer, reference.choices, p, _uniforms(seed, field))
        return json.dumps(value, ensure_ascii=False)
    answer = reference.answer if u[0] < p else _wrong(reference.answer, reference.choices, u)
    text = answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)
    if _TERSE.search(instructions):
        return text
    model = bare_model(request.provider, request.model)
    header = f"[simulated {model}] Answer: {text}."
    words = round(verbose_tokens / 1.3) - len(header.split())
    return f"{header}\n{_prose(random.Random(seed), words)}" if words > 0 else header


class SimulatedProvider:
    # It knows each call's latency in advance, so it times out by itself: no timer per call.
    enforces_timeout = True

    async def complete(self, request: LLMRequest, attempt: int) -> LLMReply:
        seed, text, length, delay = self._prepare(request, attempt)
        if delay > request.timeout:  # the call would not have come back in time
            await asyncio.sleep(request.timeout)
            raise ProviderError(
                f"timed out after {request.timeout:g}s", retryable=True, timeout=True
            )
        if delay > 0:
            await asyncio.sleep(delay)
        return self._finish(request, seed, text, length)

    def answer_now(self, request: LLMRequest, attempt: int = 0) -> tuple[LLMReply, float]:
        """The reply and how long the call would have taken (seconds), without waiting: for
        history that is generated rather than lived through (the demo's experiment)."""
        seed, text, length, delay = self._prepare(request, attempt)
        if delay > request.timeout:
            raise ProviderError(
                f"timed out after {request.timeout:g}s", retryable=True, timeout=True
            )
        return self._finish(request, seed, text, length), delay

    def _prepare(self, request: LLMRequest, attempt: int) -> tuple[str, str | None, int, float]:
        """(seed, text if already made, output length, delay in seconds) of a call."""
        seed = request.fingerprint
        settings = request.simulate
        if settings.error_rate and _uniforms(seed, f"error{attempt}")[0] < settings.error_rate:
            raise ProviderError(
                "simulated provider error (503 Service Unavailable)", retryable=True, status=503
            )
        klass = model_class(request.provider, request.model)
        # The random draws are made only when the settings leave something to draw: fixed
        # figures (as in benchmarks) keep the work before the wait minimal.
        draws: list[float] | None = None
        text = None
        if request.reference is not None:
            draws = _uniforms(seed)
            text = _reference_answer(request, seed, self._length(request, klass, draws))
            length = encoder_for(request.provider, request.model)(text)
        elif request.json_mode:
            value = _fake_value(request.json_schema or {"result": "string"}, random.Random(seed))
            text = json.dumps(value, ensure_ascii=False)
            length = encoder_for(request.provider, request.model)(text)
        elif settings.output_tokens:
            length = settings.output_tokens
        else:
            draws = _uniforms(seed)
            length = self._length(request, klass, draws)
        if settings.latency_ms is not None:
            delay = settings.latency_ms / 1000
        else:
            draws = draws or _uniforms(seed)
            jitter = math.exp(LATENCY_JITTER * _normal(draws[2], draws[3]))
            delay = (klass.first_token_s + length / klass.tokens_per_s) * jitter
        return seed, text, length, delay

    def _finish(self, request: LLMRequest, seed: str, text: str | None, length: int) -> LLMReply:
        # Text and token counts are made after the wait, as a provider reports usage at the
        # end: parallel calls then start their waits without queueing behind this work.
        if text is None:
            text = self._text(request, seed, length)
            if request.simulate.output_tokens is None:
                # Bill what the text really holds, so an output that feeds a later prompt
                # costs the same tokens there.
                length = encoder_for(request.provider, request.model)(text)
        input_tokens = count_message_tokens(request.provider, request.model, request.messages)
        output_tokens = min(length, request.max_output_tokens)
        return LLMReply(text, Usage(input_tokens, output_tokens))

    @staticmethod
    def _length(request: LLMRequest, klass: ModelClass, u: list[float]) -> int:
        median = min(klass.typical_output, 0.6 * request.max_output_tokens)
        return max(1, round(median * math.exp(LENGTH_SPREAD * _normal(u[0], u[1]))))

    @staticmethod
    def _text(request: LLMRequest, seed: str, output_tokens: int) -> str:
        model = bare_model(request.provider, request.model)
        header = f"[simulated {model}] {_subject(request.messages)}"
        # English averages about 1.3 tokens per word.
        words = round(output_tokens / 1.3) - len(header.split())
        return f"{header}\n{_prose(random.Random(seed), words)}" if words > 0 else header

    def retry_delay(self, error: ProviderError, attempt: int, max_retries: int) -> float:
        """Short, fixed back-off: a simulation exercises retries, it need not wait like one."""
        return 0.05 * (2**attempt)

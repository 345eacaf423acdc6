"""Token counting with each model's own tokenizer, offline, without importing LiteLLM.

LiteLLM ships the tokenizer files (tiktoken's encodings and Hugging Face tokenizers for
Claude and DeepSeek) inside its package; we load those same files directly because importing
`litellm` costs seconds, and the estimator and the simulated provider count tokens on every
call. Tokenizers load once per process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from functools import cache

from core.catalog import litellm_data
from core.catalog.model_names import bare_model

_TOKENIZER_DIR = "litellm_core_utils/tokenizers"
# Chat formats wrap each message in a few tokens of framing (role markers, separators).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY = 3

_lock = threading.Lock()


def _bundled(name: str) -> str | None:
    folder = litellm_data.package_dir()
    path = folder / _TOKENIZER_DIR / name if folder else None
    return str(path) if path and path.exists() else None


@cache
def _tiktoken_encoder(model: str) -> Callable[[str], int]:
    folder = _bundled("")
    if folder and "TIKTOKEN_CACHE_DIR" not in os.environ:
        os.environ["TIKTOKEN_CACHE_DIR"] = folder  # tiktoken reads its encodings from here
    import tiktoken

    try:
        encoding = tiktoken.encoding_for_model(model)
    except KeyError:
        encoding = tiktoken.get_encoding("cl100k_base")
    # Special-token text in a prompt is billed as ordinary text, and encode_ordinary skips
    # the special-token scan that encode() makes on every call.
    return lambda text: len(encoding.encode_ordinary(text))


@cache
def _huggingface_encoder(filename: str) -> Callable[[str], int] | None:
    path = _bundled(filename)
    if path is None:
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(path)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


_encoders: dict[tuple[str, str], Callable[[str], int]] = {}


def encoder_for(provider: str, model: str) -> Callable[[str], int]:
    """A function counting tokens of text for this model (the one its provider bills with)."""
    found = _encoders.get((provider, model))
    if found is not None:
        return found
    name = bare_model(provider, model).lower()
    with _lock:  # tokenizer files load once even when parallel nodes ask at the same time
        if "claude" in name and "claude-3" not in name:
            encoder = _huggingface_encoder("anthropic_tokenizer.json")
        elif "deepseek" in name:
            encoder = _huggingface_encoder("deepseek_tokenizer.json")
        else:
            encoder = None
        encoder = encoder or _tiktoken_encoder(name)
    _encoders[(provider, model)] = encoder
    return encoder


def encoder_loaded(provider: str, model: str) -> bool:
    return (provider, model) in _encoders


def preload_encoders(models: Iterable[tuple[str, str]]) -> None:
    for provider, model in models:
        encoder_for(provider, model)


def count_message_tokens(provider: str, model: str, messages: list[dict[str, str]]) -> int:
    encode = encoder_for(provider, model)
    total = TOKENS_PER_REPLY
    for message in messages:  # a loop: a generator costs more than one or two messages do
        total += TOKENS_PER_MESSAGE + encode(message["content"])
    return total

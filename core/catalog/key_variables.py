"""Which environment variables hold provider keys: the only ones `api_key_env` may name, and
the ones whose values are redacted from every error stored or printed.

A workflow is code from whoever wrote it. Were `api_key_env` free, `api_key_env: DATABASE_URL`
with `api_base: http://anyone/v1` would send any variable of the server to any host; so it may
name only the provider key variables LiteLLM knows, plus the ones the operator adds (in
`$CONFIGURABLE_AGENTS_KEY_VARIABLES` or the data folder's `config.toml`). LiteLLM's list is read
from the source of its `validate_environment`, without importing LiteLLM (seconds).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from functools import cache

from core.catalog import litellm_data
from core.settings import config_file

EXTRA_VARIABLE = "CONFIGURABLE_AGENTS_KEY_VARIABLES"
CONFIG_KEY = "allowed_key_variables"

# Names that are keys to send to a model server, as opposed to cloud credentials (AWS_...)
# or settings (..._API_BASE) that LiteLLM also reads.
_SENDABLE = re.compile(r"^(?!AWS_)[A-Z][A-Z0-9_]*_(API_KEY|API_TOKEN|AUTH_TOKEN|TOKEN)$")
# Any variable whose value is a secret: what redaction looks for.
_SECRET = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)")
# The common ones, should LiteLLM's source change shape.
_FALLBACK = frozenset(
    {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY",
     "MISTRAL_API_KEY", "GROQ_API_KEY", "COHERE_API_KEY", "AZURE_API_KEY",
     "DEEPSEEK_API_KEY", "TOGETHERAI_API_KEY", "OPENROUTER_API_KEY", "XAI_API_KEY"}
)  # fmt: skip
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MIN_SECRET_CHARS = 6  # shorter values would redact ordinary words


@cache
def litellm_variables() -> frozenset[str]:
    """Every upper-case name in LiteLLM's `validate_environment`: the variables it reads."""
    folder = litellm_data.package_dir()
    try:
        source = (folder / "utils.py").read_text(encoding="utf-8") if folder else ""
        start = source.index("\ndef validate_environment(")
        end = source.find("\ndef ", start + 1)
    except (OSError, ValueError):
        return frozenset()
    return frozenset(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source[start:end]))


def user_variables() -> tuple[frozenset[str], str | None]:
    """The names the operator allows, and why the config file could not be read (if so)."""
    names = set(os.environ.get(EXTRA_VARIABLE, "").replace(",", " ").split())
    path = config_file()
    problem = None
    try:
        with open(path, "rb") as handle:
            listed = tomllib.load(handle).get(CONFIG_KEY, [])
        if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
            problem = f"{path}: {CONFIG_KEY} must be a list of variable names"
        else:
            names.update(listed)
    except FileNotFoundError:
        pass
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problem = f"{path} cannot be read: {exc}"
    return frozenset(n for n in names if _NAME.match(n)), problem


def sendable_variables() -> frozenset[str]:
    """What `api_key_env` may name."""
    known = {name for name in litellm_variables() if _SENDABLE.match(name)} | _FALLBACK
    return frozenset(known) | user_variables()[0]


def secret_values(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Each secret value in the environment, mapped to its variable's name: the values of
    key-like variables LiteLLM reads, the allowed ones, and `extra` (a run's api_key_env)."""
    names = {n for n in litellm_variables() if _SECRET.search(n)} | sendable_variables()
    names.update(extra)
    found = {os.environ.get(name, ""): name for name in sorted(names)}
    # Longest first, so that a key containing another is replaced whole.
    return {
        value: found[value]
        for value in sorted(found, key=len, reverse=True)
        if len(value) >= MIN_SECRET_CHARS
    }


def redact(text: str, secrets: Mapping[str, str]) -> str:
    """`text` with every secret value replaced by the name of its variable: a provider that
    echoes the key it was sent must not get it stored in telemetry or printed."""
    for value, name in secrets.items():
        if value in text:
            text = text.replace(value, f"[redacted {name}]")
    return text

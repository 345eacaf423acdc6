"""LiteLLM's bundled data files, read without importing LiteLLM.

Importing `litellm` costs about 3.5 s; `validate`, the estimator's price lookups and the app's
pages must not pay that just to know which providers exist or what a model costs. The files
ship inside the installed package, so locating the package is enough, and reading them never
touches the network.
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any


@cache
def package_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _read(name: str) -> dict[str, Any]:
    folder = package_dir()
    if folder is None or not (folder / name).is_file():
        return {}
    with open(folder / name, encoding="utf-8") as handle:
        return json.load(handle)


@cache
def provider_names() -> frozenset[str]:
    """Every provider prefix LiteLLM knows; empty when the data file is missing."""
    return frozenset(_read("provider_endpoints_support_backup.json").get("providers", {}))


@cache
def model_prices() -> dict[str, dict[str, Any]]:
    """LiteLLM's bundled price map: model name -> per-token prices and metadata."""
    data = _read("model_prices_and_context_window_backup.json")
    data.pop("sample_spec", None)
    return data

"""Shared fixtures: an isolated data folder, a scripted OpenAI-compatible server, no real keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PROVIDER_KEYS
from openai_server import OpenAIServer
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import app_test as app_test_module


@pytest.fixture(autouse=True)
def _no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a paid API with a developer's real key."""
    for name in PROVIDER_KEYS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh data folder (telemetry, cache, memory), also set as CONFIGURABLE_AGENTS_HOME."""
    folder = tmp_path / "home"
    folder.mkdir()
    monkeypatch.setenv("CONFIGURABLE_AGENTS_HOME", str(folder))
    return folder


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A running OpenAI-compatible server on 127.0.0.1; script it with `.script(...)`."""
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> list[MediaFileManager]:
    """The file managers of AppTest runs, newest last: where download buttons put files."""
    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            managers.append(self)

    monkeypatch.setattr(app_test_module, "MediaFileManager", Recording)
    return managers

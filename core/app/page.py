"""What every page does: page setup, the simulated-mode banner, the data folder, cache keys."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import streamlit as st

from core.app.access import require_token
from core.catalog import litellm_runtime
from core.resources import EXAMPLE_WORKFLOWS
from core.settings import WORKFLOWS_DIR, data_home
from core.telemetry import get_store

PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")
SIMULATE_STATE = "simulate"
_TOGGLE = "simulate_toggle"


def setup(title: str, icon: str = "🧭") -> None:
    st.set_page_config(page_title=f"{title} · configurable-agents", page_icon=icon, layout="wide")
    require_token()
    _load_litellm_in_background()
    if SIMULATE_STATE not in st.session_state:
        st.session_state[SIMULATE_STATE] = not any(os.environ.get(k) for k in PROVIDER_KEYS)
    with st.sidebar:
        # Streamlit forgets a widget's state when another page is shown, so the choice lives
        # in a plain session key and each page's toggle starts from it.
        st.toggle(
            "Simulated provider",
            value=st.session_state[SIMULATE_STATE],
            key=_TOGGLE,
            on_change=_remember_toggle,
            help="Answer every model call locally: no network, no key, realistic latency and "
            "prices. On by default when no provider key is set.",
        )
        st.caption(f"Data folder: `{home()}`")
    if st.session_state[SIMULATE_STATE]:
        st.info(
            "**Simulated mode** — model calls are answered locally with realistic latency, "
            "tokens and prices; nothing is sent to a provider. Turn it off in the sidebar.",
            icon="🧪",
        )


@st.cache_resource(show_spinner=False)
def _load_litellm_in_background() -> threading.Thread:
    """Imports LiteLLM once per server, while the first visitor reads a page: each run's
    preflight needs it, and in a server busy redrawing pages the import took a minute,
    all of it spent before the first run's first node could start."""
    thread = threading.Thread(target=litellm_runtime.warm, name="litellm-import", daemon=True)
    thread.start()
    return thread


def _remember_toggle() -> None:
    st.session_state[SIMULATE_STATE] = st.session_state[_TOGGLE]


def simulate() -> bool:
    return bool(st.session_state.get(SIMULATE_STATE, True))


def home() -> Path:
    return data_home()


EXAMPLES_DIR = EXAMPLE_WORKFLOWS


def workflows_dir() -> Path:
    """Where the editor saves: `workflows/` in the data folder (the examples' own folder
    when the data folder is the project's `data/`)."""
    folder = home() / WORKFLOWS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def workflow_files() -> list[Path]:
    """Saved workflows, then the examples not already among them."""
    saved = sorted(workflows_dir().glob("*.yaml"))
    names = {p.name for p in saved}
    return saved + [p for p in sorted(EXAMPLES_DIR.glob("*.yaml")) if p.name not in names]


def data_version() -> str:
    """Changes whenever telemetry may have: the key for st.cache_data on every query."""
    return get_store(home()).data_version()

"""What the Estimate and Run pages ask before they act: which workflow, with which inputs,
and (for what-if estimates) which model each node should use.

Both pages share these widgets under the same keys with session-wide persistence, so a topic
typed while estimating is still there on the Run page; the workflow choice and the input
values are also bound to the page's address (query parameters), so a reload, which starts a
new session, finds them again. Input values are returned as typed
(text for strings and JSON); the engine converts them (`inputs_from_text=True`) and names
every mistake, so the form never has to second-guess the workflow's own validation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import streamlit as st

from core.app.editor_files import PATH_KEY, TEXT_KEY, is_unsaved
from core.app.page import EXAMPLES_DIR, workflow_files
from core.catalog import litellm_data
from core.catalog.model_names import SIMULATED, bare_model, workflow_provider
from core.catalog.prices import PriceBook, chat_models
from core.errors import WorkflowError
from core.workflow import Workflow, load_workflow, parse_workflow
from core.workflow.models import InputSpec, LLMNode

EDITOR = "editor"  # the workflow choice meaning "what is open in the Editor page"
CHOICE_KEY = "workflow_choice"

# Inputs whose values are usually paragraphs get a text area; names are the only hint.
LONG_TEXT_NAMES = {"text", "document", "content", "context", "body", "article", "transcript"}
# Listed first in the what-if provider picker: the providers most workflows use.
COMMON_PROVIDERS = ("openai", "anthropic", "gemini", "mistral", "groq", "deepseek", "xai")


def choose_workflow() -> Workflow | None:
    """The workflow to work on: the editor's by default, else a saved or example file.

    Returns None after showing the file's problems (line:column each), so a page can stop.
    """
    labels = _editor_option() | {str(path): _file_label(path) for path in workflow_files()}
    if not labels:
        st.info("No workflows yet: write one on the **Editor** page.")
        return None
    choice = st.selectbox(
        "Workflow",
        list(labels),
        format_func=labels.__getitem__,  # labels are fixed per option: the choice is kept by label
        key=CHOICE_KEY,
        persist_state="session",
        bind="query-params",
        help="The workflow open in the Editor comes first; saved and example files follow.",
    )
    try:
        if choice == EDITOR:
            return _editor_workflow()
        return load_workflow(Path(choice))
    except WorkflowError as exc:
        show_workflow_error(exc)
        return None


def _editor_option() -> dict[str, str]:
    if not st.session_state.get(TEXT_KEY):
        return {}
    path = st.session_state.get(PATH_KEY)
    return {EDITOR: f"✏️ Open in the Editor · {Path(path).name if path else 'new workflow'}"}


def _editor_workflow() -> Workflow:
    path = st.session_state.get(PATH_KEY)
    text = st.session_state[TEXT_KEY]
    if is_unsaved(text, Path(path) if path else None):
        st.caption("✏️ With the Editor's unsaved changes.")
    return parse_workflow(text, str(path or "new workflow in the Editor"))


def _file_label(path: Path) -> str:
    return f"{path.name} · example" if path.parent == EXAMPLES_DIR else path.name


def show_workflow_error(exc: WorkflowError) -> None:
    problems = "\n".join(f"- **{p.line}:{p.column}** {p.message}" for p in exc.problems)
    st.error(
        f"**{Path(exc.filename).name}** is not a valid workflow "
        f"({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''}, "
        f"line:column):\n\n{problems}",
        icon="🚫",
    )


def inputs_form(workflow: Workflow) -> dict[str, Any]:
    """One field per declared input; empty fields are left out so defaults and the
    required-input check apply exactly as on the command line."""
    if not workflow.spec.inputs:
        st.caption("This workflow takes no inputs.")
        return {}
    values: dict[str, Any] = {}
    for name, spec in workflow.spec.inputs.items():
        value = _field(workflow.name, name, spec)
        if value is not None:
            values[name] = value
    return values


def _field(workflow: str, name: str, spec: InputSpec) -> Any:
    label = f"{name} :red[*]" if spec.required else name
    key = f"input:{workflow}:{name}:{spec.type}"
    hint = " · ".join(
        part
        for part in (spec.description, spec.type, "required" if spec.required else "optional")
        if part
    )
    common: dict[str, Any] = {
        "key": key,
        "help": hint,
        "persist_state": "session",
        "bind": "query-params",
    }
    default = spec.default
    if spec.type == "boolean":
        return st.checkbox(label, value=bool(default), **common)
    if spec.type in ("integer", "number"):
        integer = spec.type == "integer"
        return st.number_input(
            label,
            value=None if default is None else (int(default) if integer else float(default)),
            step=1 if integer else None,
            format=None if integer else "%g",
            placeholder=spec.description or spec.type,
            **common,
        )
    if spec.type in ("array", "object"):
        text = st.text_area(
            f"{label} (JSON {spec.type})",
            value="" if default is None else json.dumps(default, indent=2),
            placeholder="[...]" if spec.type == "array" else "{...}",
            **common,
        )
    elif _long_text(name, default):
        text = st.text_area(label, value=default or "", placeholder=spec.description, **common)
    else:
        text = st.text_input(label, value=default or "", placeholder=spec.description, **common)
    return text if text and text.strip() else None


def _long_text(name: str, default: Any) -> bool:
    return name.lower() in LONG_TEXT_NAMES or (isinstance(default, str) and "\n" in default)


def _providers() -> list[str]:
    known = chat_models()
    common = [p for p in COMMON_PROVIDERS if p in known]
    return common + sorted(p for p in known if p not in common)


def _current_choice(prices: PriceBook, provider: str, model: str) -> tuple[str, str]:
    """The (provider, price-map key) the picker starts on: where the node's price comes from,
    so a simulated `gpt-4o-mini` starts on openai / gpt-4o-mini."""
    price = prices.price(provider, model)
    entry = litellm_data.model_prices().get(price.source) if price else None
    if price and entry and entry.get("litellm_provider") in chat_models():
        return entry["litellm_provider"], price.source
    return provider, model


def _swap(original_provider: str, family: str, key: str) -> tuple[str, str]:
    """The (provider, model) a node moves to; a simulated node stays simulated and is priced
    by the key itself, a real one routes to the key's provider."""
    if original_provider == SIMULATED:
        return SIMULATED, key
    return workflow_provider(family), bare_model(family, key)


def model_picker(workflow: Workflow) -> dict[str, tuple[str, str]]:
    """A provider and model choice per LLM node; returns only the nodes the user changed,
    in the form `with_models` takes."""
    prices = PriceBook(workflow.spec.pricing)
    swaps: dict[str, tuple[str, str]] = {}
    llm_nodes = [node for node in workflow.spec.nodes if isinstance(node, LLMNode)]
    for node in llm_nodes:
        llm = workflow.llm_for(node)
        start = _current_choice(prices, llm.provider, llm.model)
        chosen = _node_picker(workflow.name, node.name, start, prices)
        if chosen != start:
            swaps[node.name] = _swap(llm.provider, *chosen)
    return swaps


def _node_picker(
    workflow: str, node: str, start: tuple[str, str], prices: PriceBook
) -> tuple[str, str]:
    providers = _providers()
    if start[0] not in providers:
        providers.insert(0, start[0])
    base = f"whatif:{workflow}:{node}"
    provider_key = f"{base}:provider"
    if provider_key not in st.session_state:
        st.session_state[provider_key] = start[0]
    name, left, right = st.columns([1.1, 1.6, 2.3], vertical_alignment="center")
    provider = left.selectbox(
        f"Provider of {node}",
        providers,
        key=provider_key,
        format_func=workflow_provider,
        label_visibility="collapsed",
    )
    models = list(chat_models().get(provider, ()))
    same_provider = provider == start[0]
    if same_provider and start[1] not in models:
        models.insert(0, start[1])
    model = right.selectbox(
        f"Model of {node}",
        models,
        index=models.index(start[1]) if same_provider else None,
        key=f"{base}:{provider}:model",
        placeholder="Choose a model",
        label_visibility="collapsed",
    )
    chosen = start if model is None else (provider, model)
    price = prices.price(*chosen)
    rate = (
        f"${price.input_per_token * 1e6:,.3g} / ${price.output_per_token * 1e6:,.3g}"
        if price
        else "no known price"
    )
    name.markdown(f"**{node}**  \n:small[:gray[{rate}]]")
    return chosen


def workflow_file(name: str) -> Path | None:
    """The saved or example file whose workflow is called `name` (saved files first)."""
    for path in workflow_files():
        try:
            if load_workflow(path).name == name:
                return path
        except WorkflowError:
            continue
    return None


def preset_model(path: Path, node: str, model: str) -> bool:
    """Opens `path` in the workflow picker with `node` already moved to `model` (same
    provider) in the what-if picker, for a recommendation to hand over to the Estimate page;
    False when the node or the model is not one the picker offers."""
    workflow = load_workflow(path)
    llm_nodes = {n.name: n for n in workflow.spec.nodes if isinstance(n, LLMNode)}
    if node not in llm_nodes:
        return False
    llm = workflow.llm_for(llm_nodes[node])
    family, _ = _current_choice(PriceBook(workflow.spec.pricing), llm.provider, llm.model)
    offered = [key for key in chat_models().get(family, ()) if bare_model(family, key) == model]
    if not offered:
        return False
    base = f"whatif:{workflow.name}:{node}"
    st.session_state[CHOICE_KEY] = str(path)
    st.session_state[f"{base}:provider"] = family
    st.session_state[f"{base}:{family}:model"] = offered[0]
    return True


def reset_models(workflow: Workflow) -> None:
    """Forget every what-if choice of this workflow: the picker returns to the file's models."""
    prefix = f"whatif:{workflow.name}:"
    for key in [k for k in st.session_state if str(k).startswith(prefix)]:
        del st.session_state[key]

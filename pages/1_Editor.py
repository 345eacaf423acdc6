"""Editor: write a workflow in YAML, see its problems and its DAG while typing, save it.

The open workflow lives in session state, not in the editor widget, so it survives reruns,
page switches and the switch between the Ace editor and the plain text area. Other pages read
it from two keys (constants in core.app.editor_files):
    st.session_state["workflow_text"]  the editor's current text, saved or not
    st.session_state["workflow_path"]  str path of its file, or None for a new, unsaved one
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import streamlit as st
from streamlit_ace import st_ace

from core.app.dag import node_config, workflow_marks, workflow_summary
from core.app.editor_files import (
    PATH_KEY,
    TEXT_KEY,
    Discard,
    Document,
    Overwrite,
    declared_name,
    is_saved_workflow,
    is_unsaved,
    name_problem,
    named_for_copy,
    read,
    saved_text,
    suggested_name,
    target_for,
    workflow_check,
    write,
)
from core.app.graph_chart import KIND_COLOURS, SELECTION, box_height, dag_chart, picked_node
from core.app.page import EXAMPLES_DIR, setup, workflow_files, workflows_dir
from core.errors import Problem
from core.workflow import Workflow

# Page-private state. Ace only takes its text when it is created (and Streamlit may recreate
# it whenever the layout above it changes), so it always gets the current text, and gets a new
# key, to recreate it, whenever the text is replaced from outside: open, new, a test, a page.
VERSION = "editor_version"  # part of the editor widget's key; bumped to recreate it
ACTIVE = "editor_active"  # key of the editor widget drawn last run
SHOWN = "editor_shown"  # the text that widget shows, as far as the server knows
PLAIN = "editor_plain"  # toggle: plain text area instead of Ace (keyboard and screen readers)
PENDING = "editor_pending"  # Discard | Overwrite waiting for the user's answer
FLASH = "editor_flash"  # (kind, message) of the last file action, shown once
LAST_GOOD = "editor_last_good"  # (version, workflow) of the last valid text: drawn while broken
GRAPH_KEY = "editor_graph"
GRAPH_MAX_PX = 520  # a taller graph scrolls inside its own box
OPEN_CHOICE = "editor_open_choice"
EXAMPLE_CHOICE = "editor_example_choice"

EDITOR_LINES = 28
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>~$|#])")

FlashKind = Literal["success", "warning", "error"]
_FLASH_DRAW = {"success": st.success, "warning": st.warning, "error": st.error}

state = st.session_state


def _path() -> Path | None:
    return Path(state[PATH_KEY]) if state[PATH_KEY] else None


def _load(document: Document) -> None:
    state[TEXT_KEY] = document.text
    state[PATH_KEY] = str(document.path) if document.path else None
    state[PENDING] = None


def _init() -> None:
    if TEXT_KEY not in state:
        files = workflow_files()
        _load(read(files[0]) if files else Document("", None))
    state.setdefault(PATH_KEY, None)
    state.setdefault(VERSION, 0)
    state.setdefault(PENDING, None)
    state.setdefault(FLASH, [])


def _flash(kind: FlashKind, message: str) -> None:
    state[FLASH] = [*state[FLASH], (kind, message)]


# --- keeping the editor widget and the workflow text in step ---------------------------------


def _adopt_typed() -> None:
    """Take what the user typed into the editor widget as the workflow text.

    Callbacks call this first: a click can arrive in the same rerun as the last keystrokes,
    and "unsaved?" or "save" must see them.
    """
    active = state.get(ACTIVE)
    typed = state.get(active) if active else None
    if isinstance(typed, str) and typed != state.get(SHOWN):
        state[TEXT_KEY] = state[SHOWN] = typed


def _widget_key() -> str:
    return f"editor_{'plain' if state.get(PLAIN) else 'ace'}_{state[VERSION]}"


def _editor_key() -> str:
    """The key to draw the editor under, recreating the widget when it would show stale text:
    first visit, back from another page (the widget was dropped), mode switch, or text
    replaced by an action."""
    key = _widget_key()
    if key == state.get(ACTIVE) and key in state and state[TEXT_KEY] == state.get(SHOWN):
        return key
    if key in state:
        state[VERSION] += 1
        key = _widget_key()
    state[ACTIVE] = key
    state[SHOWN] = state[TEXT_KEY]
    return key


# --- actions (callbacks: they run before the page is drawn, so it shows their outcome) --------


def _request_open(document: Document) -> None:
    _adopt_typed()
    if is_unsaved(state[TEXT_KEY], _path()):
        state[PENDING] = Discard(document)
    else:
        _load(document)


def _open_chosen() -> None:
    try:
        _request_open(read(state[OPEN_CHOICE]))
    except OSError as exc:
        _flash("error", f"Cannot open {state[OPEN_CHOICE]}: {exc.strerror}")


def _new_from_example() -> None:
    try:
        example = read(state[EXAMPLE_CHOICE])
    except OSError as exc:
        _flash("error", f"Cannot read {state[EXAMPLE_CHOICE]}: {exc.strerror}")
        return
    _request_open(Document(example.text, None))


def _save(name_key: str) -> None:
    """Save in place when the file is the user's own; examples and new files get a name."""
    _adopt_typed()
    path = _path()
    if path is not None and is_saved_workflow(path):
        _write(path)
    else:
        _save_as(name_key)


def _save_as(name_key: str) -> None:
    _adopt_typed()
    name = state.get(name_key, "")
    problem = name_problem(name)
    if problem:
        _flash("error", problem)
        return
    target = target_for(name)
    current = _path()
    if target.exists() and (current is None or target.resolve() != current.resolve()):
        state[PENDING] = Overwrite(target)
    else:
        _write(target)


def _write(path: Path) -> None:
    text, current = state[TEXT_KEY], _path()
    if current is None or path.resolve() != current.resolve():
        text = named_for_copy(text, path, current)
    try:
        write(path, text)
    except OSError as exc:
        _flash("error", f"Could not save `{path}`: {exc.strerror}")
        return
    state[TEXT_KEY] = text
    state[PATH_KEY] = str(path)
    state[PENDING] = None
    _, problems = workflow_check(text)
    if problems:
        count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
        _flash("warning", f"Saved `{path}` with {count}: it cannot run until fixed.")
    else:
        _flash("success", f"Saved `{path}`.")


def _cancel() -> None:
    state[PENDING] = None


# --- drawing ----------------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Messages quote user text (names, templates, `$` amounts): show it, don't format it."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def _describe(path: Path | None) -> str:
    if path is None:
        return "a new workflow"
    return f"`{path.name}`"


def _toolbar(name_key: str, unsaved: bool) -> None:
    files = workflow_files()
    current = _path()
    opened, new, save, save_as, download, mode = st.columns(
        [1, 1.3, 0.9, 1, 1.1, 1.6], vertical_alignment="center"
    )
    with opened.popover("Open", icon="📂", width="stretch"):
        st.selectbox(
            "Workflow",
            files,
            index=files.index(current) if current in files else 0,
            format_func=lambda p: f"{p.name} · {'saved' if is_saved_workflow(p) else 'example'}",
            key=OPEN_CHOICE,
        )
        st.button(
            "Open", on_click=_open_chosen, type="primary", key="editor_open", disabled=not files
        )
    with new.popover("New from example", icon="✨", width="stretch"):
        st.selectbox(
            "Example",
            sorted(EXAMPLES_DIR.glob("*.yaml")),
            format_func=lambda p: p.stem,
            key=EXAMPLE_CHOICE,
        )
        st.caption("Starts an unsaved copy; your saved workflows stay as they are.")
        st.button("Create", on_click=_new_from_example, type="primary", key="editor_new")
    save.button(
        "Save",
        icon="💾",
        on_click=_save,
        args=(name_key,),
        type="primary" if unsaved else "secondary",
        width="stretch",
        key="editor_save",
        help="Save to the open file, or as a new file in your workflows folder when it is "
        "an example or not saved yet",
    )
    with save_as.popover("Save as", icon="📝", width="stretch"):
        st.text_input(
            "File name",
            value=suggested_name(Document(state[TEXT_KEY], current)),
            key=name_key,
            help="Letters, digits, _ and - only",
        )
        st.caption(f"Saved in `{workflows_dir()}` as NAME.yaml")
        st.button(
            "Save as", on_click=_save_as, args=(name_key,), type="primary", key="editor_save_as"
        )
    download.download_button(
        "Download",
        data=state[TEXT_KEY],
        file_name=f"{suggested_name(Document(state[TEXT_KEY], current))}.yaml",
        mime="application/x-yaml",
        icon="⬇️",
        on_click="ignore",
        width="stretch",
    )
    mode.toggle(
        "Plain text editor",
        key=PLAIN,
        persist_state="session",
        help="A plain text area instead of the code editor: works with every keyboard and "
        "screen reader; problems are listed below it.",
    )


def _status(unsaved: bool) -> None:
    path = _path()
    if path is None:
        where = "New workflow, not saved yet"
    elif is_saved_workflow(path):
        where = f"`{path}`"
    else:
        where = f"`{path.name}` — bundled example; Save keeps your copy in `{workflows_dir()}`"
    st.caption(f"📄 {where}")
    for kind, message in state[FLASH]:
        _FLASH_DRAW[kind](message)
    state[FLASH] = []
    if unsaved:
        if path is not None and saved_text(path) is None:
            st.warning(f"{_describe(path)} is no longer on disk: save to keep this text.", icon="⚠️")
        else:
            st.warning(f"Unsaved changes to {_describe(path)}.", icon="✏️")
    _confirmation(state[PENDING])


def _confirmation(pending: Discard | Overwrite | None) -> None:
    match pending:
        case Discard(document):
            name = document.path.name if document.path else "a new workflow from the example"
            st.warning(
                f"You have unsaved changes to {_describe(_path())}. Discard them and open {name}?",
                icon="⚠️",
            )
            with st.container(horizontal=True):
                st.button("Discard changes", on_click=_load, args=(document,), type="primary")
                st.button("Keep editing", on_click=_cancel)
        case Overwrite(target):
            st.warning(
                f"`{target.name}` already exists in `{target.parent}`. Replace it?", icon="⚠️"
            )
            with st.container(horizontal=True):
                st.button("Overwrite", on_click=_write, args=(target,), type="primary")
                st.button("Cancel", on_click=_cancel)


def _editor(key: str, problems: list[Problem]) -> None:
    if state.get(PLAIN):
        st.text_area(
            "Workflow YAML",
            value=state[TEXT_KEY],
            key=key,
            height=EDITOR_LINES * 24,
            label_visibility="collapsed",
        )
    else:
        st_ace(
            value=state[TEXT_KEY],
            key=key,
            language="yaml",
            theme="chrome",
            auto_update=True,
            tab_size=2,
            min_lines=EDITOR_LINES,
            font_size=15,
            wrap=True,
            show_print_margin=False,
            annotations=[
                {"row": p.line - 1, "column": p.column - 1, "type": "error", "text": p.message}
                for p in problems
            ],
        )


def _problem_list(problems: list[Problem]) -> None:
    if not problems:
        st.success("No problems: the workflow is valid.", icon="✅")
        return
    count = f"{len(problems)} problem{'s' * (len(problems) != 1)}"
    items = "\n".join(f"- `{p.line}:{p.column}` {_escape(p.message)}" for p in problems)
    st.error(f"**{count}**\n\n{items}", icon="🛑")


def _graph(workflow: Workflow | None) -> None:
    """The workflow's DAG; while the text is broken, the last valid one of the same workflow,
    so the picture does not vanish with every half-typed key. A click shows a node's config."""
    if workflow is not None:
        state[LAST_GOOD] = (state[VERSION], workflow)
    else:
        workflow = _last_good()
        if workflow is None:
            st.info("The graph appears once the workflow is valid.", icon="🕸️")
            return
        st.caption("Last valid version: fix the problems to update the graph.")
    with st.container(height=box_height(workflow.graph, GRAPH_MAX_PX), border=False):
        st.altair_chart(
            dag_chart(workflow.graph, workflow_marks(workflow), KIND_COLOURS, "kind"),
            width="content",
            key=GRAPH_KEY,
            on_select="rerun",
            selection_mode=SELECTION,
        )
    picked = picked_node(state.get(GRAPH_KEY))
    if picked in workflow.nodes:
        st.markdown(f"**Node `{picked}`** as the file sets it")
        st.json(node_config(workflow.nodes[picked]))
    else:
        st.caption("Click a node to see its config; hover for its model and badges.")


def _last_good() -> Workflow | None:
    """Only for the same document, and not after the text was replaced by another workflow
    (a paste): its name must still be the one declared, or be unreadable mid-edit."""
    version, workflow = state.get(LAST_GOOD) or (None, None)
    if version != state[VERSION] or workflow is None:
        return None
    if declared_name(state[TEXT_KEY]) not in (None, workflow.name):
        return None
    return workflow


setup("Editor", "✏️")
_init()
_adopt_typed()
editor_key = _editor_key()
workflow, problems = workflow_check(state[TEXT_KEY])
unsaved = is_unsaved(state[TEXT_KEY], _path())

st.title("Workflow editor")
_toolbar(f"editor_save_name_{state[VERSION]}", unsaved)
_status(unsaved)

left, right = st.columns([3, 2], gap="large")
with left:
    _editor(editor_key, problems)
    _problem_list(problems)
with right:
    st.subheader("Graph")
    if workflow is not None:
        st.caption(workflow_summary(workflow))
    _graph(workflow)

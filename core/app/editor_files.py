"""The editor page's rules: checking, opening and saving workflows, and what needs a yes.

Kept out of the page so that these rules (where files may be written, which names are
allowed, what counts as unsaved) are plain functions, testable without a browser.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from core.app.page import EXAMPLES_DIR, workflows_dir
from core.errors import Problem, WorkflowError
from core.workflow import Workflow, parse_workflow
from core.workflow.model_edit import set_name

# The workflow open in the editor, for the other pages (Estimate, Run) to pick up:
#   st.session_state[TEXT_KEY]: str, the editor's current text, saved or not;
#   st.session_state[PATH_KEY]: str | None, the file it was opened from or last saved to
#   (None for a new workflow that has never been saved).
TEXT_KEY = "workflow_text"
PATH_KEY = "workflow_path"

SUFFIX = ".yaml"
_SAVE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
UNTITLED = "untitled"


@dataclass(frozen=True)
class Document:
    """Text to put in the editor and the file it belongs to (None: new, never saved)."""

    text: str
    path: Path | None


@dataclass(frozen=True)
class Discard:
    """Opening `document` would throw away unsaved edits: ask first."""

    document: Document


@dataclass(frozen=True)
class Overwrite:
    """Saving would replace another existing file: ask first."""

    target: Path


def workflow_check(text: str) -> tuple[Workflow | None, list[Problem]]:
    """The workflow, or every problem with it: the editor draws the one and lists the other."""
    try:
        return parse_workflow(text), []
    except WorkflowError as exc:
        return None, exc.problems


def read(path: Path) -> Document:
    return Document(path.read_text(encoding="utf-8"), path)


def saved_text(path: Path | None) -> str | None:
    """What is on disk for the open file; None when there is no such file (new or deleted)."""
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def is_unsaved(text: str, path: Path | None) -> bool:
    """True when closing the editor now would lose work. An empty new file loses nothing."""
    on_disk = saved_text(path)
    if on_disk is None:
        return bool(text.strip())
    return text != on_disk


def is_saved_workflow(path: Path | None) -> bool:
    """Whether Save may write `path` in place: only files in the user's workflows folder.

    The bundled examples live in the project tree; saving over them would change the product
    for everyone, so editing one and saving makes a copy (unless the data folder is the
    project's own `data/`, where the two folders are the same).
    """
    return path is not None and path.resolve().parent == workflows_dir().resolve()


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a file name, or None. Only a plain stem: no folders, no dots."""
    stem = name.strip().removesuffix(SUFFIX)
    if not stem:
        return "Enter a file name."
    if not _SAVE_NAME.fullmatch(stem):
        return f"'{name}' is not a valid name: use letters, digits, _ and - only."
    return None


def target_for(name: str) -> Path:
    """The file `name` is saved as; call `name_problem` first."""
    return workflows_dir() / f"{name.strip().removesuffix(SUFFIX)}{SUFFIX}"


def declared_name(text: str) -> str | None:
    """The workflow's `name:`, when the text is YAML enough to say; None while it is not."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    settings = data.get("workflow") if isinstance(data, dict) else None
    name = settings.get("name") if isinstance(settings, dict) else None
    return name if isinstance(name, str) else None


def named_for_copy(text: str, target: Path, source: Path | None) -> str:
    """The text to save as `target`: a copy of a bundled example (opened, or new from one)
    takes the file's stem as its workflow name, so its runs never merge with the example's
    history. The user's own workflows keep the name they gave; a text with no name to change
    is left as it is (the save reports its problems)."""
    name = declared_name(text)
    examples = {declared_name(path.read_text()) for path in EXAMPLES_DIR.glob(f"*{SUFFIX}")}
    from_example = (source is not None and source.parent == EXAMPLES_DIR) or name in examples
    if name is None or name == target.stem or not from_example:
        return text
    try:
        return set_name(text, target.stem, target.name)
    except WorkflowError:
        return text


def suggested_name(document: Document) -> str:
    """A file name to offer: the file's own, else the workflow's `name:`, else untitled."""
    if document.path is not None:
        return document.path.stem
    name = declared_name(document.text)
    return name if name is not None and _SAVE_NAME.fullmatch(name) else UNTITLED


def write(path: Path, text: str) -> None:
    """Replace `path` atomically: a run reading the file never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

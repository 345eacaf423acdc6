"""Applying a what-if: the workflow's text with other models, where it may be saved, and
the diff shown before anything is written.

The rules are the Editor's (`editor_files`): only a file in the user's workflows folder is
saved in place; an example (or a workflow never saved) is saved as a copy under a checked
name that must not replace another file, and the copy's `workflow.name` becomes its file
name, so its runs start a history of their own. The text is edited in place
(`core.workflow.model_edit`), so comments and order survive, and it is validated before it
can be written.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from core.app.editor_files import (
    is_saved_workflow,
    name_problem,
    saved_text,
    target_for,
    write,
)
from core.workflow import Workflow, parse_workflow
from core.workflow.model_edit import set_models, set_name


@dataclass(frozen=True)
class Change:
    """The edited text, the file it belongs to (None: a workflow never saved) and the text
    it was made from."""

    text: str
    path: Path | None
    original: str

    @property
    def in_place(self) -> bool:
        """Whether Save may write the file itself rather than a copy."""
        return is_saved_workflow(self.path)

    def diff(self) -> str:
        """What saving in place would change on disk: against the file as saved (the
        Editor's unsaved edits, if any, show too), else against the text being edited."""
        before = saved_text(self.path) if self.in_place else None
        base = before if before is not None else self.original
        name = self.path.name if self.path else "workflow.yaml"
        lines = difflib.unified_diff(
            base.splitlines(keepends=True),
            self.text.splitlines(keepends=True),
            f"a/{name}",
            f"b/{name}",
        )
        return "".join(lines)


def prepare(workflow: Workflow, swaps: dict[str, tuple[str, str]]) -> Change:
    """The workflow with `swaps` written in; raises WorkflowError when it would not load."""
    path = Path(workflow.filename)
    return Change(set_models(workflow, swaps), path if path.is_file() else None, workflow.source)


def copy_problem(name: str) -> str | None:
    """Why a copy cannot be saved as `name`: a bad name, or a file that exists already."""
    problem = name_problem(name)
    if problem is None and target_for(name).exists():
        return f"{target_for(name).name} exists already: choose another name."
    return problem


def save(change: Change, copy_name: str | None = None) -> Path:
    """Writes the change in place, or as the copy `copy_name` (checked with `copy_problem`
    first) renamed to match; returns the file written."""
    if copy_name is None:
        if change.path is None or not change.in_place:
            raise ValueError("only a file in the workflows folder is saved in place")
        target, text = change.path, change.text
    else:
        target = target_for(copy_name)
        text = set_name(change.text, target.stem, target.name)
    parse_workflow(text, str(target))  # the Editor's guard: never write a file that fails
    write(target, text)
    return target

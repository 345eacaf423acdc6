"""Exceptions the engine raises to callers, each carrying enough to point a user at the fix."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a workflow file; lines and columns are 1-based like editors show."""

    line: int
    column: int
    message: str

    def format(self, filename: str) -> str:
        return f"{filename}:{self.line}:{self.column}: error: {self.message}"


class WorkflowError(ValueError):
    """The workflow file is invalid; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[Problem], filename: str = "<workflow>") -> None:
        self.problems = sorted(problems)
        self.filename = filename
        super().__init__("\n".join(p.format(filename) for p in self.problems))


class InputError(ValueError):
    """A run's inputs do not match the workflow's `inputs:` declaration; `problems` lists
    each one, so a form can show them one per line."""

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class ProviderConfigError(RuntimeError):
    """A provider cannot be called as configured (typically a missing API key)."""

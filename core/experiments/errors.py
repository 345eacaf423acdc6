"""Problems with an experiment, each located in the file it is in.

An experiment spans several files (the experiment, its workflow, its dataset), so a problem
carries its own file: `tickets.jsonl:14:1: error: row 14: missing required input 'ticket'`
points at the row, not at the experiment that names the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Problem


@dataclass(frozen=True, order=True)
class LocatedProblem:
    file: str
    problem: Problem

    def format(self) -> str:
        return self.problem.format(self.file)


class ExperimentError(ValueError):
    """The experiment cannot run; `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[LocatedProblem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(p.format() for p in self.problems))


def located(file: str, problems: list[Problem]) -> list[LocatedProblem]:
    return [LocatedProblem(file, problem) for problem in problems]

"""An experiment's dataset: JSONL or CSV rows, each the workflow's inputs plus expected values.

Every row is checked against the workflow's `inputs:` before anything runs, and a problem
names the row's line in the dataset file. Columns that are not inputs are the row's expected
values, which scorers compare against (`expected: {column: NAME}`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from core.engine.inputs import check_inputs
from core.errors import InputError, Problem
from core.experiments.model import Sample
from core.workflow import Workflow

FORMATS = (".jsonl", ".csv")
# A column with at most this many distinct values reads as labels: a simulated model that
# misses picks another of them (docs/experiments.md).
MAX_LABELS = 12


@dataclass(frozen=True)
class Row:
    number: int  # 1-based, in file order: the item's id in reports
    line: int  # where the row starts in the file
    values: dict[str, Any]


@dataclass(frozen=True)
class Item:
    """One dataset row, ready to run: typed inputs with defaults, and every column."""

    number: int
    inputs: dict[str, Any]
    values: dict[str, Any]

    @cached_property
    def key(self) -> str:
        """Identifies the item by its inputs, the same in every variant and experiment."""
        text = json.dumps(self.inputs, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def expected(self) -> dict[str, Any]:
        """The columns that are not inputs."""
        return {k: v for k, v in self.values.items() if k not in self.inputs}


def read_rows(path: Path) -> tuple[list[Row], list[str], list[Problem]]:
    """(rows, column names, problems) of a JSONL or CSV file."""
    if path.suffix.lower() not in FORMATS:
        problem = Problem(1, 1, f"a dataset is a .jsonl or .csv file, not '{path.suffix}'")
        return [], [], [problem]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [], [], [Problem(1, 1, f"cannot read the dataset: {exc.strerror}")]
    except UnicodeDecodeError as exc:
        return [], [], [Problem(1, 1, f"the dataset is not UTF-8 text: {exc.reason}")]
    if path.suffix.lower() == ".csv":
        return _csv_rows(text)
    return _jsonl_rows(text)


def _jsonl_rows(text: str) -> tuple[list[Row], list[str], list[Problem]]:
    rows: list[Row] = []
    columns: dict[str, None] = {}
    problems: list[Problem] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(Problem(line_number, exc.colno, f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            kind = type(value).__name__
            problems.append(Problem(line_number, 1, f"a row must be a JSON object, got {kind}"))
            continue
        rows.append(Row(len(rows) + 1, line_number, value))
        columns.update(dict.fromkeys(value))
    return rows, list(columns), problems


def _csv_rows(text: str) -> tuple[list[Row], list[str], list[Problem]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    columns = [c for c in reader.fieldnames or [] if c]
    rows: list[Row] = []
    problems: list[Problem] = []
    line = 2
    try:
        for record in reader:
            if None in record:  # more fields than the header names
                extra = f"more fields than the header's {len(columns)}"
                problems.append(Problem(line, 1, f"row {len(rows) + 1}: {extra}"))
            values = {k: v for k, v in record.items() if k and v not in (None, "")}
            rows.append(Row(len(rows) + 1, line, values))
            line = reader.line_num + 1
    except csv.Error as exc:
        problems.append(Problem(reader.line_num, 1, f"not valid CSV: {exc}"))
    return rows, columns, problems


def check_rows(
    rows: list[Row], workflow: Workflow, from_text: bool
) -> tuple[list[Item], list[Problem]]:
    """Items with typed inputs, or a problem per row that does not fit the workflow's inputs.
    CSV values are text, converted to each input's type as `--input K=V` values are."""
    declared = workflow.spec.inputs
    items: list[Item] = []
    problems: list[Problem] = []
    for row in rows:
        given = {name: row.values[name] for name in declared if name in row.values}
        try:
            inputs = check_inputs(workflow, given, from_text=from_text)
        except InputError as exc:
            problems += [Problem(row.line, 1, f"row {row.number}: {p}") for p in exc.problems]
            continue
        items.append(Item(row.number, inputs, row.values))
    return items, problems


def sample(items: list[Item], chosen: Sample | int | None) -> list[Item]:
    """The items an experiment runs on: all, the first N, or N at random (in file order)."""
    if chosen is None:
        return items
    if isinstance(chosen, int):
        return items[:chosen]
    if chosen.first is not None:
        return items[: chosen.first]
    size = min(chosen.random or 0, len(items))
    picked = random.Random(chosen.seed).sample(range(len(items)), size)
    return [items[index] for index in sorted(picked)]


def labels(items: list[Item], column: str) -> tuple[str, ...]:
    """The values a column takes, when few enough to be labels; else ()."""
    values = {str(item.values[column]) for item in items if item.values.get(column) is not None}
    if len(values) > MAX_LABELS or len(values) >= len(items):
        return ()
    return tuple(sorted(values))

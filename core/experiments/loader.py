"""A loaded experiment: the file, its workflow, every variant's merged workflow and the items.

Everything is checked before anything runs, and every problem is reported at once with its
file, line and column: the experiment's own keys, the workflow, each variant's merged
workflow (at the override responsible), the dataset's rows (at the row's line) and the
scorers (against the workflow's nodes and the dataset's columns).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from core.errors import Problem, WorkflowError
from core.experiments.dataset import Item, check_rows, labels, read_rows, sample
from core.experiments.errors import ExperimentError, LocatedProblem, located
from core.experiments.model import ExperimentSpec
from core.experiments.validation import column_of, schema_problems, semantic_problems
from core.experiments.variants import Variant, build_variant, merged_document
from core.workflow import Workflow, load_workflow
from core.workflow.yaml_source import SourceMap, YamlSyntaxError, parse


@dataclass(frozen=True)
class Experiment:
    spec: ExperimentSpec
    source: str
    filename: str
    workflow: Workflow  # as its file says
    variants: dict[str, Variant]  # in the file's order
    items: list[Item]  # the rows it runs on, after `sample:`
    dataset: str
    # Per scorer comparing against a column of labels: the labels (a simulated model that
    # misses answers another one).
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.experiment

    @property
    def baseline(self) -> str:
        return self.spec.baseline_name

    @property
    def cells(self) -> int:
        return len(self.items) * len(self.variants) * self.spec.repeats

    @cached_property
    def design_hash(self) -> str:
        """What decides the cells and their scores: a resumed experiment must match it.
        Budget, concurrency and wording may change between runs; this may not."""
        design = {
            "variants": [[name, v.workflow.source] for name, v in self.variants.items()],
            "items": [[item.number, item.inputs, item.values] for item in self.items],
            "repeats": self.spec.repeats,
            "scorers": [s.model_dump(mode="json", by_alias=True) for s in self.spec.scorers],
        }
        text = json.dumps(design, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


_EXPERIMENT_KEY = re.compile(r"^experiment\s*:", re.MULTILINE)
_NODES_KEY = re.compile(r"^nodes\s*:", re.MULTILINE)


def looks_like_experiment(text: str) -> bool:
    """An experiment file has a top-level `experiment:` and, unlike a workflow, no `nodes:`."""
    return bool(_EXPERIMENT_KEY.search(text)) and not _NODES_KEY.search(text)


def load_experiment(path: str | os.PathLike[str], *, text: str | None = None) -> Experiment:
    """Load an experiment file (or `text` as if it were that file: paths in it are relative
    to the file's folder). Raises ExperimentError listing every problem."""
    filename = str(path)
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            problem = Problem(1, 1, f"cannot read file: {exc.strerror}")
            raise ExperimentError([LocatedProblem(filename, problem)]) from None
    return parse_experiment(text, filename, Path(path).parent)


def parse_experiment(text: str, filename: str, folder: Path) -> Experiment:
    try:
        data, source, problems = parse(text)
    except YamlSyntaxError as exc:
        raise ExperimentError(located(filename, exc.problems)) from None
    if not isinstance(data, dict):
        expected = "expected a mapping with 'experiment:', 'workflow:', 'dataset:' at the top"
        raise ExperimentError([LocatedProblem(filename, Problem(1, 1, expected))])
    problems += schema_problems(data, source)
    if problems:
        raise ExperimentError(located(filename, problems))
    spec = ExperimentSpec.model_validate(data)
    workflow = _workflow(spec, folder, filename, source)
    dataset = folder / spec.dataset
    if not dataset.is_file():
        problem = Problem(*source.value(("dataset",)), f"dataset file not found: {dataset}")
        raise ExperimentError([LocatedProblem(filename, problem)])
    rows, columns, dataset_problems = read_rows(dataset)
    found = located(str(dataset), dataset_problems)
    if not rows and not dataset_problems:
        message = f"the dataset {dataset} has no rows"
        found.append(LocatedProblem(filename, Problem(*source.value(("dataset",)), message)))
    items, row_problems = check_rows(rows, workflow, from_text=dataset.suffix.lower() == ".csv")
    found += located(str(dataset), row_problems)
    # Without rows there are no columns to check scorers against: one problem, not many.
    known = columns if rows else None
    found += located(filename, semantic_problems(spec, source, workflow, known))
    variants, variant_problems, warnings = _variants(spec, data, source, workflow)
    found += located(filename, variant_problems)
    if found:
        raise ExperimentError(found)
    choices = {
        scorer.name: labels(items, column)
        for scorer in spec.scorers
        if (column := column_of(getattr(scorer, "expected", None))) is not None
    }
    return Experiment(
        spec=spec,
        source=text,
        filename=filename,
        workflow=workflow,
        variants=variants,
        items=sample(items, spec.sample),
        dataset=str(dataset),
        choices={name: values for name, values in choices.items() if values},
        warnings=tuple(warnings),
    )


def _workflow(spec: ExperimentSpec, folder: Path, filename: str, source: SourceMap) -> Workflow:
    path = folder / spec.workflow
    if not path.is_file():
        message = f"workflow file not found: {path}"
        raise ExperimentError(
            [LocatedProblem(filename, Problem(*source.value(("workflow",)), message))]
        )
    try:
        return load_workflow(path)
    except WorkflowError as exc:
        raise ExperimentError(located(str(path), exc.problems)) from None


def _variants(
    spec: ExperimentSpec, data: dict[str, Any], source: SourceMap, workflow: Workflow
) -> tuple[dict[str, Variant], list[Problem], list[str]]:
    base = parse(workflow.source)[0]
    variants: dict[str, Variant] = {}
    documents: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for index, variant in enumerate(spec.variants):
        at = ("variants", index)
        document, origin, found = merged_document(base, data["variants"][index], at, source)
        problems += found
        built, found = build_variant(
            variant.name, workflow, document, origin, at, source, variant.description
        )
        problems += found
        if built is not None:
            variants.setdefault(variant.name, built)
            documents.setdefault(variant.name, document)
    warnings = []
    baseline = documents.get(spec.baseline_name)
    for name, document in documents.items():
        if name != spec.baseline_name and document == baseline:
            warnings.append(
                f"variant '{name}' is identical to the baseline '{spec.baseline_name}': "
                "its differences will be noise"
            )
    return variants, problems, warnings

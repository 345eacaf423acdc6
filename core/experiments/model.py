"""The experiment file format (docs/experiments.md) as pydantic models.

Like the workflow's models, every mapping forbids unknown keys, so `scorer: {typ: equals}` is
an error with a suggestion, never ignored. Scorers are a union tagged by `type:`, each with
exactly the keys its type uses. What needs other files (the workflow, the dataset) or the
whole document is checked in `core.experiments.validation`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.workflow.models import NAME_PATTERN, NODE_NAME_PATTERN, LLMSettings, SandboxSettings

Score = Annotated[float, Field(ge=0, le=1)]
# Variants are often named after a model ("gpt-4.1"), so their names may hold dots.
VARIANT_NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Sample(Strict):
    """Run on part of the dataset: its first N rows, or N rows drawn at random with a seed."""

    first: Annotated[int, Field(ge=1)] | None = None
    random: Annotated[int, Field(ge=1)] | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _one_way(self) -> Sample:
        if (self.first is None) == (self.random is None):
            raise ValueError("give either first: N or random: N")
        return self


class VariantSpec(Strict):
    """A name plus overrides deep-merged into the workflow; no overrides: the file as it is."""

    name: Annotated[str, Field(pattern=VARIANT_NAME_PATTERN)]
    description: str | None = None
    workflow: dict[str, Any] | None = Field(
        default=None, description="Overrides of the workflow's `workflow:` settings."
    )
    nodes: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Node name -> overrides of that node (llm, prompt, cache...)."
    )
    pricing: dict[str, Any] | None = None


class ScorerBase(Strict):
    name: Annotated[str, Field(pattern=NODE_NAME_PATTERN)]
    description: str | None = None
    node: str | None = Field(
        default=None, description="The node whose output is scored; default: the outputs."
    )
    threshold: Score | None = Field(
        default=None,
        description="A cell passes when its score reaches this (1; python and llm_judge 0.5).",
    )


# `expected:` is a literal, a template such as "{inputs.x}", or {column: NAME}: a dataset
# column. Typed Any here because a literal may be any JSON value.
_EXPECTED = Field(description="A literal, a template ({inputs.NAME}) or {column: NAME}.")


class Equals(ScorerBase):
    type: Literal["equals"]
    expected: Any = _EXPECTED


class Contains(ScorerBase):
    type: Literal["contains"]
    expected: Any = _EXPECTED


class IContains(ScorerBase):
    type: Literal["icontains"]
    expected: Any = _EXPECTED


class Regex(ScorerBase):
    type: Literal["regex"]
    pattern: str


class JsonValid(ScorerBase):
    type: Literal["json_valid"]


class JsonSchema(ScorerBase):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class JsonFieldEquals(ScorerBase):
    type: Literal["json_field_equals"]
    field: str = Field(description="A field of the JSON output; dots reach nested fields.")
    expected: Any = _EXPECTED


class NumberClose(ScorerBase):
    type: Literal["number_close"]
    expected: Any = _EXPECTED
    tolerance: Annotated[float, Field(ge=0)] = 0.0
    relative: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="Tolerance as a share of the expected value."
    )


class MaxCost(ScorerBase):
    type: Literal["max_cost"]
    limit: Annotated[float, Field(gt=0)] = Field(description="USD per cell (one run).")


class MaxLatency(ScorerBase):
    type: Literal["max_latency_ms"]
    limit: Annotated[float, Field(gt=0)] = Field(description="Milliseconds per cell.")


class Python(ScorerBase):
    type: Literal["python"]
    code: str = Field(description="Sees output, expected and inputs; sets score in [0, 1].")
    expected: Any = None
    sandbox: SandboxSettings = SandboxSettings()


class Judge(ScorerBase):
    type: Literal["llm_judge"]
    rubric: str
    llm: LLMSettings = LLMSettings()
    expected: Any = None


Scorer = Annotated[
    Equals
    | Contains
    | IContains
    | Regex
    | JsonValid
    | JsonSchema
    | JsonFieldEquals
    | NumberClose
    | MaxCost
    | MaxLatency
    | Python
    | Judge,
    Field(discriminator="type"),
]
SCORER_TYPES: dict[str, type[ScorerBase]] = {
    "equals": Equals,
    "contains": Contains,
    "icontains": IContains,
    "regex": Regex,
    "json_valid": JsonValid,
    "json_schema": JsonSchema,
    "json_field_equals": JsonFieldEquals,
    "number_close": NumberClose,
    "max_cost": MaxCost,
    "max_latency_ms": MaxLatency,
    "python": Python,
    "llm_judge": Judge,
}
# Scorers that need an expected value; python and llm_judge may use one.
COMPARED = ("equals", "contains", "icontains", "json_field_equals", "number_close")


class ExperimentSpec(Strict):
    experiment: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="The experiment's name."
    )
    description: str | None = None
    workflow: str = Field(description="Path of the workflow file, relative to this file.")
    dataset: str = Field(description="JSONL or CSV file: the workflow's inputs per row.")
    repeats: Annotated[int, Field(ge=1, le=100)] = 1
    concurrency: Annotated[int, Field(ge=1, le=1024)] = 8
    baseline: str | None = Field(default=None, description="A variant; default: the first.")
    primary: str | None = Field(
        default=None, description="The scorer the frontier and verdicts use; default: the first."
    )
    margin: Annotated[float, Field(ge=0, le=1)] = Field(
        default=0.05, description="Largest score loss that still counts as as good."
    )
    max_cost: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Budget for the whole experiment, USD: runs and judges."
    )
    sample: Sample | Annotated[int, Field(ge=1)] | None = None
    variants: Annotated[list[VariantSpec], Field(min_length=1)]
    scorers: Annotated[list[Scorer], Field(min_length=1)]

    @property
    def baseline_name(self) -> str:
        return self.baseline or self.variants[0].name

    @property
    def primary_name(self) -> str:
        return self.primary or self.scorers[0].name

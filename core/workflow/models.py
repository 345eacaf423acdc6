"""The workflow file format (docs/workflow-format.md) as pydantic models.

Every model forbids unknown keys: a typo such as `promt:` must be an error, never silently
ignored. Cross-field rules that need the whole document (references, cycles) live in
`core.workflow.validation`, which also turns pydantic's errors into located problems.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
NODE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

FieldType = Literal["string", "integer", "number", "boolean", "array", "object"]
InputType = FieldType

# disk_mb: what the code may write in its working directory (and /tmp), a tmpfs of that size.
RESOURCE_PRESETS: dict[str, dict[str, float]] = {
    "low": {"cpus": 1, "memory_mb": 512, "timeout": 30, "disk_mb": 256},
    "medium": {"cpus": 2, "memory_mb": 1024, "timeout": 60, "disk_mb": 512},
    "high": {"cpus": 4, "memory_mb": 2048, "timeout": 120, "disk_mb": 1024},
    "max": {"cpus": 8, "memory_mb": 4096, "timeout": 300, "disk_mb": 2048},
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulateSettings(Strict):
    """Overrides for the simulated provider's figures (docs/workflow-format.md)."""

    latency_ms: Annotated[float, Field(ge=0)] | None = None
    output_tokens: Annotated[int, Field(ge=1)] | None = None
    error_rate: Annotated[float, Field(ge=0, le=1)] = 0.0


class LLMSettings(Strict):
    """Model selection; workflow-level values are defaults that nodes override field by field."""

    provider: str | None = None
    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    api_base: str | None = None
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the key for `api_base`."
    )
    seed: int | None = None
    simulate: SimulateSettings | None = None


class CacheSettings(Strict):
    enabled: bool = True
    ttl: Annotated[float, Field(gt=0)] | None = None


class MemorySettings(Strict):
    enabled: bool = True
    namespace: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    ttl: Annotated[float, Field(gt=0)] | None = None


class SandboxSettings(Strict):
    backend: Literal["process", "docker"] = "process"
    resource_preset: str = "low"
    timeout: Annotated[float, Field(gt=0)] | None = None
    network: bool = False
    image: str | None = None

    @field_validator("resource_preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in RESOURCE_PRESETS:
            raise ValueError(
                f"unknown resource preset '{value}'; expected one of " + ", ".join(RESOURCE_PRESETS)
            )
        return value


class InputSpec(Strict):
    type: InputType = "string"
    required: bool = False
    default: Any = None
    description: str | None = None


class _NodeBase(Strict):
    name: Annotated[str, Field(pattern=NODE_NAME_PATTERN)]
    description: str | None = None
    timeout: Annotated[float, Field(gt=0)] | None = None
    retries: Annotated[int, Field(ge=0, le=20)] | None = None
    memory: MemorySettings | None = None


class LLMNode(_NodeBase):
    type: Literal["llm"] = "llm"
    prompt: str
    system: str | None = None
    llm: LLMSettings | None = None
    cache: CacheSettings | None = None
    output: Literal["text", "json"] = "text"
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CodeNode(_NodeBase):
    type: Literal["code"]
    code: str
    sandbox: SandboxSettings = SandboxSettings()


Node = Annotated[LLMNode | CodeNode, Field(discriminator="type")]


class Edge(Strict):
    from_: str = Field(alias="from")
    to: str

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ModelPrice(Strict):
    input_per_million: Annotated[float, Field(ge=0)]
    output_per_million: Annotated[float, Field(ge=0)]


Ratio = Annotated[float, Field(ge=0, le=1)]


class Targets(Strict):
    """Service levels `configurable-agents check` holds runs to over its window (cost and
    latency at p95; rates and shares as fractions, 0.95 = 95 %). Command-line flags win."""

    max_run_cost: Annotated[float, Field(gt=0)] | None = None
    max_run_latency_ms: Annotated[float, Field(gt=0)] | None = None
    min_success_rate: Ratio | None = None
    min_cache_hit_rate: Ratio | None = None
    max_node_time_share: Ratio | None = None
    max_node_cost_share: Ratio | None = None


class TelemetrySettings(Strict):
    """What a run's telemetry may carry. Prompts and responses may hold secrets or personal
    data: they are stored in the local database (`store_content`; unset: simulated runs
    only, docs/telemetry.md) and leave the machine in exported traces
    (`export_content`, docs/integrations.md) only when the workflow says so."""

    store_content: bool | None = None
    export_content: bool = False
    mlflow: bool = False  # log each run to MLflow live when MLFLOW_TRACKING_URI is set


class BudgetSettings(Strict):
    """How budgets and prices treat calls that cannot be priced exactly."""

    # With max_cost, nodes on a model without a known price are refused unless this is
    # set; their calls then count against max_tokens only.
    allow_unpriced: bool = False
    # A reply without usage is priced on tokens counted here instead of being unknown.
    price_estimated_usage: bool = False


class WorkflowSettings(Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: str | None = None
    version: str | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    max_cost: Annotated[float, Field(gt=0)] | None = None
    llm: LLMSettings = LLMSettings()
    timeout: Annotated[float, Field(gt=0)] = 60
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    max_concurrency: Annotated[int, Field(ge=1, le=1024)] = 16
    targets: Targets | None = None
    budget: BudgetSettings | None = None
    telemetry: TelemetrySettings = TelemetrySettings()


class WorkflowSpec(Strict):
    workflow: WorkflowSettings
    inputs: dict[str, InputSpec] = {}
    nodes: Annotated[list[Node], Field(min_length=1)]
    edges: list[Edge] | None = None
    outputs: list[str] | None = None
    pricing: dict[str, ModelPrice] = {}
    budget: BudgetSettings | None = None  # also accepted under `workflow:`, beside max_cost

    @property
    def budget_settings(self) -> BudgetSettings:
        return self.budget or self.workflow.budget or BudgetSettings()

    @model_validator(mode="before")
    @classmethod
    def _default_node_type(cls, data: Any) -> Any:
        """Nodes without `type:` are LLM nodes; the discriminated union needs the tag present."""
        if isinstance(data, dict) and isinstance(data.get("nodes"), list):
            nodes = [
                {**node, "type": "llm"} if isinstance(node, dict) and "type" not in node else node
                for node in data["nodes"]
            ]
            data = {**data, "nodes": nodes}
        if isinstance(data, dict) and isinstance(data.get("inputs"), dict):
            data = {
                **data,
                "inputs": {
                    name: {"type": spec} if isinstance(spec, str) else spec
                    for name, spec in data["inputs"].items()
                },
            }
        return data

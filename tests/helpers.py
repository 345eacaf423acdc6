"""What several test modules share: telemetry rows written through the real bulk path, the
command line run as users run it, and the provider key variables no test may see.

Test modules import from here, never from each other.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from core.analytics.window import utc_now
from core.settings import HOME_VARIABLE
from core.telemetry import get_store
from core.telemetry.rows import arrow_table, node_row, run_row, workflow_row

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "data" / "workflows"
PROVIDER_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY")

NOW = utc_now()
# Noon yesterday and the day before (UTC): whole days inside a 7-day window whatever the hour.
D1 = datetime.combine((NOW - timedelta(days=1)).date(), datetime.min.time()) + timedelta(hours=12)
D2 = D1 - timedelta(days=1)


def write_rows(
    home: Path,
    runs: Sequence[dict[str, Any]] = (),
    nodes: Sequence[dict[str, Any]] = (),
    workflows: Sequence[dict[str, Any]] = (),
) -> None:
    """Writes rows in one transaction through `TelemetryStore.bulk_load`, as the demo history
    is written; columns a row leaves out are NULL."""
    builders = {"runs": run_row, "node_runs": node_row, "workflows": workflow_row}
    given = {"runs": runs, "node_runs": nodes, "workflows": workflows}
    tables = {
        table: arrow_table(table, [builders[table](**row) for row in rows])
        for table, rows in given.items()
        if rows
    }
    get_store(home).bulk_load(tables)


def downloaded(managers: Sequence[Any], button: Any) -> str:
    """What a download button hands the browser (the `media` fixture records the managers);
    a deferred one is generated as on a click."""
    manager, proto = managers[-1], button.proto
    url = proto.url or manager.execute_deferred(proto.deferred_file_id)
    return manager.read_file(url.rsplit("/", 1)[-1]).content.decode()


_SVG = "{http://www.w3.org/2000/svg}"


def filled_charts(document: str) -> list[int]:
    """For each chart of an exported file, how many data marks it draws (a rect or a text
    inside a mark group); a chart whose data went missing draws only axes and scores 0."""
    drawn = []
    for chunk in document.split("<svg")[1:]:
        root = ElementTree.fromstring("<svg" + chunk.split("</svg>")[0] + "</svg>")
        groups = [g for g in root.iter(f"{_SVG}g") if "role-mark" in g.get("class", "")]
        drawn.append(sum(len(list(g)) for g in groups if "mark-rect" in g.get("class", "")))
    return drawn


def make_run(run_id: str, at: datetime, cost: float | None, **extra: Any) -> dict[str, Any]:
    """A finished, successful real run of `digest` unless `extra` says otherwise."""
    return {
        "run_id": run_id,
        "workflow": "digest",
        "started_at": at,
        "duration_ms": 1000.0,
        "status": "success",
        "cost_usd": cost,
        "simulated": False,
    } | extra


def make_node(run_id: str, node: str, at: datetime, **extra: Any) -> dict[str, Any]:
    """One successful real gpt-4o call of `digest` unless `extra` says otherwise."""
    return {
        "run_id": run_id,
        "node": node,
        "node_type": "llm",
        "provider": "openai",
        "model": "gpt-4o",
        "started_at": at,
        "duration_ms": 100.0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "cache_hit": False,
        "cache_enabled": False,
        "attempts": 1,
        "status": "success",
        "workflow": "digest",
        "simulated": False,
    } | extra


def cli(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`configurable-agents ARGS...` in a process of its own, on `home`, with no provider key
    unless `env` gives one."""
    base = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    return subprocess.run(
        [sys.executable, "-m", "core", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**base, HOME_VARIABLE: str(home), **(env or {})},
        timeout=timeout,
        check=False,
    )


def litellm_cost(
    provider: str,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
) -> float:
    """What LiteLLM itself says a call costs, asked directly: the yardstick every recorded
    cost is held to (a simulated node's model is resolved by LiteLLM from its name)."""
    from core.catalog.litellm_runtime import litellm

    module = litellm()
    types = module.types.utils
    usage = types.Usage(
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        prompt_tokens_details=types.PromptTokensDetailsWrapper(cached_tokens=cached_tokens),
        completion_tokens_details=types.CompletionTokensDetailsWrapper(
            reasoning_tokens=reasoning_tokens
        ),
    )
    family = None if provider == "simulated" else {"google": "gemini"}.get(provider, provider)
    prompt, completion = module.cost_per_token(
        model=model,
        custom_llm_provider=family,
        prompt_tokens=input_tokens,
        completion_tokens=output_tokens,
        usage_object=usage,
    )
    return prompt + completion


# ----------------------------------------------------------------------------- experiments

QUIZ_WORKFLOW = """\
workflow:
  name: quiz
  llm: {provider: openai, model: gpt-4o, max_output_tokens: 40, simulate: {latency_ms: LATENCY}}
inputs:
  question: {type: string, required: true}
nodes:
  - name: answer
    prompt: "Answer with one word only: {inputs.question}"
"""
QUIZ_ROWS = [
    ("Capital of France?", "Paris"),
    ("Colour of the sky?", "blue"),
    ("Largest planet?", "Jupiter"),
    ("Opposite of hot?", "cold"),
    ("Metal that is liquid at room temperature?", "mercury"),
    ("Closest star?", "Sun"),
]
QUIZ_EXPERIMENT = """\
experiment: quiz_models
workflow: quiz.yaml
dataset: quiz.jsonl
repeats: REPEATS
concurrency: 4
baseline: big
variants:
  - name: big
  - name: small
    workflow: {llm: {model: gpt-4o-mini}}
scorers:
  - name: exact
    type: equals
    node: answer
    expected: {column: answer}
  - name: quick
    type: max_latency_ms
    limit: 60000
"""


def quiz_experiment(
    folder: Path, *, repeats: int = 2, latency_ms: float = 0, extra: str = "", rows: int = 6
) -> Path:
    """A small experiment (two models over a quiz dataset) written into `folder`: its
    workflow, its dataset and the experiment file, whose path is returned. `extra` is
    appended to the experiment (more keys, or scorers: it ends inside `scorers:`)."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quiz.yaml").write_text(QUIZ_WORKFLOW.replace("LATENCY", str(latency_ms)))
    lines = [
        json.dumps({"question": question, "answer": answer})
        for question, answer in (QUIZ_ROWS * (rows // len(QUIZ_ROWS) + 1))[:rows]
    ]
    (folder / "quiz.jsonl").write_text("\n".join(lines) + "\n")
    path = folder / "quiz_models.yaml"
    path.write_text(QUIZ_EXPERIMENT.replace("REPEATS", str(repeats)) + extra)
    return path


# A 3-node simulated chain for batch tests; LATENCY is replaced by each test's node latency.
TRIO_WORKFLOW = """\
workflow:
  name: trio
  llm: {provider: simulated, model: gpt-4o-mini, max_output_tokens: 20,
        simulate: {latency_ms: LATENCY, output_tokens: 5}}
inputs:
  topic: {type: string, required: true}
nodes:
  - name: gather
    prompt: "Facts about {inputs.topic}"
  - name: critique
    prompt: "Critique {gather}"
  - name: summary
    prompt: "Summarise {gather} and {critique}"
"""

"""The generated JSON Schema accepts what the engine accepts and rejects the shape errors it
rejects, so editors that check against it agree with `configurable-agents validate`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.cli import main
from core.errors import WorkflowError
from core.workflow import parse_workflow
from core.workflow.json_schema import workflow_json_schema

EXAMPLES = sorted((Path(__file__).parent.parent / "data" / "workflows").glob("*.yaml"))

BASE = """\
workflow: {name: probe}
inputs: {topic: {type: string}}
nodes:
  - name: ask
    prompt: "About {inputs.topic}"
"""


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = workflow_json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(validator: jsonschema.protocols.Validator, text: str) -> list[str]:
    return [error.message for error in validator.iter_errors(yaml.safe_load(text))]


def engine_accepts(text: str) -> bool:
    try:
        parse_workflow(text)
    except WorkflowError:
        return False
    return True


def test_schema_declares_its_dialect_and_purpose() -> None:
    schema = workflow_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] and schema["description"]
    assert schema["additionalProperties"] is False
    assert all(
        definition.get("additionalProperties") is False
        for name, definition in schema["$defs"].items()
        if definition.get("properties")
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_valid(validator: jsonschema.protocols.Validator, path: Path) -> None:
    assert schema_errors(validator, path.read_text(encoding="utf-8")) == []


def test_a_typo_key_is_rejected_by_name(validator: jsonschema.protocols.Validator) -> None:
    errors = schema_errors(validator, BASE.replace("prompt:", "promt:"))
    assert any("'promt' was unexpected" in message for message in errors)


VALID: list[tuple[str, str]] = [
    ("llm node without type", BASE),
    ("explicit llm type", BASE + "    type: llm\n"),
    ("code node", BASE + "  - {name: count, type: code, code: 'result = 1'}\n"),
    ("input as a bare type", BASE.replace("{type: string}", "string")),
    ("json fields", BASE + "    output: json\n    schema: {tags: [string], meta: {n: integer}}\n"),
    ("empty optional", BASE + "    cache:\n"),
]
INVALID: list[tuple[str, str]] = [
    ("typo in a node", BASE.replace("prompt:", "promt:")),
    ("typo in workflow", BASE.replace("{name: probe}", "{name: probe, max_cots: 1}")),
    ("llm key at node level", BASE + "    temperature: 0.3\n"),
    ("code node without code", BASE + "  - {name: count, type: code}\n"),
    ("code node with a prompt", BASE + "  - {name: c, type: code, code: x, prompt: y}\n"),
    ("unknown node type", BASE + "    type: agent\n"),
    (
        "unknown preset",
        BASE + "  - {name: c, type: code, code: x, sandbox: {resource_preset: xl}}\n",
    ),
    ("unknown input type", BASE.replace("{type: string}", "text")),
    ("temperature out of range", BASE + "    llm: {temperature: 3}\n"),
    ("bad json field type", BASE + "    output: json\n    schema: {n: int}\n"),
    ("bad workflow name", BASE.replace("probe", "my probe")),
    ("no nodes", "workflow: {name: probe}\nnodes: []\n"),
]


@pytest.mark.parametrize(
    ("case", "text", "valid"),
    [(case, text, True) for case, text in VALID] + [(case, text, False) for case, text in INVALID],
    ids=[case for case, _ in VALID + INVALID],
)
def test_schema_agrees_with_the_engine(
    validator: jsonschema.protocols.Validator, case: str, text: str, valid: bool
) -> None:
    assert engine_accepts(text) is valid, case
    assert (schema_errors(validator, text) == []) is valid, case


def test_cli_writes_the_schema_to_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "workflow.schema.json"
    assert main(["schema", "--output", str(target)]) == 0
    written: dict[str, Any] = json.loads(target.read_text(encoding="utf-8"))
    assert written == workflow_json_schema()
    assert capsys.readouterr().out == ""


def test_cli_prints_the_schema_without_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == workflow_json_schema()


def test_cli_reports_an_unwritable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "-o", str(tmp_path / "missing" / "schema.json")]) == 1
    assert "cannot write" in capsys.readouterr().err

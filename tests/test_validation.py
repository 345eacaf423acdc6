"""Every bad-input case of the workflow format, with the exact line and column reported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core import WorkflowError, load_workflow

EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("data", "workflows").glob("*.yaml"))


def problems_of(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(WorkflowError) as caught:
        load_workflow(textwrap.dedent(text).lstrip("\n"))
    return [(p.line, p.column, p.message) for p in caught.value.problems]


def only_problem(text: str) -> tuple[int, int, str]:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_are_valid(path: Path) -> None:
    workflow = load_workflow(path)
    assert workflow.nodes


def test_there_are_at_least_five_examples() -> None:
    assert len(EXAMPLES) >= 5


def test_yaml_syntax_error_names_line_and_column() -> None:
    line, column, message = only_problem(
        """
        workflow:
          name: x
        nodes:
          - name: a
            prompt: "unterminated
        """
    )
    assert (line, message.startswith("invalid YAML")) == (5, True)
    assert column >= 1


def test_unknown_key_suggests_the_right_one() -> None:
    assert only_problem(
        """
        workflow: {name: x}
        nodes:
          - name: a
            prompt: hi
            promt: typo
        """
    ) == (5, 5, "unknown key 'promt' in node 'a'; did you mean 'prompt'?")


def test_model_settings_at_node_level_point_under_llm() -> None:
    line, column, message = only_problem(
        """
        workflow: {name: x}
        nodes:
          - {name: a, prompt: hi, temperature: 0.5}
        """
    )
    assert (line, column) == (3, 27)
    assert "belongs under llm:" in message


def test_wrong_types_are_located_at_the_value() -> None:
    found = problems_of(
        """
        workflow:
          name: x
          timeout: soon
          max_concurrency: 0
        nodes:
          - name: a
            prompt: hi
            llm: {temperature: 7}
        """
    )
    assert [(line, column) for line, column, _ in found] == [(3, 12), (4, 20), (8, 24)]
    assert "temperature" in found[2][2] and "2" in found[2][2]


def test_missing_prompt_and_unknown_node_type() -> None:
    found = problems_of(
        """
        workflow: {name: x}
        nodes:
          - name: a
          - {name: b, type: cod, prompt: x}
        """
    )
    messages = [message for _, _, message in found]
    assert "node 'a': missing required key 'prompt'" in messages
    assert any("unknown node type 'cod'" in m for m in messages)


def test_duplicate_node_names() -> None:
    assert only_problem(
        """
        workflow: {name: x}
        nodes:
          - {name: a, prompt: one}
          - {name: a, prompt: two}
        """
    ) == (4, 12, "duplicate node name 'a' (first defined at line 3)")


def test_edges_to_unknown_nodes() -> None:
    assert only_problem(
        """
        workflow: {name: x}
        nodes:
          - {name: gather, prompt: one}
          - {name: b, prompt: two}
        edges:
          - {from: gathr, to: b}
        """
    ) == (6, 12, "edge from unknown node 'gathr'; did you mean 'gather'?")


def test_cycle_is_named() -> None:
    line, column, message = only_problem(
        """
        workflow: {name: x}
        nodes:
          - {name: a, prompt: one}
          - {name: b, prompt: two}
          - {name: c, prompt: three}
        edges:
          - {from: a, to: b}
          - {from: b, to: c}
          - {from: c, to: a}
        """
    )
    assert message == "cycle: a -> b -> c -> a"
    assert (line, column) == (7, 5)


def test_references_inside_multiline_prompt_are_located() -> None:
    found = problems_of(
        """
        workflow: {name: x}
        inputs:
          topic: {type: string, required: true}
        nodes:
          - name: a
            prompt: |
              First line about {inputs.topic}.
              Second line with {inputs.topik} and
                an indented {missing_node}.
        """
    )
    assert found == [
        (8, 24, "node 'a': unknown input 'topik' in {inputs.topik}; did you mean 'topic'?"),
        (9, 21, "node 'a': unknown node 'missing_node' in {missing_node}"),
    ]


def test_reference_to_a_node_that_is_not_upstream() -> None:
    line, column, message = only_problem(
        """
        workflow: {name: x}
        nodes:
          - {name: a, prompt: one}
          - {name: b, prompt: "uses {c}"}
          - {name: c, prompt: three}
        edges:
          - {from: a, to: b}
          - {from: a, to: c}
        """
    )
    assert (line, column) == (4, 29)
    assert "not upstream of 'b'" in message and "add an edge from 'c' to 'b'" in message


def test_unknown_json_field_against_schema() -> None:
    assert only_problem(
        """
        workflow: {name: x}
        nodes:
          - name: critique
            prompt: one
            output: json
            schema: {weaknesses: string, severity: integer}
          - {name: b, prompt: "fix {critique.weakness}"}
        """
    )[2] == (
        "node 'b': node 'critique' has no field 'weakness' in its schema; "
        "did you mean 'weaknesses'?"
    )


def test_field_of_a_text_node_is_an_error() -> None:
    assert (
        "outputs text"
        in only_problem(
            """
        workflow: {name: x}
        nodes:
          - {name: a, prompt: one}
          - {name: b, prompt: "{a.field}"}
        """
        )[2]
    )


def test_escaped_braces_are_literal_and_stray_braces_explained() -> None:
    load_workflow(
        'workflow: {name: x}\nnodes:\n  - {name: a, prompt: "JSON like {{\\"k\\": 1}}"}\n'
    )
    message = only_problem(
        """
        workflow: {name: x}
        nodes:
          - {name: a, prompt: 'reply like {"k": 1}'}
        """
    )[2]
    assert "invalid reference" in message and "{{" in message


def test_unknown_resource_preset() -> None:
    line, column, message = only_problem(
        """
        workflow: {name: x}
        nodes:
          - name: count
            type: code
            code: "result = 1"
            sandbox: {resource_preset: huge}
        """
    )
    assert (line, column) == (6, 32)
    assert "unknown resource preset 'huge'" in message and "low, medium, high, max" in message


def test_invalid_budgets() -> None:
    found = problems_of(
        """
        workflow:
          name: x
          max_tokens: 100
          max_cost: -1
          llm: {max_output_tokens: 800}
        nodes:
          - {name: a, prompt: one}
        """
    )
    messages = {(line, column): message for line, column, message in found}
    assert "greater than 0" in messages[(4, 13)]
    assert "leaves no room for node 'a'" in messages[(3, 15)]


def test_unknown_provider_suggests_a_known_one() -> None:
    assert only_problem(
        """
        workflow: {name: x, llm: {provider: opneai}}
        nodes:
          - {name: a, prompt: one}
        """
    ) == (1, 37, "unknown provider 'opneai'; did you mean 'openai'?")


def test_every_problem_is_reported_at_once() -> None:
    found = problems_of(
        """
        workflow: {name: "bad name"}
        nodes:
          - {name: a, promt: one}
          - {name: b, prompt: "{nope}"}
        edges:
          - {from: a, to: zz}
        """
    )
    assert [line for line, _, _ in found] == [1, 3, 4, 6]


def test_validate_cli_prints_located_errors_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflow: {name: x}\nnodes:\n  - {name: a, promt: one}\n")
    done = subprocess.run(
        [sys.executable, "-m", "core", "validate", str(bad)], capture_output=True, text=True
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    # one line for the typo: its suggestion covers the `prompt` it leaves missing
    assert lines == [f"{bad}:3:15: error: unknown key 'promt' in node 'a'; did you mean 'prompt'?"]
    assert "Traceback" not in done.stderr


def test_validate_cli_accepts_examples_without_importing_litellm() -> None:
    code = (
        "import sys; from core.cli import main; rc = main(['validate', *sys.argv[1:]]);"
        "assert 'litellm' not in sys.modules, 'validate imported litellm'; raise SystemExit(rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *map(str, EXAMPLES)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(": ok (") == len(EXAMPLES)


def test_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core", "validate", str(tmp_path / "nope.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "cannot read file" in done.stderr and "Traceback" not in done.stderr

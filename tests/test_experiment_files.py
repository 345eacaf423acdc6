"""Experiment files: the examples load, every bad input is a located, clear error (in the file
it is in), nothing runs or is written for an invalid experiment, and the JSON Schema and
`validate` cover the format."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers import ROOT, cli, quiz_experiment

from core.experiments.errors import ExperimentError
from core.experiments.json_schema import experiment_json_schema
from core.experiments.loader import load_experiment
from core.telemetry import get_store

EXAMPLES = sorted((ROOT / "data" / "experiments").glob("*.yaml"))


def problems_of(path: Path, text: str | None = None) -> list[str]:
    with pytest.raises(ExperimentError) as caught:
        load_experiment(path, text=text)
    return [problem.format() for problem in caught.value.problems]


def line_of(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_examples_load_with_a_model_and_a_prompt_comparison() -> None:
    assert {path.stem for path in EXAMPLES} >= {"model_choice", "prompt_choice"}
    loaded = {path.stem: load_experiment(path) for path in EXAMPLES}
    models = loaded["model_choice"]
    assert models.baseline == "gpt-4o" and len(models.variants) >= 3
    swapped = {
        v.workflow.llm_for(v.workflow.nodes["classify"]).model for v in models.variants.values()
    }
    assert len(swapped) >= 2  # the variants use other models
    prompts = loaded["prompt_choice"]
    texts = {v.workflow.nodes["sentiment"].prompt for v in prompts.variants.values()}
    assert len(texts) == len(prompts.variants)  # the variants use other prompts
    assert len(prompts.items) == 30  # sample: {random: 30, seed: 1}
    assert all(not experiment.warnings for experiment in loaded.values())


def test_variants_are_deep_merged_and_the_plain_one_keeps_the_files_hash(tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    experiment = load_experiment(path)
    big, small = experiment.variants["big"], experiment.variants["small"]
    assert big.workflow.source == (tmp_path / "quiz.yaml").read_text()
    assert not big.overridden and small.overridden
    node = small.workflow.nodes["answer"]
    llm = small.workflow.llm_for(node)
    # The override replaced the model and kept the rest of `llm:` (deep merge).
    assert (llm.model, llm.max_output_tokens, llm.simulate.latency_ms) == ("gpt-4o-mini", 40, 0)
    assert experiment.cells == 6 * 2 * 2


def test_a_dataset_row_missing_an_input_is_located_by_file_and_row(tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    dataset = tmp_path / "quiz.jsonl"
    lines = dataset.read_text().splitlines()
    lines[2] = json.dumps({"answer": "Jupiter"})
    lines[4] = json.dumps({"question": 7, "answer": "x"})
    dataset.write_text("\n".join(lines) + "\n")
    found = problems_of(path)
    assert f"{dataset}:3:1: error: row 3: missing required input 'question'" in found
    assert f"{dataset}:5:1: error: row 5: input 'question' must be string, got int" in found


def test_csv_values_are_typed_and_bad_json_lines_are_located(tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    (tmp_path / "quiz.yaml").write_text(
        (tmp_path / "quiz.yaml")
        .read_text()
        .replace(
            "  question: {type: string, required: true}",
            "  question: {type: string, required: true}\n  points: {type: integer, default: 1}",
        )
    )
    csv = tmp_path / "quiz.csv"
    csv.write_text('question,answer,points\n"Two, plus two?",4,3\nBad row?,x,many\n')
    text = path.read_text().replace("quiz.jsonl", "quiz.csv")
    found = problems_of(path, text)
    assert found == [
        f"{csv}:3:1: error: row 2: input 'points' must be integer: "
        "invalid literal for int() with base 10: 'many'"
    ]
    csv.write_text('question,answer,points\n"Two, plus two?",4,3\n')
    (item,) = load_experiment(path, text=text).items
    assert item.inputs == {"question": "Two, plus two?", "points": 3}
    assert item.expected == {"answer": "4"}
    (tmp_path / "quiz.jsonl").write_text('{"question": "a", "answer": "b"}\n{"question": \n')
    assert problems_of(path) == [
        f"{tmp_path / 'quiz.jsonl'}:2:14: error: not valid JSON: Expecting value"
    ]


def test_an_empty_dataset_is_an_error_at_the_dataset_key(tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    (tmp_path / "quiz.jsonl").write_text("\n")
    line = line_of(path, "dataset:")
    assert problems_of(path) == [
        f"{path}:{line}:10: error: the dataset {tmp_path / 'quiz.jsonl'} has no rows"
    ]


def test_a_scorer_on_an_unknown_node_or_column_is_located_with_a_suggestion(
    tmp_path: Path,
) -> None:
    path = quiz_experiment(tmp_path)
    text = (
        path.read_text()
        .replace("node: answer", "node: answr")
        .replace("{column: answer}", "{column: anser}")
    )
    path.write_text(text)
    node_line, column_line = line_of(path, "node: answr"), line_of(path, "column: anser")
    assert problems_of(path) == [
        f"{path}:{node_line}:11: error: scorer 'exact': unknown node 'answr'; did you mean "
        "'answer'? (nodes of quiz: answer)",
        f"{path}:{column_line}:24: error: scorer 'exact': the dataset has no column 'anser'; "
        "did you mean 'answer'? (columns: question, answer)",
    ]


def test_overrides_of_unknown_nodes_and_keys_are_located_in_the_experiment(
    tmp_path: Path,
) -> None:
    path = quiz_experiment(tmp_path)
    text = path.read_text().replace(
        "    workflow: {llm: {model: gpt-4o-mini}}",
        "    nodes:\n      answr: {llm: {model: gpt-4o-mini}}\n"
        "  - name: typo\n    nodes:\n      answer: {promt: hi}\n"
        "  - name: badref\n    nodes:\n      answer: {prompt: 'Say {inputs.qestion}'}",
    )
    path.write_text(text)
    found = problems_of(path)
    assert found == [
        f"{path}:{line_of(path, 'answr:')}:7: error: variant 'small': unknown node 'answr'; "
        "did you mean 'answer'?",
        f"{path}:{line_of(path, 'promt')}:16: error: variant 'typo': unknown key 'promt' in "
        "node 'answer'; did you mean 'prompt'?",
        f"{path}:{line_of(path, 'qestion')}:24: error: variant 'badref': node 'answer': "
        "unknown input 'qestion' in {inputs.qestion}; did you mean 'question'?",
    ]


def test_shape_errors_suggest_the_key_or_type_meant(tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    text = (
        path.read_text()
        .replace("repeats: 2", "repets: 2")
        .replace("type: max_latency_ms", "type: max_latncy_ms")
    )
    path.write_text(text)
    found = problems_of(path)
    assert found == [
        f"{path}:{line_of(path, 'repets')}:1: error: unknown key 'repets' in the experiment; "
        "did you mean 'repeats'?",
        f"{path}:{line_of(path, 'max_latncy_ms')}:11: error: scorer 'quick': unknown scorer "
        "type 'max_latncy_ms'; did you mean 'max_latency_ms'? (types: equals, contains, "
        "icontains, regex, json_valid, json_schema, json_field_equals, number_close, max_cost,"
        " max_latency_ms, python, llm_judge)",
    ]


def test_regex_python_and_baseline_problems(tmp_path: Path) -> None:
    extra = (
        "  - name: shape\n    type: regex\n    node: answer\n    pattern: '(unclosed'\n"
        "  - name: custom\n    type: python\n    code: |\n      x = 1\n      score = (\n"
    )
    path = quiz_experiment(tmp_path, extra=extra)
    path.write_text(path.read_text().replace("baseline: big", "baseline: bigg"))
    found = problems_of(path)
    code_line = line_of(path, "score = (")
    assert found == [
        f"{path}:{line_of(path, 'baseline')}:11: error: baseline 'bigg' is not a variant; did "
        "you mean 'big'? (variants: big, small)",
        f"{path}:{line_of(path, 'unclosed')}:14: error: scorer 'shape': invalid pattern: "
        "missing ), unterminated subpattern at position 0",
        f"{path}:{code_line}:1: error: scorer 'custom': syntax error in code line 2: '(' was "
        "never closed",
    ]


def test_a_variant_identical_to_the_baseline_is_a_warning(tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    path.write_text(
        path.read_text().replace(
            "  - name: small\n", "  - name: same\n    nodes: {answer: {}}\n  - name: small\n"
        )
    )
    experiment = load_experiment(path)
    assert experiment.warnings == (
        "variant 'same' is identical to the baseline 'big': its differences will be noise",
    )
    done = cli("validate", str(path), home=tmp_path / "home")
    assert done.returncode == 0
    assert "warning: variant 'same' is identical to the baseline" in done.stderr


def test_validate_reports_experiments_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    good = [str(path) for path in EXAMPLES]
    done = cli("validate", *good, home=home)
    assert done.returncode == 0, done.stderr
    assert "ok (experiment model_choice: 4 variants, 40 items, 320 cells)" in done.stdout
    broken = quiz_experiment(tmp_path / "broken")
    (tmp_path / "broken" / "quiz.jsonl").write_text("")
    done = cli("experiment", "run", str(broken), "--simulate", home=home)
    assert done.returncode == 2
    assert "has no rows" in done.stderr and "Traceback" not in done.stderr
    assert get_store(home).query("SELECT count(*) FROM experiments")[0][0] == 0
    assert get_store(home).query("SELECT count(*) FROM runs")[0][0] == 0


def test_the_json_schema_accepts_the_examples_and_catches_typos() -> None:
    schema = experiment_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in EXAMPLES:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text())))
    document = yaml.safe_load(EXAMPLES[0].read_text())
    document["scorers"][0]["typ"] = "equals"
    assert list(validator.iter_errors(document))
    done = cli("schema", "experiment", home=Path("/tmp"))
    assert json.loads(done.stdout)["title"] == "configurable-agents experiment"

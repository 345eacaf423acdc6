"""Hostile and careless input, kept small enough for CI: each must end in one located line and
a meaningful exit code, within bounded memory.

Memory is bounded for real: the command runs under `prlimit --as`, so a bomb that expanded,
or a step quadratic in the number of nodes, would die of MemoryError instead of passing.
The full-size shapes and their timings are in bench/inputs.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import hostile_inputs as shapes
import pytest
from helpers import ROOT, cli

from core.input_files import MAX_INPUTS_BYTES, MAX_WORKFLOW_BYTES
from core.workflow.loader import workflow_problems
from core.workflow.yaml_source import ALIAS_VALUES

# Bytes a process may map: about ten times what validating a 20,000-node chain needs (and a
# tenth of what the old quadratic ancestor sets took); running one also maps DuckDB's buffers
# and threads' stacks.
ADDRESS_SPACE = 1_200_000_000
RUN_ADDRESS_SPACE = 4_000_000_000
needs_prlimit = pytest.mark.skipif(not shutil.which("prlimit"), reason="needs util-linux prlimit")


def bounded(*args: str, home: Path, space: int = ADDRESS_SPACE) -> subprocess.CompletedProcess[str]:
    """`configurable-agents ARGS` with its address space capped."""
    return subprocess.run(
        ["prlimit", f"--as={space}", "--", sys.executable, "-m", "core", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"CONFIGURABLE_AGENTS_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=300,
        check=False,
    )


def one_located_line(done: subprocess.CompletedProcess[str], path: Path) -> str:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{path}:"), lines[0]
    return lines[0]


@needs_prlimit
def test_alias_bomb_is_refused_at_the_alias(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(shapes.alias_bomb(levels=9, width=9), encoding="utf-8")  # 9**9 values
    line = one_located_line(bounded("validate", str(path), home=home), path)
    assert "alias bomb" in line
    # Where the values aliases added pass the limit: in a5 (line 6), 125,478 of them.
    assert line.startswith(f"{path}:6:5: error: invalid YAML: aliases expand the document")


def test_the_editor_refuses_a_bomb_without_expanding_it() -> None:
    [problem] = workflow_problems(shapes.alias_bomb(levels=12, width=12))
    assert f"more than {ALIAS_VALUES:,} values" in problem.message


def test_a_modest_alias_still_works() -> None:
    text = (
        "defaults: &llm {provider: simulated, model: gpt-4o-mini}\n"
        "workflow: {name: aliased, llm: *llm}\n"
        "nodes: [{name: a, prompt: hi, llm: *llm}, {name: b, prompt: '{a}', llm: *llm}]\n"
    )
    assert [p.message for p in workflow_problems(text)] == ["unknown key 'defaults' in document"]


def test_a_recursive_alias_is_a_located_error() -> None:
    [problem] = workflow_problems("workflow: &w {name: x, self: *w}\nnodes: []\n")
    assert "contains it" in problem.message and problem.line == 1


def test_nesting_too_deep_is_a_located_error() -> None:
    [problem] = workflow_problems(shapes.deep_yaml(150))
    assert "nested more than 100 levels" in problem.message
    assert problem.line == 3


@needs_prlimit
def test_a_workflow_over_the_size_limit_is_refused_unread(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "flood.yaml"
    path.write_text(shapes.key_flood(MAX_WORKFLOW_BYTES + 1000), encoding="utf-8")
    line = one_located_line(bounded("validate", str(path), home=home), path)
    assert "larger than 2 MiB" in line


@pytest.mark.slow
@needs_prlimit
@pytest.mark.parametrize(
    "shape",
    [shapes.chain, shapes.far_references, shapes.fan_out],
    ids=["chain", "every-node-reads-the-first", "fan-out"],
)
def test_twenty_thousand_nodes_validate_in_bounded_memory(
    shape: object, home: Path, tmp_path: Path
) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(shape(20_000), encoding="utf-8")  # type: ignore[operator]
    done = bounded("validate", str(path), home=home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "nodes)" in done.stdout


@pytest.mark.slow
@needs_prlimit
def test_twenty_thousand_problems_are_all_reported(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(shapes.unknown_references(20_000), encoding="utf-8")
    done = bounded("validate", str(path), home=home)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 20_000
    assert lines[0] == f"{path}:3:30: error: node 'n0': unknown node 'm0' in {{m0}}"


@needs_prlimit
def test_a_long_cycle_is_named_briefly(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(shapes.long_cycle(5_000), encoding="utf-8")
    line = one_located_line(bounded("validate", str(path), home=home), path)
    assert "cycle: n0 -> n1" in line and "5,000 nodes in all" in line
    assert len(line) < 500


def test_bytes_that_are_not_utf8_are_located(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(shapes.NOT_UTF8)
    line = one_located_line(cli("validate", str(path), home=home), path)
    assert line == (
        f"{path}:1:21: error: workflow file is not UTF-8 text (byte 0xe9 at line 1, "
        "column 21); save it as UTF-8"
    )
    run = cli("run", str(path), "--simulate", home=home)
    assert run.returncode == 2 and run.stderr.splitlines() == [line]


def test_a_directory_is_not_a_workflow(home: Path, tmp_path: Path) -> None:
    line = one_located_line(cli("validate", str(tmp_path), home=home), tmp_path)
    assert line.endswith("cannot read file: it is a directory")


# ------------------------------------------------------------------------- inputs files

ECHO = ROOT / "data" / "workflows" / "echo.yaml"


def run_with_inputs(inputs: Path, home: Path) -> list[str]:
    done = cli("run", str(ECHO), "--simulate", "--inputs-file", str(inputs), home=home)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    return done.stderr.splitlines()


def test_inputs_file_that_never_ends_is_refused(home: Path) -> None:
    [error, hint] = run_with_inputs(Path("/dev/zero"), home)
    assert error == (
        f"error: /dev/zero:1:1: inputs file is larger than {MAX_INPUTS_BYTES // 2**20} MiB, "
        "the limit for inputs files"
    )
    assert hint.startswith("give inputs as")


def test_inputs_file_nested_too_deep_is_refused(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text(shapes.deep_json(100_000), encoding="utf-8")
    assert run_with_inputs(path, home)[0] == f"error: {path}: nested too deeply to be inputs"


def test_inputs_file_not_utf8_is_located(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"message": "caf\xe9"}')
    assert run_with_inputs(path, home)[0].startswith(
        f"error: {path}:1:17: inputs file is not UTF-8 text"
    )


def test_an_oversized_input_runs_and_is_cut_in_telemetry(home: Path, tmp_path: Path) -> None:
    from core.telemetry import get_store
    from core.telemetry.spool import MAX_FIELD_CHARS

    path = tmp_path / "big.json"
    path.write_text(json.dumps({"message": "x" * 200_000}), encoding="utf-8")
    done = cli("run", str(ECHO), "--simulate", "--inputs-file", str(path), home=home)
    assert done.returncode == 0, done.stderr
    [(inputs,)] = get_store(home).query("SELECT inputs FROM runs")
    assert len(inputs) < MAX_FIELD_CHARS + 100
    assert inputs.endswith("more characters]") and "truncated" in inputs


@pytest.mark.slow
@needs_prlimit
def test_a_twenty_thousand_node_chain_runs_and_profiles(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(shapes.chain(20_000), encoding="utf-8")
    done = bounded("run", str(path), "--simulate", home=home, space=RUN_ADDRESS_SPACE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "success · 20000 nodes" in done.stdout
    report = bounded("profile-report", "--format", "json", home=home, space=RUN_ADDRESS_SPACE)
    assert report.returncode == 0, report.stderr[-2000:]
    profile = json.loads(report.stdout)
    assert len(profile["nodes"]) == 20_000
    assert profile["critical_path"][:2] == ["n0", "n1"] and len(profile["critical_path"]) == 20_000

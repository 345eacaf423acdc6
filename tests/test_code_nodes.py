"""Code nodes through the engine: results, located errors, limits, telemetry columns."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core import load_workflow, run_workflow
from core.analytics.profile import profile
from core.sandbox.limits import STDOUT_KEEP_BYTES, Limits
from core.telemetry import get_store
from core.workflow.models import SandboxSettings

FLOW = textwrap.dedent(
    """
    workflow:
      name: coded
      llm: {provider: simulated, model: gpt-4o-mini, simulate: {latency_ms: 0, output_tokens: 12}}
    inputs: {n: {type: integer, default: 3}}
    nodes:
      - name: text
        prompt: "Say {inputs.n} things"
      - name: count
        type: code
        code: |
          words = nodes["text"].split()
          print("counting", len(words), "words")
          squares = [i * i for i in range(inputs["n"])]
          result = {"words": len(words), "n": inputs["n"], "squares": squares}
      - name: report
        prompt: "There are {count.words} words"
    """
).lstrip()


def test_code_node_result_flows_on_and_is_recorded(home: Path) -> None:
    result = run_workflow(load_workflow(FLOW), {"n": 4}, simulate=True, home=home)
    assert result.status == "success", result.error
    count = result.nodes["count"]
    assert count.output["n"] == 4 and count.output["squares"] == [0, 1, 4, 9]
    assert f"There are {count.output['words']} words" in result.outputs["report"]
    assert count.exit_reason == "ok" and count.stdout.startswith("counting")
    row = get_store(home).query(
        "SELECT node_type, provider, status, exit_reason, stdout, cpu_seconds > 0,"
        " peak_memory_mb > 1, cost_usd FROM node_runs WHERE run_id = ? AND node = 'count'",
        [result.run_id],
    )
    assert row == [("code", "process", "success", "ok", count.stdout, True, True, 0.0)]


def test_an_exception_is_located_in_the_block_and_the_file(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(FLOW.replace('print("counting"', 'print(1 / 0, "counting"'))
    result = run_workflow(load_workflow(path), simulate=True, home=home)
    assert result.status == "failed"
    node = result.nodes["count"]
    assert node.status == "failed" and node.exit_reason == "exception"
    assert node.error == (f"ZeroDivisionError: division by zero (line 2 of the code, {path}:12)")
    assert "report" not in result.nodes
    stored = get_store(home).query(
        "SELECT node, status FROM node_runs WHERE run_id = ? ORDER BY node", [result.run_id]
    )
    assert stored == [("count", "failed"), ("text", "success")]


@pytest.mark.parametrize(
    ("code", "reason", "message"),
    [
        ("result = {1, 2}", "result_not_json", "not JSON-serialisable"),
        ("result = 'x' * 1_100_000", "result_too_large", "the limit is 1,000,000"),
        ("x = (", "syntax_error", "line 1 of the code"),
        ("while True:\n    pass", "timeout", "timed out after 1s"),
    ],
)
def test_bad_code_ends_as_a_clear_node_error(
    home: Path, code: str, reason: str, message: str
) -> None:
    text = (
        "workflow: {name: bad}\nnodes:\n  - name: c\n    type: code\n"
        "    sandbox: {timeout: 1}\n    code: |\n" + textwrap.indent(code, "      ") + "\n"
    )
    result = run_workflow(load_workflow(text), home=home)
    node = result.nodes["c"]
    assert (result.status, node.exit_reason) == ("failed", reason)
    assert node.status == ("timeout" if reason == "timeout" else "failed")
    assert message in (node.error or "")


def test_printed_output_is_truncated_in_telemetry(home: Path) -> None:
    text = (
        "workflow: {name: noisy}\nnodes:\n  - name: c\n    type: code\n    code: |\n"
        "      for _ in range(2000):\n          print('x' * 1000)\n      result = 'done'\n"
    )
    result = run_workflow(load_workflow(text), home=home)
    node = result.nodes["c"]
    assert node.output == "done"
    assert STDOUT_KEEP_BYTES <= len(node.stdout) < STDOUT_KEEP_BYTES + 200
    assert "more characters not kept" in node.stdout


def test_presets_and_overrides() -> None:
    assert Limits.from_settings(SandboxSettings(), None) == Limits(1, 512, 30.0, False)
    high = Limits.from_settings(SandboxSettings(resource_preset="high", timeout=5), None)
    assert (high.cpus, high.memory_mb, high.timeout) == (4, 2048, 5.0)
    assert Limits.from_settings(SandboxSettings(resource_preset="max"), 12).timeout == 12
    assert Limits.from_settings(SandboxSettings(network=True), None).network


def test_profile_shows_code_nodes(home: Path) -> None:
    run_workflow(load_workflow(FLOW), simulate=True, home=home)
    found = profile(home, workflow="coded", last=1)
    code = next(n for n in found.nodes if n.name == "count")
    assert code.node_type == "code" and code.duration_ms > 0


def test_code_starts_in_an_empty_working_directory(home: Path) -> None:
    text = (
        "workflow: {name: cwd}\nnodes:\n  - name: c\n    type: code\n    code: |\n"
        "      import os\n      result = {'files': os.listdir('.'), 'env': sorted(os.environ)}\n"
    )
    output = run_workflow(load_workflow(text), home=home).nodes["c"].output
    assert output["files"] == []
    assert output["env"] == ["HOME", "LANG", "PATH"]

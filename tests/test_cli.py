"""The `configurable-agents` command as users and scripts call it: output, exit codes, signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import EXAMPLES, ROOT, cli

from core.settings import SPOOL_DIR
from core.telemetry import get_store

SLOW_SECOND_NODE = """
workflow: {name: slow_tail, llm: {provider: simulated, model: gpt-4o-mini}}
nodes:
  - {name: quick, prompt: a, llm: {simulate: {latency_ms: 0, output_tokens: 5}}}
  - {name: forever, prompt: "b {quick}", llm: {simulate: {latency_ms: 60000}}}
"""


def test_run_json_prints_outputs_and_usage(home: Path) -> None:
    done = cli(
        "run",
        str(EXAMPLES / "echo.yaml"),
        "--simulate",
        "--json",
        "--input",
        "message=hello world",
        "--tag",
        "team=qa",
        home=home,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["status"] == "success" and document["simulated"] is True
    assert "hello world" in document["outputs"]["echo"]
    assert document["input_tokens"] > 0 and document["output_tokens"] > 0
    assert document["cost_usd"] > 0
    stored = get_store(home).query(
        "SELECT status, tags, cost_usd FROM runs WHERE run_id = ?", [document["run_id"]]
    )
    assert stored == [("success", '{"team": "qa"}', pytest.approx(document["cost_usd"]))]


def test_run_text_mode_and_profiling_table(home: Path) -> None:
    done = cli(
        "run",
        str(EXAMPLES / "research_fanout.yaml"),
        "--simulate",
        "--input",
        "topic=tidal power",
        home=home,
        env={"CONFIGURABLE_AGENTS_PROFILING": "true"},
    )
    assert done.returncode == 0, done.stderr
    assert "success" in done.stdout and "simulated" in done.stdout
    assert "Node profile" in done.stdout
    for node in ("plan", "economics", "technology", "risks", "synthesis"):
        assert node in done.stdout


def test_inputs_file_and_typed_inputs(home: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"topic": "wind", "depth": 2}))
    done = cli(
        "run",
        str(EXAMPLES / "research_fanout.yaml"),
        "--simulate",
        "--json",
        "--inputs-file",
        str(inputs),
        "--input",
        "depth=4",
        home=home,
    )
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    stored = get_store(home).query("SELECT inputs FROM runs WHERE run_id = ?", [run_id])
    assert json.loads(stored[0][0]) == {"topic": "wind", "depth": 4}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "missing required input 'topic'"),
        (["--input", "topic=x", "--input", "depth=deep"], "input 'depth' must be integer"),
        (["--input", "topik=x"], "unknown input 'topik'; did you mean 'topic'"),
        (["--input", "novalue"], "--input expects KEY=VALUE"),
    ],
)
def test_bad_inputs_exit_2_naming_the_input(home: Path, arguments: list[str], message: str) -> None:
    done = cli("run", str(EXAMPLES / "research_fanout.yaml"), "--simulate", *arguments, home=home)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_inputs_file_is_located(home: Path, tmp_path: Path) -> None:
    broken = tmp_path / "inputs.json"
    broken.write_text('{"topic": "x",\n  depth: 2}')
    done = cli(
        "run", str(EXAMPLES / "research_fanout.yaml"), "--inputs-file", str(broken), home=home
    )
    assert done.returncode == 2
    assert f"{broken}:2:3: not valid JSON" in done.stderr


def test_invalid_workflow_exits_2_with_located_errors(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflow: {name: x}\nnodes:\n  - {name: a, prompt: '{nope}'}\n")
    done = cli("run", str(bad), "--simulate", home=home)
    assert done.returncode == 2
    assert f"{bad}:3:24: error: node 'a': unknown node 'nope' in {{nope}}" in done.stderr


def test_failed_run_exits_1(home: Path, tmp_path: Path) -> None:
    flaky = tmp_path / "flaky.yaml"
    flaky.write_text(
        "workflow: {name: flaky, retries: 0, llm: {provider: simulated, model: gpt-4o-mini,"
        " simulate: {latency_ms: 0, error_rate: 1.0}}}\nnodes:\n  - {name: a, prompt: x}\n"
    )
    done = cli("run", str(flaky), home=home)
    assert done.returncode == 1
    assert "node 'a' failed" in done.stderr and "Traceback" not in done.stderr


def _wait_for_node_event(home: Path, node: str, deadline: float = 60.0) -> None:
    """Block until a running process has spooled the given node's event."""
    marker = f'"node":"{node}"'
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for segment in (home / SPOOL_DIR).glob("*/*.jsonl"):
            if marker in segment.read_text(errors="replace"):
                return
        time.sleep(0.05)
    raise AssertionError(f"node {node} never finished")


def _start_slow_run(home: Path, tmp_path: Path) -> subprocess.Popen:
    path = tmp_path / "slow.yaml"
    path.write_text(SLOW_SECOND_NODE)
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "run", str(path)],
        cwd=ROOT,
        env={**os.environ, "CONFIGURABLE_AGENTS_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_node_event(home, "quick")
    return process


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_ctrl_c_sigterm_and_sighup_cancel_cleanly_and_keep_finished_nodes(
    home: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    process = _start_slow_run(home, tmp_path)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "cancelled" in stderr and "Traceback" not in stderr
    store = get_store(home)
    assert store.query("SELECT status FROM runs") == [("cancelled",)]
    assert sorted(store.query("SELECT node, status FROM node_runs")) == [
        ("forever", "cancelled"),
        ("quick", "success"),
    ]


def test_a_killed_run_is_recovered_by_the_next_process(home: Path, tmp_path: Path) -> None:
    process = _start_slow_run(home, tmp_path)
    process.kill()
    process.wait(timeout=30)
    store = get_store(home)
    assert store.flush()
    assert store.query("SELECT node, status FROM node_runs") == [("quick", "success")]
    ((status, error),) = store.query("SELECT status, error FROM runs")
    assert status == "failed" and "interrupted" in error

"""`batch` on the local executor: every row once, in dataset order, in the output file and in
telemetry; failed rows recorded and not retried; Ctrl-C then `--resume` finishing exactly the
missing rows; bad input refused with a located error; chunks recorded once per key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from helpers import PROVIDER_KEYS, ROOT, TRIO_WORKFLOW, quiz_experiment

from core.cli import main
from core.settings import HOME_VARIABLE
from core.telemetry import get_store
from core.telemetry.spool import encode

# A code node that fails on one row: the run fails, the row is recorded failed.
FAILING = """\
workflow:
  name: picky
inputs:
  topic: {type: string, required: true}
nodes:
  - name: check
    type: code
    code: |
      if inputs["topic"] == "boom":
          raise ValueError("no booms")
      result = inputs["topic"].upper()
"""


def _files(folder: Path, rows: int, latency_ms: int = 0, workflow: str = TRIO_WORKFLOW) -> tuple:
    wf = folder / "wf.yaml"
    wf.write_text(workflow.replace("LATENCY", str(latency_ms)))
    dataset = folder / "rows.jsonl"
    dataset.write_text("".join(json.dumps({"topic": f"t{n}"}) + "\n" for n in range(rows)))
    return str(wf), str(dataset)


def _batch(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`configurable-agents batch ARGS...` in this process: (exit code, stdout, stderr)."""
    code = main(["batch", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _output(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _runs_per_row(home: Path, status: str = "success") -> dict[int, int]:
    found = get_store(home).query(
        "SELECT CAST(json_extract_string(tags, '$.row') AS INTEGER), count(*) FROM runs"
        " WHERE status = ? GROUP BY ALL",
        [status],
    )
    return dict(found)


def test_batch_writes_every_row_in_dataset_order_with_its_run(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf, dataset = _files(tmp_path, rows=12)
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = _batch(
        capsys, wf, "--dataset", dataset, "--output", str(out), "--concurrency", "4"
    )
    assert code == 0, stderr
    assert "finished: 12 of 12 rows" in stdout and "simulated, nothing paid" in stdout
    rows = _output(out)
    assert [r["row"] for r in rows] == list(range(1, 13))
    assert {r["status"] for r in rows} == {"success"}
    assert all(set(r["outputs"]) == {"summary"} and r["cost_usd"] > 0 for r in rows)
    store = get_store(home)
    runs = dict(store.query("SELECT run_id, cost_usd FROM runs"))
    assert {r["run_id"]: r["cost_usd"] for r in rows} == pytest.approx(runs)
    assert _runs_per_row(home) == dict.fromkeys(range(1, 13), 1)
    assert store.query("SELECT count(*) FROM node_runs") == [(36,)]
    assert store.query("SELECT status, rows, executor FROM batches") == [("finished", 12, "local")]


def test_parquet_output_holds_the_same_rows(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf, dataset = _files(tmp_path, rows=5)
    out = tmp_path / "out.parquet"
    code, stdout, stderr = _batch(capsys, wf, "--dataset", dataset, "-o", str(out), "--json")
    assert code == 0, stderr
    assert json.loads(stdout)["rows_done"] == 5
    found = duckdb.sql(f"SELECT row, status, run_id FROM '{out}'").fetchall()
    assert [r[0] for r in found] == [1, 2, 3, 4, 5] and all(r[2] for r in found)


def test_a_failed_row_is_recorded_failed_and_not_retried(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf = tmp_path / "picky.yaml"
    wf.write_text(FAILING)
    dataset = tmp_path / "rows.csv"
    dataset.write_text("topic\nfine\nboom\nalso fine\n")
    out = tmp_path / "out.jsonl"
    code, stdout, stderr = _batch(capsys, str(wf), "--dataset", str(dataset), "-o", str(out))
    assert code == 0, stderr
    assert "3 of 3 rows, 1 failed" in stdout
    rows = _output(out)
    assert [(r["row"], r["status"]) for r in rows] == [
        (1, "success"),
        (2, "failed"),
        (3, "success"),
    ]
    assert "no booms" in rows[1]["error"]
    assert rows[0]["outputs"] == {"check": "FINE"}
    assert _runs_per_row(home, "failed") == {2: 1}


def _wait_for_rows(home: Path, process: subprocess.Popen, count: int) -> None:
    """Until `count` row lines sit in the driver's spool (it is mid-job then)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        lines = sum(
            path.read_bytes().count(b'"event":"batch_row"')
            for path in (home / "spool").glob("*/*.jsonl")
        )
        if lines >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the batch recorded no row")


def test_ctrl_c_cancels_and_resume_runs_exactly_the_missing_rows(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf, dataset = _files(tmp_path, rows=24, latency_ms=150)
    out = tmp_path / "out.jsonl"
    args = [wf, "--dataset", dataset, "-o", str(out), "--concurrency", "2"]
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "batch", *args],
        cwd=ROOT,
        env={**env, HOME_VARIABLE: str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_rows(home, process, 2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    batch_id = stderr.split("--resume ")[1].split()[0]
    assert "cancelled: the rows finished so far are kept" in stderr
    store = get_store(home)
    assert store.query("SELECT status FROM batches") == [("cancelled",)]
    first = len(_output(out))
    assert 2 <= first < 24

    code, _, stderr = _batch(capsys, *args, "--resume", batch_id)
    assert code == 0, stderr
    assert f"{24 - first:,} to run" in stderr
    rows = _output(out)
    assert [r["row"] for r in rows] == list(range(1, 25))
    assert _runs_per_row(home) == dict.fromkeys(range(1, 25), 1)
    assert store.query("SELECT count(*), count(DISTINCT row) FROM batch_rows") == [(24, 24)]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--output", "out.txt"], "must end in .jsonl or .parquet"),
        (["--concurrency", "0"], "--concurrency must be at least 1"),
        (["--workers", "2"], "need --executor ray"),
        (["--resume", "nope-123"], "no batch 'nope-123'"),
    ],
)
def test_bad_arguments_are_one_clear_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    wf, dataset = _files(tmp_path, rows=2)
    code, _, stderr = _batch(capsys, wf, "--dataset", dataset, *extra)
    assert code == 2
    assert message in stderr and "Traceback" not in stderr


def test_a_bad_dataset_row_is_located_and_nothing_runs(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf, _ = _files(tmp_path, rows=1)
    dataset = tmp_path / "bad.jsonl"
    dataset.write_text('{"topic": "fine"}\n{"other": 1}\nnot json\n')
    code, _, stderr = _batch(capsys, wf, "--dataset", str(dataset))
    assert code == 2
    assert f"{dataset}:2:1: error: row 2:" in stderr
    assert f"{dataset}:3:" in stderr and "not valid JSON" in stderr
    assert get_store(home).query("SELECT count(*) FROM runs") == [(0,)]


def test_executor_ray_without_ray_says_how_to_install_it(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wf, dataset = _files(tmp_path, rows=2)
    # Ray is installed here: imports of it fail, as on a machine without it.
    monkeypatch.setitem(sys.modules, "ray", None)
    code, _, stderr = _batch(capsys, wf, "--dataset", dataset, "--executor", "ray")
    assert code == 2
    assert "pip install 'configurable-agents[ray]'" in stderr and "Traceback" not in stderr
    assert get_store(home).query("SELECT count(*) FROM batches") == [(0,)]


def test_a_segment_is_recorded_once_per_key(home: Path) -> None:
    store = get_store(home)
    run = {"run_id": "r1", "workflow": "w", "status": "success", "cost_usd": 0.5}
    node = {"run_id": "r1", "node": "n", "node_type": "llm", "cost_usd": 0.5, "attempts": 1}
    lines = encode({"event": "run_finished", **run}) + encode({"event": "node", **node})
    assert store.record_segments([("job/attempt/0", lines)])
    # The chunk came back again, with another one.
    again = [("job/attempt/0", lines), ("job/attempt/1", lines.replace(b"r1", b"r2"))]
    assert store.record_segments(again)
    assert store.query("SELECT run_id, cost_usd FROM runs ORDER BY 1") == [
        ("r1", 0.5),
        ("r2", 0.5),
    ]
    assert store.query("SELECT count(*), sum(cost_usd) FROM node_runs") == [(2, 1.0)]
    assert store.query("SELECT sum(node_rows) FROM node_daily") == [(2,)]


def test_experiment_run_on_ray_without_ray_says_how_to_install_it(
    home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = quiz_experiment(tmp_path, repeats=1, rows=2)
    assert main(["experiment", "run", str(path), "--simulate", "--workers", "2"]) == 2
    assert "need --executor ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["experiment", "run", str(path), "--simulate", "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'configurable-agents[ray]'" in err and "Traceback" not in err
    assert get_store(home).query("SELECT count(*) FROM experiments") == [(0,)]

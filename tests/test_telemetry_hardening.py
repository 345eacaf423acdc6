"""Telemetry that no input can stop: bad spool entries are quarantined and never block the
rest, oversized fields are cut, a busy or damaged database never loses events or hangs a
command, and many processes running workflows at once lose no row, round after round."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from helpers import ROOT, cli

from core.settings import DB_FILE
from core.telemetry import TelemetryBusy, TelemetryUnavailable, get_store, quarantine, spool
from core.telemetry.spool import MAX_FIELD_CHARS

WORKER = Path(__file__).resolve().parent / "telemetry_worker.py"
ECHO = ROOT / "data" / "workflows" / "echo.yaml"


def worker(*args: object) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen) -> None:
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()


def event(kind: str, run_id: str, **values: object) -> bytes:
    return orjson.dumps({"event": kind, "run_id": run_id, **values}) + b"\n"


def dead_writer(home: Path, name: str, *lines: bytes) -> Path:
    """A writer directory as a dead process leaves it: segments, an unlocked owner.lock."""
    folder = home / "spool" / name
    folder.mkdir(parents=True)
    (folder / spool.OWNER_LOCK).touch()
    (folder / "000001.jsonl").write_bytes(b"".join(lines))
    return folder


def node_count(home: Path) -> int:
    return get_store(home).query("SELECT count(*) FROM node_runs")[0][0]


def quarantined(home: Path) -> list[str]:
    folder = home / "spool" / quarantine.QUARANTINE_DIR
    return (
        sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        if folder.exists()
        else []
    )


@pytest.mark.parametrize("kind", ["directory", "dangling symlink", "symlink to a file"])
def test_an_entry_that_is_no_file_is_quarantined_and_the_rest_loads(
    home: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    folder = dead_writer(home, "gone-1", event("node", "r1", node="a"))
    bad = folder / "000002.jsonl"
    if kind == "directory":
        bad.mkdir()
    elif kind == "dangling symlink":
        bad.symlink_to(home / "nowhere")
    else:
        (home / "elsewhere.jsonl").write_bytes(event("node", "r9", node="z"))
        bad.symlink_to(home / "elsewhere.jsonl")
    assert node_count(home) == 1  # the good segment loaded; nothing read through the link
    assert quarantined(home) == ["gone-1--000002.jsonl"]
    assert not folder.exists()
    assert "moved to" in caplog.text and "other events load as usual" in caplog.text
    # Every later ingest, in any process, goes on as usual.
    dead_writer(home, "gone-2", event("node", "r2", node="b"))
    assert node_count(home) == 2


def test_a_line_too_long_is_quarantined_and_its_neighbours_load(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quarantine, "MAX_LINE_BYTES", 4096)
    dead_writer(
        home,
        "gone-1",
        event("node", "r1", node="a"),
        event("node", "r1", node="huge", error="x" * 10_000),
        b"not json at all\n",
        event("node", "r1", node="b"),
    )
    assert get_store(home).query("SELECT node FROM node_runs ORDER BY node") == [("a",), ("b",)]
    [name] = quarantined(home)
    kept = (home / "spool" / quarantine.QUARANTINE_DIR / name).read_bytes().splitlines()
    assert len(kept) == 2 and kept[1] == b"not json at all"


def test_a_segment_duckdb_refuses_is_quarantined_whole(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.telemetry import tables

    # DuckDB fails a whole file holding a line over twice its object buffer (at least
    # 16 MiB), ignore_errors or not; screening lines is turned off to get that far.
    monkeypatch.setattr(tables, "_MAX_OBJECT_BYTES", 1)
    monkeypatch.setattr(quarantine, "MAX_LINE_BYTES", 2**30)
    dead_writer(home, "bad", event("node", "r1", node="x", error="y" * 40_000_000))
    dead_writer(home, "good", event("node", "r2", node="a"))
    assert get_store(home).query("SELECT run_id FROM node_runs") == [("r2",)]
    assert quarantined(home) == ["bad--000001.jsonl"]


def test_a_field_over_the_limit_is_cut_with_a_marker_before_the_spool() -> None:
    line = spool.encode({"event": "run_started", "inputs": "x" * 200_000, "source": "y" * 100_000})
    decoded = orjson.loads(line)
    assert decoded["inputs"] == "x" * MAX_FIELD_CHARS + "… [truncated: 134,464 more characters]"
    assert decoded["source"] == "y" * 100_000  # bounded by the workflow file limit instead
    small = {"event": "node", "error": "short"}
    assert spool.encode(small) == orjson.dumps(small) + b"\n"


def test_the_store_waits_for_the_lock_file_another_process_holds(home: Path) -> None:
    store = get_store(home)
    store.query("SELECT 1")
    holder = worker("lockfile", home, 30)
    wait_ready(holder)
    try:
        store.node_finished({"run_id": "r1", "node": "a"})
        assert store.flush(timeout=0.5) is False, "a connection was made without the lock file"
        with pytest.raises(TelemetryBusy), store.connect():
            pass
    finally:
        holder.kill()
        holder.wait()
    assert store.flush()
    assert node_count(home) == 1


@pytest.mark.parametrize("damage", ["empty", "garbage", "truncated"])
def test_a_damaged_database_loses_nothing_and_prints_no_traceback(home: Path, damage: str) -> None:
    done = cli("run", str(ECHO), "--simulate", "--input", "message=one", home=home)
    assert done.returncode == 0, done.stderr
    database = home / DB_FILE
    if damage == "empty":
        database.write_bytes(b"")
    elif damage == "garbage":
        database.write_bytes(b"not a database" * 1000)
    else:
        database.write_bytes(database.read_bytes()[: database.stat().st_size // 2])
    (home / (DB_FILE + ".wal")).unlink(missing_ok=True)

    done = cli("run", str(ECHO), "--simulate", "--input", "message=two", home=home)
    assert done.returncode == 0, done.stderr  # the run itself succeeded
    assert "Traceback" not in done.stderr
    telemetry_lines = [line for line in done.stderr.splitlines() if "telemetry" in line]
    assert len(telemetry_lines) == 2, done.stderr  # what is wrong, and where the events wait
    assert "move it aside" in telemetry_lines[0]
    report = cli("cost-report", home=home)
    assert "Traceback" not in report.stderr
    if damage != "truncated":  # half a file may still answer this query
        assert report.returncode == 1 and len(report.stderr.strip().splitlines()) == 1

    # Moved aside, the next command starts a new database with the waiting events.
    database.rename(home / "telemetry.damaged")
    assert cli("cost-report", home=home).returncode == 0
    runs = get_store(home).query("SELECT count(*) FROM runs WHERE status = 'success'")
    assert runs == [(1,)]


def test_a_busy_database_costs_a_run_a_second_or_two_and_one_note(home: Path) -> None:
    get_store(home).query("SELECT 1")
    holder = worker("hold", home, 30)
    wait_ready(holder)
    try:
        done = cli("run", str(ECHO), "--simulate", "--input", "message=hi", home=home)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 0 and "Traceback" not in done.stderr
    notes = [line for line in done.stderr.splitlines() if line.startswith("note: telemetry")]
    assert len(notes) == 1 and "wait in" in notes[0]
    assert get_store(home).query("SELECT count(*) FROM runs") == [(1,)]


def test_a_read_only_data_folder_is_refused_before_the_run(home: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only folder needs root")
    assert cli("run", str(ECHO), "--simulate", "--input", "message=hi", home=home).returncode == 0
    if subprocess.run(["mount", "--bind", "-o", "ro", str(home), str(home)]).returncode:
        pytest.skip("this host cannot bind-mount")
    try:
        run = cli("run", str(ECHO), "--simulate", "--input", "message=hi", home=home)
        report = cli("cost-report", "--format", "json", home=home)
    finally:
        subprocess.run(["umount", str(home)], check=True)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert run.stderr.strip().endswith("set CONFIGURABLE_AGENTS_HOME to a writable folder")
    assert report.returncode == 0, report.stderr  # reading still works


def test_a_full_disk_ends_in_lines_not_tracebacks(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    home = tmp_path / "full"
    home.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "full", str(home)]).returncode:
        pytest.skip("this host cannot mount a tmpfs")
    try:
        assert (
            cli("run", str(ECHO), "--simulate", "--input", "message=a", home=home).returncode == 0
        )
        filler = home / "filler"
        with open(filler, "wb") as handle, pytest.raises(OSError):
            while True:
                handle.write(b"x" * 65536)
                handle.flush()
        done = cli("run", str(ECHO), "--simulate", "--input", "message=b", home=home)
        report = cli("cost-report", home=home)
    finally:
        subprocess.run(["umount", str(home)], check=True)
    for finished in (done, report):
        assert "Traceback" not in finished.stderr, finished.stderr
        lines = [line for line in finished.stderr.splitlines() if line.strip()]
        assert len(lines) <= 2, finished.stderr
    assert done.returncode == 0, done.stderr  # the run itself succeeded


def test_telemetry_unavailable_says_what_to_do(home: Path) -> None:
    (home / DB_FILE).write_bytes(b"garbage")
    with pytest.raises(TelemetryUnavailable, match="move it aside"):
        get_store(home).query("SELECT 1")


@pytest.mark.slow
def test_many_processes_running_workflows_lose_no_row_round_after_round(tmp_path: Path) -> None:
    """The reported loss: a run's events gone from the database and the spool alike, once in
    a dozen rounds of 8 x 150 runs. Each round here counts every run and node row."""
    processes, runs, nodes, rounds = 4, 50, 5, 4
    for number in range(rounds):
        home = tmp_path / f"round{number}"
        home.mkdir()
        procs = [worker("engine", home, runs) for _ in range(processes)]
        for proc in procs:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err
            assert "Traceback" not in err, err
        store = get_store(home)
        assert store.query(
            "SELECT count(*), count(DISTINCT run_id), count_if(status = 'success'),"
            " count_if(writer_id IS NULL) FROM runs"
        ) == [(processes * runs, processes * runs, processes * runs, 0)], f"round {number}"
        assert store.query("SELECT count(*), count(DISTINCT (run_id, node)) FROM node_runs") == [
            (processes * runs * nodes, processes * runs * nodes)
        ], f"round {number}"
        assert spool.count_segments(store.spool) == 0

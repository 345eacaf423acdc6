"""The telemetry store against real DuckDB files and real processes: locks, kills, forks."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from core import telemetry
from core.settings import DB_FILE
from core.telemetry import INTERRUPTED_ERROR, TelemetryStore, get_store
from core.telemetry.store import is_lock_error

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "telemetry_worker.py"


def worker(*args: object) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(WORKER), *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()


def segments(store: TelemetryStore) -> list[Path]:
    """Segments holding events (the empty one opened ahead for the next events is not)."""
    return [p for p in sorted(store.spool.glob("*/*.jsonl")) if p.stat().st_size]


def started(run_id: str, **extra: object) -> dict:
    return {"run_id": run_id, "workflow": "wf", "started_at": "2024-05-01T12:00:00", **extra}


def node(run_id: str, name: str, **extra: object) -> dict:
    return {"run_id": run_id, "node": name, "node_type": "code", "status": "success", **extra}


def test_events_land_with_exact_values(home: Path) -> None:
    store = get_store(home)
    store.run_started(
        started(
            "r1",
            workflow_hash="abc123",
            status="running",
            simulated=True,
            experiment="exp",
            variant="b",
            tags='{"team": "x"}',
            inputs='{"topic": "solar"}',
        )
    )
    store.node_finished(
        {
            "run_id": "r1",
            "node": "summarize",
            "node_type": "llm",
            "provider": "openai",
            "model": "gpt-4o-mini",
            "started_at": "2024-05-01T12:00:00.250000",
            "finished_at": "2024-05-01T12:00:01.750000",
            "duration_ms": 1500.0,
            "input_tokens": 1234,
            "output_tokens": 321,
            "cost_usd": 0.000123,
            "cache_hit": False,
            "saved_cost_usd": 0.0,
            "attempts": 2,
            "status": "success",
            "stdout": "line 1\nline 2 — ünïcode",
        }
    )
    store.node_finished(node("r1", "unpriced", node_type="llm", cost_usd=None))
    assert store.flush()

    assert store.query(
        "SELECT workflow, workflow_hash, started_at, status, simulated, experiment, variant,"
        " tags, inputs, writer_id, pid, finished_at, error FROM runs"
    ) == [
        (
            "wf",
            "abc123",
            dt.datetime(2024, 5, 1, 12),
            "running",
            True,
            "exp",
            "b",
            '{"team": "x"}',
            '{"topic": "solar"}',
            store.writer_id,
            os.getpid(),
            None,
            None,
        )
    ]
    rows = store.query(
        "SELECT node, node_type, provider, model, started_at, finished_at, duration_ms,"
        " input_tokens, output_tokens, cost_usd, cache_hit, saved_cost_usd, attempts, status,"
        " stdout, error, request_hash FROM node_runs ORDER BY node"
    )
    assert rows == [
        (
            "summarize",
            "llm",
            "openai",
            "gpt-4o-mini",
            dt.datetime(2024, 5, 1, 12, 0, 0, 250000),
            dt.datetime(2024, 5, 1, 12, 0, 1, 750000),
            1500.0,
            1234,
            321,
            0.000123,
            False,
            0.0,
            2,
            "success",
            "line 1\nline 2 — ünïcode",
            None,
            None,
        ),
        ("unpriced", "llm", *[None] * 8, *[None] * 3, "success", None, None, None),
    ]
    # Unknown price stays unknown: never summed away as zero.
    assert store.query("SELECT count(*) FROM node_runs WHERE cost_usd IS NULL") == [(1,)]
    assert segments(store) == []


def test_times_are_stored_as_naive_utc(home: Path) -> None:
    store = get_store(home)
    paris = dt.timezone(dt.timedelta(hours=2))
    store.node_finished(node("r", "aware", started_at=dt.datetime(2024, 5, 1, 14, tzinfo=paris)))
    store.node_finished(node("r", "offset", started_at="2024-05-01T14:00:00+02:00"))
    store.node_finished(node("r", "naive", started_at=dt.datetime(2024, 5, 1, 12)))
    assert store.flush()
    assert store.query("SELECT DISTINCT started_at FROM node_runs") == [
        (dt.datetime(2024, 5, 1, 12),)
    ]


def test_badly_typed_value_becomes_null_not_a_lost_event(home: Path) -> None:
    store = get_store(home)
    store.node_finished(node("r", "n", attempts="several", input_tokens="12"))
    assert store.flush()
    assert store.query("SELECT node, attempts, input_tokens FROM node_runs") == [("n", None, 12)]


def test_start_and_finish_in_separate_flushes_make_one_final_row(home: Path) -> None:
    store = get_store(home)
    store.run_started(started("r1", status="running", tags='{"a": 1}'))
    assert store.flush()
    store.run_finished(
        {
            "run_id": "r1",
            "status": "success",
            "finished_at": "2024-05-01T12:00:02",
            "duration_ms": 2000.0,
            "input_tokens": 30,
            "output_tokens": 7,
            "cost_usd": 0.25,
            "node_count": 3,
        }
    )
    assert store.flush()
    assert store.query(
        "SELECT run_id, status, started_at, finished_at, duration_ms, input_tokens,"
        " output_tokens, cost_usd, node_count, tags, writer_id FROM runs"
    ) == [
        (
            "r1",
            "success",
            dt.datetime(2024, 5, 1, 12),
            dt.datetime(2024, 5, 1, 12, 0, 2),
            2000.0,
            30,
            7,
            0.25,
            3,
            '{"a": 1}',
            store.writer_id,
        )
    ]


def test_start_and_finish_in_one_flush(home: Path) -> None:
    store = get_store(home)
    store.run_started(started("r1", status="running"))
    store.run_finished({"run_id": "r1", "status": "failed", "error": "boom"})
    store.run_finished({"run_id": "r2", "status": "success"})  # its start was never recorded
    assert store.flush()
    assert store.query("SELECT run_id, status, error, workflow FROM runs ORDER BY run_id") == [
        ("r1", "failed", "boom", "wf"),
        ("r2", "success", None, None),
    ]


def test_crash_between_commit_and_delete_duplicates_nothing(home: Path, tmp_path: Path) -> None:
    store = get_store(home)
    store.run_started(started("r1"))
    store.node_finished(node("r1", "a"))
    [segment] = segments(store)
    saved = tmp_path / "saved.jsonl"
    shutil.copy(segment, saved)
    assert store.flush()
    assert not segment.exists()
    # The rows were committed but, as after a crash, the file is still there.
    shutil.copy(saved, segment)
    assert store.flush()
    assert not segment.exists()
    assert store.query("SELECT count(*) FROM runs") == [(1,)]
    assert store.query("SELECT count(*) FROM node_runs") == [(1,)]


def test_ingest_opens_the_next_segment_so_the_engine_never_creates_one(home: Path) -> None:
    store = get_store(home)
    store.node_finished(node("r1", "a"))
    assert store.flush()
    [ahead] = store.spool.glob("*/*.jsonl")
    assert ahead.stat().st_size == 0
    store.node_finished(node("r1", "b"))
    assert segments(store) == [ahead]
    assert store.flush()
    assert not ahead.exists()
    assert store.query("SELECT node FROM node_runs ORDER BY node") == [("a",), ("b",)]


def test_truncated_last_line_is_skipped(home: Path) -> None:
    store = get_store(home)
    store.node_finished(node("r1", "a"))
    store.node_finished(node("r1", "b"))
    [segment] = segments(store)
    with segment.open("ab") as f:
        f.write(b'{"event":"node","run_id":"r1","node":"c","sta')
    assert store.flush()
    assert store.query("SELECT node FROM node_runs ORDER BY node") == [("a",), ("b",)]
    assert segments(store) == []


def test_reader_creates_the_database(home: Path) -> None:
    store = get_store(home)
    assert store.query("SELECT count(*) FROM runs") == [(0,)]
    assert store.query_df("SELECT * FROM node_runs").columns.tolist() == list(
        telemetry.NODE_RUNS_COLUMNS
    )
    assert store.db_path == home / DB_FILE
    assert not store.spool.exists()  # a reader leaves no writer directory behind


def test_older_database_gains_new_columns(home: Path) -> None:
    con = duckdb.connect(str(home / DB_FILE))
    con.execute("CREATE TABLE runs (run_id VARCHAR, status VARCHAR)")
    con.execute("INSERT INTO runs VALUES ('old', 'success')")
    con.close()
    store = get_store(home)
    store.run_started(started("new", status="running"))
    assert store.flush()
    assert store.query("SELECT run_id, status, workflow FROM runs ORDER BY run_id") == [
        ("new", "running", "wf"),
        ("old", "success", None),
    ]
    columns = store.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'"
    )
    assert [c for (c,) in columns] == ["run_id", "status"] + [
        c for c in telemetry.RUNS_COLUMNS if c not in ("run_id", "status")
    ]


def test_get_store_is_one_per_folder_and_data_version_tracks_changes(home: Path) -> None:
    store = get_store(home)
    assert get_store(home / "." / "sub" / "..") is store
    assert get_store(home.parent) is not store
    before = store.data_version()
    store.node_finished(node("r1", "a"))
    pending = store.data_version()
    assert pending != before
    assert store.flush()
    assert store.data_version() not in (before, pending)


def test_flush_soon_ingests_in_one_background_thread(home: Path) -> None:
    store = get_store(home)
    store.flush_soon()
    thread = store._thread
    for i in range(50):
        store.node_finished(node("r1", f"n{i}"))
        store.flush_soon()
    assert store._thread is thread
    assert thread in threading.enumerate()
    deadline = time.monotonic() + 10
    while segments(store) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert segments(store) == []
    assert store.query("SELECT count(*) FROM node_runs") == [(50,)]


def test_many_processes_with_a_reader_lose_nothing(home: Path) -> None:
    processes, runs, nodes = 4, 200, 5
    procs = [worker("runs", home, f"p{i}", runs, nodes, 25) for i in range(processes)]
    store = get_store(home)
    # A reader in this process keeps querying, each time holding its connection a moment,
    # which blocks the writers for that long.
    while any(p.poll() is None for p in procs):
        with store.connect() as con:
            con.execute("SELECT count(*) FROM node_runs").fetchall()
            time.sleep(0.02)
        time.sleep(0.02)
    for p in procs:
        _, err = p.communicate()
        assert p.returncode == 0, err
        assert err == ""
    assert store.query("SELECT count(*), count(DISTINCT run_id) FROM runs") == [
        (processes * runs, processes * runs)
    ]
    assert store.query("SELECT status, count(*) FROM runs GROUP BY status") == [
        ("success", processes * runs)
    ]
    assert store.query("SELECT count(*), count(DISTINCT (run_id, node)) FROM node_runs") == [
        (processes * runs * nodes, processes * runs * nodes)
    ]
    assert list(store.spool.iterdir()) == []


def test_killed_process_finished_nodes_appear_and_its_run_fails(home: Path) -> None:
    proc = worker("hang", home, "doomed", 3)
    wait_ready(proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = get_store(home)
    assert store.query("SELECT node FROM node_runs ORDER BY node") == [("n0",), ("n1",), ("n2",)]
    [(status, error, started_at, finished_at, duration_ms, *totals)] = store.query(
        "SELECT status, error, started_at, finished_at, duration_ms, input_tokens,"
        " output_tokens, cost_usd, unpriced_calls, cache_hits FROM runs WHERE run_id = 'doomed'"
    )
    assert (status, error) == ("failed", INTERRUPTED_ERROR)
    # Totals of what it finished, by the engine's rules: the last node had no known price.
    assert totals == [30, 15, pytest.approx(0.002), 1, 0]
    # It ended no earlier than the last node it was seen to finish.
    last = store.query("SELECT max(finished_at) FROM node_runs")[0][0]
    assert finished_at == last
    assert duration_ms == (last - started_at) / dt.timedelta(milliseconds=1)
    assert list(store.spool.iterdir()) == []


def test_run_left_open_at_normal_exit_is_marked_interrupted(home: Path) -> None:
    proc = worker("unfinished", home, "abandoned")
    assert proc.wait() == 0, proc.stderr.read()
    store = get_store(home)
    assert store.query("SELECT status, error FROM runs") == [("failed", INTERRUPTED_ERROR)]
    assert list(store.spool.iterdir()) == []


def test_database_locked_past_the_budget_keeps_events_for_later(home: Path) -> None:
    store = get_store(home)
    store.query("SELECT 1")  # create the database before someone else holds it
    holder = worker("hold", home, 2)
    wait_ready(holder)
    # What duckdb raises when another process has the file, and that we recognise it.
    with pytest.raises(duckdb.Error) as excinfo:
        duckdb.connect(str(store.db_path))
    assert is_lock_error(excinfo.value)

    store.run_started(started("r1"))
    store.node_finished(node("r1", "a"))
    assert store.flush(timeout=0.3) is False
    assert len(segments(store)) == 1
    assert holder.wait() == 0
    assert store.flush()
    assert store.query("SELECT count(*) FROM node_runs") == [(1,)]
    assert store.query("SELECT count(*) FROM runs") == [(1,)]


def test_forked_child_writes_its_own_spool(home: Path) -> None:
    store = get_store(home)
    store.node_finished(node("parent", "a"))
    pid = os.fork()
    if pid == 0:  # child: record a run, then vanish without any exit handler
        try:
            child = get_store(home)
            child.run_started(started("child-run", status="running", pid=os.getpid()))
            child.node_finished(node("child-run", "b"))
            child.run_finished({"run_id": "child-run", "status": "success"})
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    assert store.flush()
    assert store.query("SELECT run_id, node FROM node_runs ORDER BY node") == [
        ("parent", "a"),
        ("child-run", "b"),
    ]
    [(status, writer)] = store.query("SELECT status, writer_id FROM runs")
    assert status == "success"
    assert writer != store.writer_id


def test_append_cost_and_ingest_time(home: Path) -> None:
    store = get_store(home)
    row = {
        "run_id": "0123456789abcdef",
        "node": "summarize",
        "node_type": "llm",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "started_at": "2024-05-01T12:00:00.123456",
        "finished_at": "2024-05-01T12:00:01.123456",
        "duration_ms": 1000.0,
        "input_tokens": 1234,
        "output_tokens": 321,
        "cost_usd": 0.000123,
        "cache_hit": False,
        "saved_cost_usd": None,
        "attempts": 1,
        "status": "success",
        "error": None,
        "workflow": "research_fanout",
        "workflow_hash": "9f86d081884c7d65",
        "simulated": False,
    }
    count = 10_000
    begun = time.perf_counter()
    for _ in range(count):
        store.node_finished(row)
    append_s = time.perf_counter() - begun
    begun = time.perf_counter()
    assert store.flush()
    ingest_s = time.perf_counter() - begun
    print(f"\nappend: {append_s / count * 1e6:.1f} µs/event; ingest of {count}: {ingest_s:.3f} s")
    assert store.query("SELECT count(*) FROM node_runs") == [(count,)]

"""The daily rollup of node rows (`node_daily`): kept in step with node_runs by every write
path, built for older databases, rebuilt after writes that went around the store, and read
by the reports with figures exactly those of node_runs.

Costs here are binary fractions (0.5, 0.25, ...) so sums in any order compare exactly.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from helpers import D1, make_node, make_run, write_rows

from core.analytics import cost
from core.analytics.check import check
from core.analytics.cost import cost_report
from core.analytics.filters import Where, node_days
from core.analytics.reprice import reprice
from core.analytics.window import utc_now, window
from core.settings import DB_FILE
from core.telemetry import get_store
from core.telemetry.tables import ROLLUP_COLUMNS, rollup_current, rollup_select

DAY = datetime(2026, 3, 10)


def stored(home: Path) -> list[tuple]:
    """node_daily as it is on disk, read around the store (which would recount a stale one)."""
    with duckdb.connect(str(home / DB_FILE), read_only=True) as con:
        return con.execute("SELECT * FROM node_daily ORDER BY ALL").fetchall()


def recount(home: Path) -> list[tuple]:
    """What node_daily should hold: node_runs counted from scratch."""
    with duckdb.connect(str(home / DB_FILE), read_only=True) as con:
        return con.execute(f"SELECT * FROM ({rollup_select('node_runs')}) ORDER BY ALL").fetchall()


def event(node: str, at: datetime | None, **extra: Any) -> dict[str, Any]:
    row = {
        "run_id": "r1",
        "node": node,
        "node_type": "llm",
        "provider": "openai",
        "model": "gpt-4o",
        "started_at": at.isoformat() if at else None,
        "duration_ms": 100.0,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.5,
        "cache_hit": False,
        "cache_enabled": False,
        "attempts": 1,
        "status": "success",
        "workflow": "wf",
        "simulated": False,
        "request_hash": "h1",
    }
    return row | extra


def test_spool_ingest_adds_each_batch_to_the_rollup(home: Path) -> None:
    store = get_store(home)
    batches = [
        [event("a", DAY), event("a", DAY + timedelta(hours=1), cost_usd=0.25)],
        [
            event("a", DAY + timedelta(hours=2)),  # the same keys again: added, not replaced
            event("a", DAY + timedelta(days=1), simulated=True),
            event("b", DAY, cost_usd=None, status="failed"),
            event("b", DAY, cache_hit=True, attempts=0, cost_usd=0.0, saved_cost_usd=0.5),
            event("c", DAY, node_type="code", provider=None, model=None, cost_usd=None),
            event("d", None),  # no start time: counted under a day no window reaches
        ],
    ]
    for batch in batches:
        for row in batch:
            store.node_finished(row)
        assert store.flush()
        assert stored(home) == recount(home)
    totals = store.query(
        "SELECT sum(node_rows), sum(cost_usd), sum(node_rows) FILTER (WHERE called),"
        " sum(saved_cost_usd) FROM node_daily"
    )
    assert totals == [(8, 2.25, 6, 0.5)]
    [code] = store.query("SELECT provider, model, called FROM node_daily WHERE node = 'c'")
    assert code == ("", "", False)


def test_bulk_load_adds_its_rows_in_the_same_transaction(home: Path) -> None:
    store = get_store(home)
    rows = [
        {"run_id": "r1", "node": "a", "node_type": "llm", "started_at": DAY, "cost_usd": 0.5},
        {"run_id": "r1", "node": "a", "node_type": "llm", "started_at": DAY, "cost_usd": None},
        {"run_id": "r2", "node": "b", "node_type": "code", "started_at": DAY, "attempts": 1},
    ]
    table = pa.Table.from_pylist(rows)  # columns it leaves out are NULL in both tables
    store.bulk_load({"node_runs": table})
    store.bulk_load({"node_runs": table})
    assert stored(home) == recount(home)
    assert store.query("SELECT sum(node_rows), sum(cost_usd) FROM node_daily") == [(6, 1.0)]

    broken = pa.Table.from_pylist([{"run_id": "r3", "no_such_column": 1}])
    with pytest.raises(duckdb.Error):
        store.bulk_load({"node_runs": table, "runs": broken})
    assert store.query("SELECT count(*) FROM node_runs") == [(6,)]
    assert stored(home) == recount(home)


def test_an_older_database_gets_its_rollup_once(home: Path) -> None:
    with duckdb.connect(str(home / DB_FILE)) as con:
        con.execute(
            "CREATE TABLE node_runs (run_id VARCHAR, node VARCHAR, node_type VARCHAR,"
            " started_at TIMESTAMP, cost_usd DOUBLE, attempts INTEGER)"
        )
        con.execute(
            "INSERT INTO node_runs VALUES ('r1', 'a', 'llm', ?, 0.5, 1),"
            " ('r1', 'b', 'llm', ?, 0.25, 1), ('r2', 'a', 'llm', ?, 0.5, 1)",
            [DAY, DAY, DAY + timedelta(days=1)],
        )
    assert get_store(home).query("SELECT sum(node_rows), sum(cost_usd) FROM node_daily") == [
        (3, 1.25)
    ]
    assert stored(home) == recount(home)


def test_a_rollup_of_another_definition_is_rebuilt(home: Path) -> None:
    with duckdb.connect(str(home / DB_FILE)) as con:
        con.execute("CREATE TABLE node_runs (run_id VARCHAR, started_at TIMESTAMP)")
        con.execute("INSERT INTO node_runs VALUES ('r1', ?)", [DAY])
        con.execute("CREATE TABLE node_daily (day DATE, node_rows BIGINT)")
    store = get_store(home)
    columns = store.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'node_daily'"
        " ORDER BY ordinal_position"
    )
    assert [c for (c,) in columns] == list(ROLLUP_COLUMNS)
    assert stored(home) == recount(home) != []


def test_writes_around_the_store_are_noticed_and_recounted(home: Path) -> None:
    get_store(home).query("SELECT 1")  # creates the schema
    with duckdb.connect(str(home / DB_FILE)) as con:  # straight into node_runs
        con.execute(
            "INSERT INTO node_runs (run_id, node, node_type, started_at, cost_usd)"
            " VALUES ('r1', 'a', 'llm', ?, 0.5)",
            [D1],
        )
    with duckdb.connect(str(home / DB_FILE), read_only=True) as con:
        assert not rollup_current(con)
    assert get_store(home).query("SELECT sum(cost_usd) FROM node_daily") == [(0.5,)]
    assert stored(home) == recount(home)
    with duckdb.connect(str(home / DB_FILE)) as con:
        con.execute("DELETE FROM node_runs")
    assert get_store(home).query("SELECT count(*) FROM node_daily") == [(0,)]


def test_windows_of_days_are_whole_utc_days() -> None:
    span = window(7)
    tonight = datetime.combine(utc_now().date(), time()) + timedelta(days=1)
    assert (span.start, span.end, span.days) == (tonight - timedelta(days=7), tonight, 7)
    assert span.previous.start == tonight - timedelta(days=14)
    assert "node_runs" not in node_days(span, Where())[0]  # the rollup alone answers it


def test_node_days_is_exact_for_windows_that_cut_days(home: Path) -> None:
    rng = random.Random(7)
    start = DAY - timedelta(days=3)
    nodes = [
        make_node(
            f"r{i}",
            rng.choice("abc"),
            start + timedelta(minutes=rng.randrange(6 * 24 * 60)),
            cost_usd=rng.choice([0.5, 0.25, 0.125, None]),
            input_tokens=rng.randrange(100),
            simulated=rng.random() < 0.3,
        )
        for i in range(300)
    ]
    write_rows(home, nodes=nodes)
    figures = (
        "coalesce(sum(node_rows), 0), coalesce(sum(cost_usd), 0),"
        " coalesce(sum(input_tokens), 0), coalesce(sum(node_rows) FILTER (WHERE priced), 0)"
    )
    raw = "count(*), coalesce(sum(cost_usd), 0), coalesce(sum(input_tokens), 0), count(cost_usd)"
    for _ in range(20):
        begin = start + timedelta(minutes=rng.randrange(6 * 24 * 60))
        end = begin + timedelta(minutes=rng.randrange(1, 4 * 24 * 60))
        span = window(start=begin, end=end)
        relation, params = node_days(span, Where().add("node = ?", "a"))
        [expected] = get_store(home).query(
            f"SELECT {raw} FROM node_runs WHERE node = 'a' AND started_at >= ? AND started_at < ?",
            [begin, end],
        )
        [got] = get_store(home).query(f"SELECT {figures} FROM {relation}", params)
        assert got == expected, (begin, end)


def test_reports_read_their_breakdowns_from_the_rollup(home: Path) -> None:
    nodes = [make_node("r1", name, D1, cost_usd=0.5, model="house-model") for name in "ab"]
    write_rows(home, [make_run("r1", D1, 1.0)], nodes)
    assert cost_report(home).real.node_cost_usd == 1.0
    with duckdb.connect(str(home / DB_FILE)) as con:
        # Its row count unchanged, the rollup stays as it is: what the reports show is it.
        con.execute("UPDATE node_daily SET cost_usd = cost_usd * 4 WHERE node = 'a'")
    assert cost_report(home).real.by_node[0].cost_usd == 2.0
    [swap] = reprice(home, swaps=[("house-model", "gpt-4o-mini")]).swaps
    assert swap.real.total.actual_cost_usd == 2.5
    [share] = [m for m in check(home).metrics if m.name == "node_cost_share"]
    assert share.value == 0.8


def test_caching_is_looked_for_on_the_costliest_nodes(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A model without a cheaper option, so caching is the only saving on offer. `big` costs
    # more and never repeats; `small` repeats one request four times.
    runs, nodes = [], []
    for i in range(5):
        at = D1 + timedelta(minutes=i)
        runs.append(make_run(f"r{i}", at, 0.75))
        for name, price, request in (("big", 0.5, f"q{i}"), ("small", 0.25, "same")):
            nodes.append(
                make_node(
                    f"r{i}",
                    name,
                    at,
                    provider="acme",
                    model="house-model",
                    cost_usd=price,
                    request_hash=request,
                )
            )
    write_rows(home, runs, nodes)
    monkeypatch.setattr(cost, "REPEAT_NODES", 1)
    assert cost_report(home).real.recommendation.kind == "review_node"
    monkeypatch.setattr(cost, "REPEAT_NODES", 2)
    rec = cost_report(home).real.recommendation
    assert (rec.kind, rec.node, rec.repeated_calls, rec.saving_usd) == (
        "enable_cache",
        "small",
        4,
        1.0,
    )

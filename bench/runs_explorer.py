"""The Runs page on 1,000,000 runs: first render, a filter change and opening a run, timed.

Fills a fresh data folder with the analytics benchmark's history (1,000,000 runs and
10,000,000 node rows, bulk-inserted through DuckDB, not the engine), gives the runs random
ids as the engine's are (an MD5 of the benchmark's sequential ones, which DuckDB could find
from its zone maps alone) with each node row carrying its run's start as the engine writes
it, tags a third of the runs, and stores the content of the run it opens through the
telemetry write path. The fill's runs are in random time order within each chunk of
100,000, so a run's start prunes fewer row groups than in an engine-written history. Then it
times two things, medians of five:

- the page itself, headless with Streamlit's AppTest (the page script with its cached
  queries stale, minus the browser's drawing): the first render of the list, a change of the
  workflow filter, and opening /runs?run=<run_id>;
- the core calls behind each (the SQL and the chart building, without Streamlit): the
  filter choices and first page, each filter alone, and a run's detail with its DAG, Gantt
  and node table.

Prints figures; asserts nothing. Targets: first render < 2 s, a filter change or opening a
run < 1 s.

    python bench/runs_explorer.py [--runs 1000000] [--home DIR]   # --home reuses a filled one
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streamlit.testing.v1 import AppTest  # noqa: E402

from bench.analytics import fill  # noqa: E402
from core.analytics.run_detail import run_detail  # noqa: E402
from core.analytics.run_search import RunFilters, filter_choices, search_runs  # noqa: E402
from core.app.gantt import gantt_chart  # noqa: E402
from core.app.graph_chart import STATE_COLOURS, dag_chart  # noqa: E402
from core.app.run_view import node_table, run_marks, runs_table  # noqa: E402
from core.settings import DB_FILE, HOME_VARIABLE  # noqa: E402
from core.telemetry import get_store  # noqa: E402
from core.telemetry.content import content_events  # noqa: E402

PAGE = REPO / "pages" / "8_runs.py"
REPEATS = 5
TIMEOUT_S = 600
OPENED = hashlib.md5(b"bench00000042").hexdigest()


def prepare(home: Path) -> None:
    """Tags on a third of the runs, and content for the run the benchmark opens."""
    store = get_store(home)
    with store.connect(read_only=False) as con:
        (stored,) = con.execute(
            "SELECT count(*) FROM node_content WHERE run_id = ?", [OPENED]
        ).fetchone()
        if stored:
            return  # a folder this benchmark prepared before
        con.execute("UPDATE runs SET run_id = md5(run_id)")
        con.execute("UPDATE node_runs SET run_id = md5(run_id)")
        con.execute(
            "UPDATE node_runs SET run_started_at = r.started_at FROM runs r"
            " WHERE node_runs.run_id = r.run_id"
        )
        con.execute(
            'UPDATE runs SET tags = CASE hash(run_id) % 3 WHEN 0 THEN \'{"team": "search"}\''
            ' WHEN 1 THEN \'{"team": "support", "source": "demo"}\' ELSE tags END'
        )
        (started,) = con.execute(
            "SELECT started_at FROM runs WHERE run_id = ?", [OPENED]
        ).fetchone()
        query = "SELECT node FROM node_runs WHERE run_id = ?"
        nodes = [row[0] for row in con.execute(query, [OPENED]).fetchall()]
    for node in nodes:
        texts = {"prompt": f"Part of the plan for {node}", "response": f"Answer of {node} " * 50}
        for event, row in content_events(OPENED, node, started, texts, f"key-{node}", started):
            store.record(event, row)
    store.flush()


def median_of(action: Callable[[], Any]) -> float:
    samples = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def core_figures() -> list[tuple[str, float]]:
    last_week = datetime.now(UTC).date() - timedelta(days=6)
    filters = {
        "workflow": RunFilters(workflows=("bench_3",)),
        "status failed": RunFilters(statuses=("failed",)),
        "tag team=search": RunFilters(tag="team=search"),
        "period (last 7 days)": RunFilters(first_day=last_week),
        "real only": RunFilters(simulated=False),
        "cost $0.01-$0.02": RunFilters(min_cost=0.01, max_cost=0.02),
        "duration 5-6 s": RunFilters(min_seconds=5, max_seconds=6),
        "all of workflow+status+tag": RunFilters(
            workflows=("bench_3",), statuses=("failed",), tag="team=search"
        ),
    }

    def first_render() -> None:
        filter_choices()
        runs_table(search_runs(RunFilters()).rows)

    def open_run() -> None:
        detail = run_detail(OPENED)
        assert detail.workflow is not None and detail.content_stored
        marks = run_marks(detail.workflow, detail.nodes)
        dag_chart(detail.workflow.graph, marks, STATE_COLOURS, "state").to_dict()
        gantt_chart(detail.workflow, detail.nodes, detail.started_at).to_dict()
        node_table(list(detail.workflow.graph.order), detail.nodes)

    figures = [("first render: filter choices + first page", median_of(first_render))]
    deep = search_runs(RunFilters(), limit=10_000).cursor
    for name, chosen in filters.items():
        figures.append(
            (f"filter {name}", median_of(lambda f=chosen: runs_table(search_runs(f).rows)))
        )
    figures.append(
        ("page 201 (after 10,000 runs)", median_of(lambda: search_runs(RunFilters(), after=deep)))
    )
    figures.append(("open a run: detail + DAG + Gantt + node table", median_of(open_run)))
    return figures


def page_figures(database: Path) -> list[tuple[str, float]]:
    def session(query: dict[str, str] | None = None) -> tuple[AppTest, float]:
        os.utime(database)  # every cached query stale, as when new runs arrive
        app = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT_S)
        app.query_params.update(query or {})
        start = time.perf_counter()
        app.run(timeout=TIMEOUT_S)
        seconds = time.perf_counter() - start
        if app.exception:
            raise RuntimeError(app.exception[0].message)
        return app, seconds

    first, change, opened = [], [], []
    for _ in range(REPEATS):
        app, seconds = session()
        first.append(seconds)
        app.multiselect[0].select("bench_3")  # the Workflow filter
        start = time.perf_counter()
        app.run(timeout=TIMEOUT_S)
        change.append(time.perf_counter() - start)
        opened.append(session({"run": OPENED})[1])
    return [
        ("page: first render (AppTest)", statistics.median(first)),
        ("page: workflow filter change (AppTest)", statistics.median(change)),
        ("page: open /runs?run=ID (AppTest)", statistics.median(opened)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, help="a folder filled by an earlier run")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = options.home or Path(scratch) / "home"
        os.environ[HOME_VARIABLE] = str(home)
        if not (home / DB_FILE).exists():
            print(f"filling {options.runs:,} runs (bulk insert through DuckDB) ...")
            seconds = fill(home, options.runs)
            print(f"  filled in {seconds:.1f} s")
        prepare(home)
        logging.getLogger("streamlit").setLevel(logging.ERROR)
        with contextlib.redirect_stderr(io.StringIO()):
            warm_up = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT_S)
            warm_up.run(timeout=TIMEOUT_S)  # one-off imports count against no figure
            pages = page_figures(home / DB_FILE)
        figures = core_figures() + pages
    print(f"Runs page on {options.runs:,} runs (medians of {REPEATS}):")
    for name, seconds in figures:
        print(f"  {name:<52} {seconds * 1000:8.0f} ms")


if __name__ == "__main__":
    main()

"""The Costs page's HTML export while other sessions draw charts: every chart keeps its data.

Streamlit draws an Altair chart by swapping Altair's process-wide data transformer (and
theme) for a moment; an export that read those globals at that moment wrote charts whose
data was a name with no values. Here exports are built over and over in threads while other
threads draw charts exactly as Streamlit does, and an AppTest session renders the Costs
page, and every chart of every file must have marks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import D1, D2, downloaded, filled_charts, make_node, make_run, write_rows
from streamlit.elements.vega_charts import _convert_altair_to_vega_lite_spec
from streamlit.testing.v1 import AppTest

from core.analytics.cost import cost_report
from core.analytics.spend import spend_over_time
from core.app import charts
from core.app.html_export import cost_review_html

ROOT = Path(__file__).resolve().parents[1]
COSTS = str(ROOT / "pages" / "5_Costs.py")
EXPORTS_PER_THREAD = 2
EXPORT_THREADS = 2
DRAW_THREADS = 1
MODELS = (("plan", "gpt-4o", 0.03), ("draft", "gpt-4o-mini", 0.02), ("check", "o3-mini", 0.01))


@pytest.fixture
def spend(home: Path) -> Path:
    """Two days of real and simulated calls on three models and three nodes."""
    runs, nodes = [], []
    for i, (day, simulated) in enumerate([(D1, False), (D2, False), (D1, True), (D2, True)]):
        run_id = f"run{i}"
        runs.append(make_run(run_id, day, 0.06, simulated=simulated))
        for node, model, cost in MODELS:
            nodes.append(
                make_node(run_id, node, day, model=model, cost_usd=cost, simulated=simulated)
            )
    write_rows(home, runs, nodes)
    return home


def in_threads(jobs: list[Callable[[], None]]) -> None:
    """Runs every job in its own thread and re-raises the first failure."""
    failures: list[BaseException] = []

    def guarded(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as error:  # handed to the test's thread
            failures.append(error)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


def test_exports_keep_every_chart_while_other_sessions_draw(spend: Path) -> None:
    report = cost_report(spend, days=7)
    series = {
        simulated: spend_over_time(spend, dimension="model", days=7) for simulated in (False, True)
    }
    drawn_by_page = [
        charts.breakdown_chart(report.real.by_model, "model"),
        charts.spend_chart(series[True], True),
    ]
    exporting = threading.Event()
    documents: list[str] = []

    def export() -> None:
        for _ in range(EXPORTS_PER_THREAD):
            documents.append(cost_review_html(report, series))

    def draw() -> None:
        while not exporting.is_set():
            for chart in drawn_by_page:
                assert _convert_altair_to_vega_lite_spec(chart)["datasets"]

    def render_costs_page() -> None:
        while not exporting.is_set():
            app = AppTest.from_file(COSTS, default_timeout=60).run()
            assert not app.exception, app.exception[0].message if app.exception else ""

    def exports_then_stop() -> None:
        try:
            in_threads([export] * EXPORT_THREADS)
        finally:
            exporting.set()

    in_threads([exports_then_stop, render_costs_page, *[draw] * DRAW_THREADS])
    assert len(documents) == EXPORTS_PER_THREAD * EXPORT_THREADS
    for document in documents:
        marks = filled_charts(document)
        assert len(marks) == 6, "spend over time, top nodes and top models, real and simulated"
        assert all(marks), f"a chart came out blank: marks per chart {marks}"


def test_costs_downloads_work_in_any_order(spend: Path, media: list) -> None:
    """Each button carries its file (nothing deferred to a click) and neither reruns the
    page: CSV then HTML, HTML twice, and both again after a rerun all give their file."""
    app = AppTest.from_file(COSTS, default_timeout=60).run()
    for _ in range(2):
        buttons = {b.proto.label: b for b in app.get("download_button")}
        assert set(buttons) == {"Download CSV", "Export HTML report"}
        assert all(b.proto.ignore_rerun and b.proto.url for b in buttons.values())
        for label in ("Download CSV", "Export HTML report", "Export HTML report"):
            content = downloaded(media, buttons[label])
            if label == "Download CSV":
                assert content.startswith("section,")
            else:
                assert len(filled_charts(content)) == 6 and all(filled_charts(content))
        assert downloaded(media, buttons["Download CSV"]).startswith("section,")
        app.run()

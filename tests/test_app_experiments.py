"""The Experiments page through Streamlit's AppTest: the demo's finished experiment read back
(verdicts, table, charts, items, exports), an edited file checked as typed, a run launched
from the page, followed to the end in the background and then shown, and a cancelled
experiment resumed from the page."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from helpers import ROOT, quiz_experiment
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as app_test_module

from core.app import experiment_runs
from core.demo.experiment import seed_demo_experiment
from core.experiments.loader import load_experiment
from core.experiments.report import experiment_report
from core.experiments.report_render import to_csv
from core.experiments.runner import Progress, run_experiment
from core.settings import DB_FILE, EXPERIMENTS_DIR

PAGE = str(ROOT / "pages" / "7_Experiments.py")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("experiments")
    outcome = seed_demo_experiment(folder)
    assert outcome is not None and outcome.status == "finished"
    return folder


@pytest.fixture
def demo(seeded: Path, home: Path) -> Path:
    shutil.copy(seeded / DB_FILE, home / DB_FILE)
    return home


@pytest.fixture
def media(monkeypatch: pytest.MonkeyPatch) -> list[MediaFileManager]:
    managers: list[MediaFileManager] = []

    class Recording(MediaFileManager):
        def __init__(self, *args: object) -> None:
            super().__init__(*args)
            managers.append(self)

    monkeypatch.setattr(app_test_module, "MediaFileManager", Recording)
    return managers


def downloaded(managers: list[MediaFileManager], button: object) -> str:
    manager, proto = managers[-1], button.proto  # type: ignore[attr-defined]
    url = proto.url or manager.execute_deferred(proto.deferred_file_id)
    return manager.read_file(url.rsplit("/", 1)[-1]).content.decode()


def open_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not app.exception, app.exception[0].message if app.exception else ""
    return app


def markdown(app: AppTest) -> str:
    return "\n".join(m.value for m in app.markdown)


def charts(app: AppTest) -> list[object]:
    return list(app.get("arrow_vega_lite_chart")) + list(app.get("vega_lite_chart"))


def test_the_demo_experiment_is_shown_with_its_verdicts_and_charts(demo: Path, media: list) -> None:
    app = open_page()
    report = experiment_report("model_choice", demo, items_shown=200)
    shown = markdown(app)
    for variant in report.variants:
        assert variant.verdict in shown
    assert "Simulated: answers, latencies and judges" in "\n".join(i.value for i in app.info)
    table = app.dataframe[0].value
    assert list(table.variant) == ["gpt-4o (baseline)", "gpt-4.1", "mini_reply", "all_mini"]
    assert len(charts(app)) == 2  # the frontier and the differences
    items = app.dataframe[1].value
    assert len(items) and set(items.columns) >= {"item", "expected", "gpt-4o", "all_mini"}
    app.toggle[0].set_value(False).run()  # every item, not only disagreements
    assert len(app.dataframe[1].value) == 40
    app.segmented_control(key="frontier_axis").set_value("latency").run()
    assert not app.exception and "##### Latency against category" in markdown(app)
    codes = [c.value for c in app.code]
    assert any(code.startswith("--- expected") or code == "(identical)" for code in codes)
    buttons = {b.proto.label: b for b in app.get("download_button")}
    assert downloaded(media, buttons["Download CSV"]) == to_csv(report)
    page = downloaded(media, buttons["Download HTML report"])
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page


def test_both_downloads_carry_their_files_in_any_order(demo: Path, media: list) -> None:
    """The HTML report rides with the page (no deferred build on click) and neither button
    reruns it: HTML twice, then CSV, and again after a rerun, each gives its file."""
    app = open_page()
    report = experiment_report("model_choice", demo, items_shown=200)
    for _ in range(2):
        buttons = {b.proto.label: b for b in app.get("download_button")}
        exports = [buttons["Download CSV"], buttons["Download HTML report"]]
        assert all(b.proto.ignore_rerun and b.proto.url for b in exports)
        first = downloaded(media, buttons["Download HTML report"])
        assert first.startswith("<!DOCTYPE html>") and "<svg" in first
        assert downloaded(media, buttons["Download HTML report"]) == first
        assert downloaded(media, buttons["Download CSV"]) == to_csv(report)
        app.run()
        assert not app.exception


def test_an_edited_file_is_checked_as_typed(demo: Path) -> None:
    app = open_page()
    assert "Valid: 4 variants × 40 items × 2 repeats" in app.success[0].value
    area = app.text_area[0]
    area.set_value(area.value.replace("node: classify", "node: clasify")).run()
    errors = "\n".join(e.value for e in app.error)
    assert "1 problem" in errors
    assert "scorer 'category': unknown node 'clasify'; did you mean 'classify'?" in errors
    assert not [b for b in app.button if b.label == "Run experiment"]


def test_an_experiment_run_from_the_page_is_followed_and_shown(demo: Path) -> None:
    quiz_experiment(demo / EXPERIMENTS_DIR)
    app = open_page()
    shown = next(s for s in app.selectbox if s.label == "Experiment")
    assert shown.value.startswith("model_choice-")  # the demo's, until another is launched
    chooser = next(s for s in app.selectbox if s.label == "Experiment file")
    chooser.set_value(next(o for o in chooser.options if o.startswith("quiz_models"))).run()
    assert "= **24 cells**" in app.success[0].value
    next(b for b in app.button if b.label == "Estimate cost").click().run()
    assert "Estimated total $" in markdown(app)
    next(b for b in app.button if b.label == "Run experiment").click().run()
    deadline = time.monotonic() + 120
    while not all(job.done for job in experiment_runs.recent()):
        assert time.monotonic() < deadline, "the experiment did not finish"
        time.sleep(0.2)
    (job,) = [j for j in experiment_runs.recent() if j.experiment.name == "quiz_models"]
    assert job.outcome is not None and job.outcome.status == "finished", job.error
    app.run()
    assert not app.exception
    chosen = next(s for s in app.selectbox if s.label == "Experiment")
    assert chosen.value == job.experiment_id
    assert "big: the baseline" in markdown(app)


def test_a_cancelled_experiment_is_resumed_from_the_page(home: Path) -> None:
    path = quiz_experiment(home / EXPERIMENTS_DIR, latency_ms=200)
    experiment = load_experiment(path)

    async def start_then_cancel() -> None:
        started = asyncio.Event()

        def on_progress(progress: Progress) -> None:
            if progress.done >= 2:
                started.set()

        task = asyncio.create_task(
            run_experiment(experiment, simulate=True, home=home, on_progress=on_progress)
        )
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_then_cancel())
    app = open_page()
    assert "**cancelled**" in "\n".join(c.value for c in app.caption)
    next(b for b in app.button if b.label == "Resume").click().run()
    deadline = time.monotonic() + 120
    while not all(job.done for job in experiment_runs.recent()):
        assert time.monotonic() < deadline, "the resumed experiment did not finish"
        time.sleep(0.2)
    app.run()
    assert not app.exception
    assert "**finished** · 24 of 24 cells" in "\n".join(c.value for c in app.caption)

"""The workbench pages in a real browser: exports built while another session draws, a
what-if applied to a workflow file, and the layout at common laptop sizes.

Screenshots go to pytest's tmp dir (the path is printed on failure)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from browser_app import (
    CHROMIUM,
    Browser,
    Page,
    app_url,
    browser,
    check_no_exception,
    expect,
    goto,
    wait_idle,
)
from helpers import filled_charts

__all__ = ["app_url", "browser"]  # fixtures, used by name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
]
PERIODS = ("30 days", "90 days", "7 days")


def download_export(page: Page, label: str, timeout_s: float = 90) -> str:
    """The Costs page's HTML export once it is the one for `label`: until the rerun a period
    change started has finished, the button on screen still hands out the previous file."""
    deadline = time.monotonic() + timeout_s
    while True:
        button = page.get_by_role("button", name="Export HTML report")
        expect(button).to_have_count(1, timeout=timeout_s * 1000)
        with page.expect_download() as download:
            button.click()
        document = Path(download.value.path()).read_text()
        if f"Cost review · {label}" in document:
            return document
        assert time.monotonic() < deadline, f"no export for {label}"
        time.sleep(1)


def test_html_export_keeps_every_chart_while_another_session_draws(
    app_url: str, browser: Browser, tmp_path: Path
) -> None:
    """One session changes the Costs period (each change builds a new export) while another
    reloads the chart-heavy Profile and Costs pages; every export's charts have data."""
    exporter_context = browser.new_context(viewport={"width": 1440, "height": 900})
    drawer_context = browser.new_context(viewport={"width": 1440, "height": 900})
    exporter, drawer = exporter_context.new_page(), drawer_context.new_page()
    try:
        goto(exporter, f"{app_url}/Costs")
        for i, period in enumerate(PERIODS):
            drawer.goto(f"{app_url}/{'Profile' if i % 2 else 'Costs'}", wait_until="commit")
            exporter.get_by_role("radio", name=period, exact=True).click()
            wait_idle(exporter)
            check_no_exception(exporter)
            document = download_export(exporter, f"Last {period} (UTC")
            (tmp_path / f"export-{i}.html").write_text(document)
            marks = filled_charts(document)
            # The demo history is all simulated: spend over time, top nodes, top models.
            assert len(marks) == 3 and all(marks), f"{period}: marks per chart {marks}"
        exporter.screenshot(path=tmp_path / "costs.png", full_page=True)
    finally:
        exporter_context.close()
        drawer_context.close()

"""The workbench pages in a real browser: exports built while another session draws, a
what-if applied to a workflow file, and the layout at common laptop sizes.

Screenshots go to pytest's tmp dir (the path is printed on failure)."""

from __future__ import annotations

import re
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
PERIODS = ("30 days", "7 days")


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


def choose(page: Page, label: str, option: str) -> None:
    """Picks `option` in a Streamlit selectbox as a user does: open, type, Enter."""
    page.get_by_role("combobox", name=label).click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")
    wait_idle(page)


def test_apply_a_what_if_and_see_the_yaml_change(
    app_url: str, browser: Browser, tmp_path: Path
) -> None:
    """Estimate: move the echo example to another model, read the diff, save it as a copy;
    the copy on disk holds the new model under its own workflow name."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        goto(page, f"{app_url}/Estimate")
        choose(page, "Workflow", "echo.yaml")
        message = page.get_by_label(re.compile("^message"))
        message.fill("hello")
        message.press("Enter")
        wait_idle(page)
        choose(page, "Model of echo", "gpt-4.1-mini")
        diff = page.locator('[data-testid="stCode"]').first
        expect(diff).to_contain_text("+    llm: {provider: openai, model: gpt-4.1-mini}")
        name = page.get_by_label("Save as a copy named")
        name.fill("echo_e2e")
        name.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Save as a copy").click()
        saved = page.get_by_text(re.compile(r"Saved to .*echo_e2e\.yaml"))
        expect(saved).to_be_visible(timeout=30_000)
        page.screenshot(path=tmp_path / "estimate-applied.png", full_page=True)
        check_no_exception(page)
        path = Path(re.search(r"Saved to (\S+echo_e2e\.yaml)", saved.inner_text()).group(1))
        text = path.read_text()
        assert "name: echo_e2e" in text and "model: gpt-4.1-mini" in text
        assert "Repeat this message exactly" in text  # the rest of the file is as it was
    finally:
        context.close()

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
    app_home,
    app_url,
    browser,
    check_no_exception,
    expect,
    goto,
    wait_idle,
)
from helpers import filled_charts

__all__ = ["app_home", "app_url", "browser"]  # fixtures, used by name

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


LAYOUT_SIZES = ({"width": 1024, "height": 768}, {"width": 1440, "height": 900})
LAYOUT_PAGES = ("", "Estimate", "Profile", "Costs", "Compare", "Experiments")
# Every control and table in the main area whose right or left edge leaves the viewport
# or the column that holds it, and every table in a column whose columns are wider than its
# box (cut off on the right until scrolled; a full-width table of many columns scrolls as
# any data grid does); a pixel of slack for sub-pixel rounding.
OUT_OF_BOUNDS_JS = """
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const wide = document.documentElement.clientWidth;
  const shown = (el) => el.getClientRects().length && el.checkVisibility();
  const name = (el) => (el.getAttribute('aria-label') || el.innerText || el.tagName)
    .trim().slice(0, 40);
  const found = [];
  const selector = 'input, select, textarea, button, [data-testid="stDataFrame"]';
  for (const el of main.querySelectorAll(selector)) {
    if (!shown(el) || el.closest('[data-testid="stDataFrame"]') !== null && el.matches(
      'input, button, textarea')) continue;
    const box = el.getBoundingClientRect();
    if (box.width === 0) continue;
    const column = el.closest('[data-testid="stColumn"]');
    const outer = column ? column.getBoundingClientRect() : {left: 0, right: wide};
    const left = Math.max(0, outer.left), right = Math.min(wide, outer.right);
    if (box.left < left - 1 || box.right > right + 1) {
      found.push(`${name(el)}: ${Math.round(box.left)}-${Math.round(box.right)} px ` +
                 `outside ${Math.round(left)}-${Math.round(right)} px`);
    }
    const grid = el.querySelector('.dvn-scroller');
    if (column && grid && grid.scrollWidth > grid.clientWidth + 1) {
      found.push(`table (${name(grid.closest('[data-testid="stDataFrame"]'))}): ` +
                 `${grid.scrollWidth} px of columns in ${grid.clientWidth} px`);
    }
  }
  return found;
}
"""


def drawn(page: Page, quiet_s: float = 1.0, timeout_s: float = 90) -> None:
    """Until the script has stopped for `quiet_s` and no element is still a placeholder: a
    cold page's first render draws skeletons before its figures, and the status widget does
    not show every rerun, so this reads the app's own script state."""
    idle = page.locator('[data-testid="stApp"][data-test-script-state="notRunning"]')
    skeletons = page.locator('[data-testid="stMain"] [data-testid="stSkeleton"]')
    deadline = time.monotonic() + timeout_s
    calm_since = time.monotonic()
    while time.monotonic() - calm_since < quiet_s:
        if not idle.count() or skeletons.count():
            calm_since = time.monotonic()
        assert time.monotonic() < deadline, "the page kept running"
        time.sleep(0.1)


def test_no_control_or_table_leaves_its_column_at_laptop_sizes(
    app_url: str, browser: Browser, tmp_path: Path
) -> None:
    """Each page at 1024x768 and 1440x900: every input, select, button and table lies
    within the viewport and the column that holds it. One tab, each page drawn once and
    resized (layout is CSS: a resize reflows without a rerun); a screenshot of each, the
    whole page, under the tmp dir."""
    clipped: dict[str, list[str]] = {}
    context = browser.new_context(viewport=LAYOUT_SIZES[0])
    page = context.new_page()
    try:
        for name in LAYOUT_PAGES:
            page.set_viewport_size(LAYOUT_SIZES[0])
            goto(page, f"{app_url}/{name}")
            drawn(page)
            check_no_exception(page)
            for size in LAYOUT_SIZES:
                page.set_viewport_size(size)
                page.wait_for_timeout(500)  # charts redraw at their new width
                label = f"{name or 'Home'}-{size['width']}x{size['height']}"
                if found := page.evaluate(OUT_OF_BOUNDS_JS):
                    clipped[label] = found
                # Streamlit scrolls inside the page: a tall viewport of the same width
                # shows all of it in the screenshot.
                page.set_viewport_size({**size, "height": 4000})
                page.screenshot(path=tmp_path / f"{label}.png")
    finally:
        context.close()
    assert not clipped, f"clipped (screenshots in {tmp_path}): {clipped}"


def test_the_run_form_keeps_its_values_after_a_reload(app_url: str, browser: Browser) -> None:
    """A reload starts a new session: the workflow, the inputs typed and the cache choice
    come back from the page's address."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    try:
        goto(page, f"{app_url}/Run")
        choose(page, "Workflow", "echo.yaml")
        message = page.get_by_label(re.compile("^message"))
        message.fill("kept after a reload")
        message.blur()
        page.get_by_text("Use the response cache").click()
        # The address holds what was committed: reload once it has all three.
        expect(page).to_have_url(re.compile(r"^(?=.*workflow_choice=)(?=.*kept)(?=.*use_cache=)"))
        wait_idle(page)
        page.reload()
        expect(page.locator("h1").first).to_be_visible(timeout=30_000)
        wait_idle(page)
        picker = page.get_by_role("combobox", name="Workflow")
        expect(picker).to_have_value("echo.yaml · example")
        expect(page.get_by_label(re.compile("^message"))).to_have_value("kept after a reload")
        expect(page.get_by_role("checkbox", name="Use the response cache")).not_to_be_checked()
        check_no_exception(page)
    finally:
        context.close()

"""The app in a real browser: what a user does on first start, page by page.

`configurable-agents app` is started as a user would start it, on a free port with its own
data folder, so these tests also cover the launcher seeding demo history into an empty
database. Chromium is Debian's (`scripts/install-system-deps.sh`), launched directly:
Playwright's own browser download is not available everywhere. Each test saves screenshots
under `screenshots/` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_app import (
    CHROMIUM,
    REPO,
    Page,
    app_home,
    app_url,
    browser,
    check_no_exception,
    editor_text,
    expect,
    goto,
    open_page,
    page,
    require_page,
    screenshot,
    type_into_editor,
    wait_idle,
)

from core import load_workflow, run_workflow

__all__ = ["app_home", "app_url", "browser", "page"]  # fixtures, used by name

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: run scripts/install-system-deps.sh (needs apt)",
    ),
]

BROKEN_WORKFLOW = """\
workflow:
  name: e2e_check
  llm: {provider: openai, model: gpt-4o-mini, max_output_tokens: 60}
inputs:
  topic: {type: string, default: tides}
nodes:
  - name: facts
    promt: "List three facts about {inputs.topic}."
  - name: summary
    prompt: "Summarise in one sentence: {facts}"
"""
FIXED_WORKFLOW = BROKEN_WORKFLOW.replace("promt:", "prompt:")


def test_home_page_shows_the_app_and_demo_history(app_url: str, page: Page) -> None:
    goto(page, app_url)
    screenshot(page, "01_home")
    expect(page.get_by_role("heading", name="configurable-agents")).to_be_visible()
    check_no_exception(page)
    expect(page.get_by_text("Simulated spend (7 days)")).to_be_visible()
    expect(page.get_by_text("No runs yet")).to_have_count(0)  # the demo history is there


def test_edit_fix_and_run_a_workflow(app_url: str, page: Page) -> None:
    """Type a workflow with a typo, see the located error, fix it, run it simulated and see
    its timeline."""
    require_page("Editor")
    goto(page, app_url)
    open_page(page, "Editor")
    # With no provider key the app stays in simulated mode on every page, not just the first.
    expect(page.get_by_role("switch", name="Simulated provider")).to_be_checked()
    type_into_editor(page, BROKEN_WORKFLOW)
    expect(page.get_by_text("unknown key 'promt'")).to_be_visible(timeout=20_000)
    wait_idle(page)
    screenshot(page, "02_editor_error")
    # What the user typed must still be what the editor shows once the page has reacted.
    assert "e2e_check" in editor_text(page)

    type_into_editor(page, FIXED_WORKFLOW)
    expect(page.get_by_text("No problems: the workflow is valid.")).to_be_visible(timeout=20_000)
    wait_idle(page)
    screenshot(page, "03_editor_fixed")

    require_page("Run")
    open_page(page, "Run")
    expect(page.get_by_role("switch", name="Simulated provider")).to_be_checked()
    expect(page.get_by_role("combobox", name="Workflow")).to_have_value(re.compile("Editor"))
    page.get_by_role("button", name=re.compile(r"\bRun$")).click()
    expect(page.get_by_text("Succeeded")).to_be_visible(timeout=120_000)
    expect(page.get_by_text("facts → summary")).to_be_visible()  # the critical path
    # The Gantt chart: a Vega canvas whose accessible description names the run's nodes.
    expect(page.locator(".vega-embed canvas, .vega-embed svg").first).to_be_visible()
    expect(page.get_by_role("img").filter(has_text=re.compile(r"facts.*summary"))).to_be_visible()
    wait_idle(page)
    screenshot(page, "04_run")
    check_no_exception(page)


def test_costs_page_downloads_a_csv(app_url: str, page: Page) -> None:
    require_page("Costs")
    goto(page, f"{app_url}/Costs")
    screenshot(page, "05_costs")
    check_no_exception(page)
    button = page.locator('[data-testid="stDownloadButton"] button', has_text=re.compile("CSV"))
    with page.expect_download() as download:
        button.first.click()
    path = download.value.path()
    assert download.value.suggested_filename.endswith(".csv")
    lines = Path(path).read_text().splitlines()
    assert len(lines) > 1 and "," in lines[0]  # a header and rows from the demo history


@pytest.mark.parametrize("name", ["Estimate", "Profile", "Compare"])
def test_other_pages_render_with_demo_history(app_url: str, page: Page, name: str) -> None:
    require_page(name)
    goto(page, f"{app_url}/{name}")
    screenshot(page, f"06_{name.lower()}")
    check_no_exception(page)


def test_experiments_page_shows_the_demo_experiment_and_exports_it(
    app_url: str, page: Page
) -> None:
    """The launcher's demo includes a finished experiment: its verdicts, the frontier and
    difference charts, and a self-contained HTML export."""
    require_page("Experiments")
    goto(page, app_url)
    open_page(page, "Experiments")
    expect(page.get_by_text("gpt-4o: the baseline")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"mini_reply: cost -\d+ %"))).to_be_visible()
    expect(page.locator(".vega-embed canvas, .vega-embed svg").nth(1)).to_be_visible()
    wait_idle(page)
    screenshot(page, "07_experiments")
    check_no_exception(page)
    button = page.locator('[data-testid="stDownloadButton"] button', has_text="HTML")
    with page.expect_download() as download:
        button.first.click()
    document = Path(download.value.path()).read_text()
    assert download.value.suggested_filename.startswith("model_choice-")
    assert document.startswith("<!DOCTYPE html>") and document.count("<svg") == 3


def test_a_past_run_opens_at_its_address_with_a_nodes_prompt_and_response(
    app_url: str, app_home: Path, page: Page
) -> None:
    """A run recorded in the app's data folder, opened by pasting /runs?run=ID: its DAG,
    and what its node sent and received."""
    require_page("runs")
    message = "Meet at the harbour at noon"
    echo = load_workflow(REPO / "data" / "workflows" / "echo.yaml")
    run_id = run_workflow(echo, {"message": message}, simulate=True, home=app_home).run_id
    goto(page, f"{app_url}/runs?run={run_id}")  # a fresh session, as a pasted link opens
    check_no_exception(page)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_role("heading", name="echo · success")).to_be_visible()
    codes = page.locator('[data-testid="stCode"]')
    prompt = f"Repeat this message exactly, nothing else: {message}"
    expect(codes.filter(has_text=re.compile(rf"^{re.escape(prompt)}$"))).to_have_count(
        1, timeout=30_000
    )
    expect(codes.filter(has_text=re.compile(r"^\[simulated gpt-4o-mini\]"))).not_to_have_count(0)
    expect(page.get_by_text("Prompt sent")).to_be_visible()
    expect(page.get_by_text("Response received")).to_be_visible()
    expect(page.get_by_text("Click a node to see what it sent and received.")).to_be_visible()
    expect(page.locator(".vega-embed canvas, .vega-embed svg")).to_have_count(2)  # DAG, Gantt
    wait_idle(page)
    screenshot(page, "08_runs_open_run")
    page.get_by_role("button", name="← All runs").click()  # back to the list, filtered in SQL
    expect(page.get_by_text(re.compile(r"[\d,]+ runs match"))).to_be_visible(timeout=30_000)
    wait_idle(page)
    screenshot(page, "09_runs_list")
    check_no_exception(page)


# Marks of each state's colour in the first Vega chart (the DAG while a run goes, and above
# the node table once it is over): one per node in that state, plus its legend symbol.
STATE_MARKS_JS = """() => {
    const svg = document.querySelector('.vega-embed svg');
    if (!svg) return null;
    const colours = {pending: '#d0d7de', running: '#f2b705', ok: '#54a24b'};
    const counts = {pending: 0, running: 0, ok: 0};
    for (const mark of svg.querySelectorAll('path')) {
        const fill = (mark.getAttribute('fill') || '').toLowerCase();
        for (const [state, colour] of Object.entries(colours)) {
            if (fill === colour) counts[state] += 1;
        }
    }
    return counts;
}"""


def test_a_running_graph_changes_colour(app_url: str, page: Page) -> None:
    """Start a simulated run on the Run page: its live DAG shows nodes pending or running,
    then one of them turns green as it finishes."""
    require_page("Run")
    goto(page, app_url)
    open_page(page, "Run")
    page.get_by_role("textbox", name="topic").fill("tides")
    page.get_by_role("button", name=re.compile(r"\bRun$")).click()
    live = page.wait_for_function(
        f"() => {{ const c = ({STATE_MARKS_JS})(); "
        "return c && c.pending + c.running > 2 ? c : null; }",  # more than the legend's two
        timeout=30_000,
    ).json_value()
    later = page.wait_for_function(  # a node that was pending or running turns green
        f"() => {{ const c = ({STATE_MARKS_JS})(); return c && c.ok > {live['ok']} ? c : null; }}",
        timeout=60_000,
    ).json_value()
    assert later["ok"] > live["ok"], (live, later)
    screenshot(page, "10_run_graph_live")
    check_no_exception(page)

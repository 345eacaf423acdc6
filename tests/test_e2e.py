"""The app in a real browser: what a user does on first start, page by page.

`configurable-agents app` is started as a user would start it, on a free port with its own
data folder, so these tests also cover the launcher seeding demo history into an empty
database. Chromium is Debian's (`scripts/install-system-deps.sh`), launched directly:
Playwright's own browser download is not available everywhere. Each test saves screenshots
under `screenshots/` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import PROVIDER_KEYS

from core import load_workflow, run_workflow

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
Browser, Page, expect = sync_api.Browser, sync_api.Page, sync_api.expect

REPO = Path(__file__).resolve().parent.parent
SCREENSHOTS = REPO / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
START_TIMEOUT_S = 90
VIEWPORT = {"width": 1400, "height": 2000}  # Streamlit scrolls inside the page: tall shots

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's data folder: tests may add runs to it from the command line."""
    return tmp_path_factory.mktemp("e2e-home")


@pytest.fixture(scope="module")
def app_url(app_home: Path) -> Iterator[str]:
    """`configurable-agents app` on an empty data folder: it seeds demo history, then serves
    the app. No provider key reaches it, so the app defaults to the simulated provider."""
    home = app_home
    log = home / "app.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    env["CONFIGURABLE_AGENTS_HOME"] = str(home)
    with log.open("w") as output:
        # The launcher replaces itself with Streamlit, so this process is the server.
        server = subprocess.Popen(
            [sys.executable, "-m", "core", "app", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://localhost:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start:\n{log.read_text()}")
            time.sleep(0.25)
        assert "simulated demo history" in log.read_text(), log.read_text()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context: a new Streamlit session for each test."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    yield context.new_page()
    context.close()


def require_page(name: str) -> None:
    if not list((REPO / "pages").glob(f"*_{name}.py")):
        pytest.skip(f"pages/*_{name}.py does not exist yet")


def wait_idle(page: Page, quiet_s: float = 1.0, timeout_s: float = 60) -> None:
    """Until the script has stopped running for `quiet_s`: Streamlit shows its status widget
    only while a rerun is in progress, and a rerun can start a moment after an action."""
    status = page.locator('[data-testid="stStatusWidget"]')
    deadline = time.monotonic() + timeout_s
    calm_since = time.monotonic()
    while time.monotonic() - calm_since < quiet_s:
        if status.count():
            calm_since = time.monotonic()
        assert time.monotonic() < deadline, "the page kept running"
        time.sleep(0.1)


def goto(page: Page, url: str) -> None:
    """Opens a page and waits until its script has drawn it: the title first (the websocket
    session can take a moment to start), then no rerun in progress."""
    page.goto(url)
    expect(page.locator("h1").first).to_be_visible(timeout=30_000)
    wait_idle(page)


def check_no_exception(page: Page) -> None:
    errors = page.locator('[data-testid="stException"]')
    assert errors.count() == 0, errors.first.inner_text()


def open_page(page: Page, name: str) -> None:
    """Through the sidebar, as a user would: a link keeps the session (and the editor's text)
    where typing a URL would start a new one."""
    nav = page.locator('[data-testid="stSidebarNav"]')
    nav.get_by_role("link", name=name, exact=True).click()  # "Run", not "runs"
    page.wait_for_url(re.compile(rf"/{name}$"))
    wait_idle(page)
    check_no_exception(page)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def type_into_editor(page: Page, text: str) -> None:
    """Replaces the Ace editor's text as a user would: click, select all, type. Inserted in
    one go (like a paste) because Ace auto-indents each typed newline."""
    ace = page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]')
    ace.locator(".ace_content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def editor_text(page: Page) -> str:
    ace = page.frame_locator('iframe[title="streamlit_ace.streamlit_ace"]')
    return ace.locator(".ace_content").inner_text()


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
    expect(page.get_by_text("Succeeded")).to_be_visible(timeout=60_000)
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

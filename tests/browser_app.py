"""What the browser tests share: `configurable-agents app` started as a user starts it, on
a free port with its own data folder (so the launcher seeds demo history), Debian's Chromium
driven by Playwright, and the waits that know when Streamlit has finished drawing.

The fixtures are imported by the test modules that use them (`from browser_app import
app_url, browser, page`); test modules never import each other.
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

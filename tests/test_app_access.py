"""Who may use the app: it listens on this machine only by default, and wherever else it
listens a session must show the access token before any page draws."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.app.access import TOKEN_VARIABLE, is_loopback
from core.cli.app_command import access_token, streamlit_command

ROOT = Path(__file__).resolve().parents[1]
PROFILE = str(ROOT / "pages" / "4_Profile.py")
TOKEN = "test-token-7f3a"


def test_the_app_listens_on_loopback_unless_told_otherwise() -> None:
    command = streamlit_command(8501)
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    wide = streamlit_command(8501, "0.0.0.0")
    assert wide[wide.index("--server.address") + 1] == "0.0.0.0"


def test_a_token_is_needed_beyond_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    assert access_token("127.0.0.1") is None
    assert access_token("localhost") is None
    made = access_token("0.0.0.0")
    assert made and len(made) >= 32 and made != access_token("0.0.0.0")
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    assert access_token("0.0.0.0") == access_token("127.0.0.1") == TOKEN


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("::", False)],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_session_without_the_token_sees_nothing_but_how_to_get_in(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    app = AppTest.from_file(PROFILE, default_timeout=60).run()
    assert not app.exception
    assert [e.value for e in app.error] and "access token" in app.error[0].value
    assert not app.title and not app.dataframe and not app.get("vega_lite_chart")

    wrong = AppTest.from_file(PROFILE, default_timeout=60)
    wrong.query_params["token"] = "guess"
    wrong.run()
    assert "access token" in wrong.error[0].value and not wrong.title


def test_a_session_with_the_token_gets_the_page(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    app = AppTest.from_file(PROFILE, default_timeout=60)
    app.query_params["token"] = TOKEN
    app.run()
    assert not app.exception
    assert not [e for e in app.error if "access token" in e.value]
    assert app.title  # the page drew
    app.run()  # later reruns of the session need not show it again
    assert not [e for e in app.error if "access token" in e.value]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _other_address() -> str | None:
    """An address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent for a UDP connect
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


@pytest.fixture
def server(home: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "app", "--port", str(port), "--no-demo"],
        cwd=ROOT,
        env={"CONFIGURABLE_AGENTS_HOME": str(home), "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, port
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
def test_the_started_app_answers_on_loopback_only(server: tuple[subprocess.Popen, int]) -> None:
    process, port = server
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            time.sleep(0.25)
    else:
        pytest.fail("the app did not start")
    other = _other_address()
    if other is None:
        pytest.skip("this machine has no address besides loopback")
    with pytest.raises(OSError):
        socket.create_connection((other, port), timeout=2).close()

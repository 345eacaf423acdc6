"""App page speed on a large history: each page's first render and one filter change, timed.

Fills a fresh data folder with 1,000,000 runs (10,000,000 node rows) through the analytics
benchmark's fill, then runs every page headless with Streamlit's AppTest: the page script
with every cached query stale (what the first visitor after new data waits for on a running
server, minus the browser's drawing), then again after changing one filter widget (the first
select, multiselect, radio, slider or switch that is not the simulated-provider toggle; its
label is printed); medians of three sessions. Every page runs once beforehand, unmeasured,
so one-off imports count against no page. Prints figures; asserts nothing.
Targets: first render < 2 s, filter change < 1 s.

    python bench/app.py [--runs 1000000] [--home DIR]   # --home reuses a filled folder
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streamlit.testing.v1 import AppTest  # noqa: E402

from bench.analytics import NODES, fill  # noqa: E402
from core.settings import DB_FILE, HOME_VARIABLE  # noqa: E402

FIRST_RENDER_TARGET_S = 2.0
FILTER_CHANGE_TARGET_S = 1.0
RUN_TIMEOUT_S = 600
REPEATS = 3
MODE_SWITCH = "Simulated provider"  # the sidebar's app-wide switch: not a filter


def pages() -> list[Path]:
    return [REPO / "app.py", *sorted((REPO / "pages").glob("*.py"))]


def change_a_filter(app: Any) -> str | None:
    """Moves one filter widget to another value; returns what was changed.

    Generic because pages evolve. Select boxes are tried first: a page's main filter (which
    workflow, which period) is usually one.
    """
    for box in app.selectbox:
        if len(box.options) > 1:
            current = box.index or 0
            box.select_index((current + 1) % len(box.options))
            return f"select '{box.label}'"
    for box in app.multiselect:
        if box.options:
            first = box.options[0]
            (box.unselect if first in box.value else box.select)(first)
            return f"multiselect '{box.label}'"
    for group in (app.radio, app.segmented_control, app.pills):
        for choice in group:
            options = list(choice.options)
            if len(options) > 1:
                current = choice.value if choice.value in options else options[0]
                choice.set_value(options[(options.index(current) + 1) % len(options)])
                return f"choice '{choice.label}'"
    for slider in app.slider:
        low, high = slider.min, slider.max
        if isinstance(slider.value, tuple | list):
            slider.set_range(low, low + (high - low) / 2 if isinstance(low, float) else high)
        else:
            slider.set_value(low if slider.value != low else high)
        return f"slider '{slider.label}'"
    for switch in [*app.toggle, *app.checkbox]:
        if switch.label != MODE_SWITCH:
            switch.set_value(not switch.value)
            return f"switch '{switch.label}'"
    return None


def timed_run(app: Any) -> float:
    start = time.perf_counter()
    app.run(timeout=RUN_TIMEOUT_S)
    return time.perf_counter() - start


def measure_once(page: Path, database: Path) -> tuple[float, float | None, str]:
    """(first render s, filter change s or None, note) for one page."""
    # Pages cache their queries under the database's version (its mtime and size): touching
    # the file makes every cached figure stale, as when new runs arrive.
    os.utime(database)
    app = AppTest.from_file(str(page), default_timeout=RUN_TIMEOUT_S)
    first = timed_run(app)
    if app.exception:
        return first, None, f"error: {app.exception[0].message.splitlines()[0][:60]}"
    changed = change_a_filter(app)
    if changed is None:
        return first, None, "no filter widget"
    second = timed_run(app)
    if app.exception:
        return first, second, f"error after {changed}: {app.exception[0].message[:40]}"
    return first, second, changed


def measure(page: Path, database: Path) -> tuple[float, float | None, str]:
    """Medians over REPEATS fresh sessions: one slow run on a shared machine is noise."""
    samples = [measure_once(page, database) for _ in range(REPEATS)]
    changes = [change for _, change, _ in samples if change is not None]
    return (
        statistics.median(first for first, _, _ in samples),
        statistics.median(changes) if changes else None,
        samples[-1][2],
    )


def verdict(seconds: float | None, target: float) -> str:
    if seconds is None:
        return ""
    return "ok" if seconds < target else "SLOW"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--home", type=Path, help="reuse this data folder if already filled")
    options = parser.parse_args()
    home = options.home or Path(tempfile.mkdtemp(prefix="bench-app-"))
    os.environ[HOME_VARIABLE] = str(home)
    # AppTest warns, once per page, that it runs without a browser session; Streamlit resets
    # its loggers' levels, so the warning is filtered out instead.
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(
        lambda record: "missing ScriptRunContext" not in record.getMessage()
    )
    if not (home / DB_FILE).exists():
        print(f"app benchmark: filling {options.runs:,} runs, {options.runs * NODES:,} node rows")
        print(f"  fill: {fill(home, options.runs):.1f} s, in {home}")
    else:
        print(f"app benchmark: reusing {home}")

    database = home / DB_FILE
    rows = []
    with contextlib.redirect_stdout(io.StringIO()):  # pages' own debug prints
        for page in pages():
            measure_once(page, database)
        for page in pages():
            rows.append((page.relative_to(REPO), *measure(page, database)))

    print(f"\n  {'page':<22} {'first render':>13} {'filter change':>14}  filter changed")
    for name, first, change, note in rows:
        change_text = f"{change * 1000:,.0f} ms" if change is not None else "-"
        print(
            f"  {name!s:<22} {first * 1000:>9,.0f} ms {verdict(first, FIRST_RENDER_TARGET_S):>3}"
            f" {change_text:>11} {verdict(change, FILTER_CHANGE_TARGET_S):>4}  {note}"
        )
    print(
        f"\n  targets: first render < {FIRST_RENDER_TARGET_S:g} s, "
        f"filter change < {FILTER_CHANGE_TARGET_S:g} s (script time, without browser drawing)"
    )


if __name__ == "__main__":
    main()

"""Hostile and huge inputs at full size: how long each takes, and how much memory.

Each shape runs as the command a user would type, in a process of its own, so its peak
memory is its own. Validating, running and profiling a 20,000-node chain are compared with
a 1,000-node chain measured in the same run: linear work gives ratios near 20 (the old
quadratic steps gave hundreds). The shapes come from tests/hostile_inputs.py, where the
test suite runs them small.

    python bench/inputs.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import hostile_inputs as shapes

ROOT = Path(__file__).resolve().parent.parent
WORK = Path(tempfile.mkdtemp(prefix="bench-inputs-"))


def measure(*args: str, home: Path) -> tuple[float, float, int]:
    """(seconds, peak MB, exit code) of `configurable-agents ARGS`."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "core", *args],
        cwd=ROOT,
        env={**os.environ, "CONFIGURABLE_AGENTS_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, process.returncode


def write(name: str, text: str) -> Path:
    path = WORK / name
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    home = WORK / "home"
    home.mkdir()

    def row(label: str, *args: str, base: float | None = None, folder: Path = home) -> float:
        seconds, peak, code = measure(*args, home=folder)
        ratio = f"{seconds / base:.1f}x" if base else ""
        print(f"  {label:<44} {seconds:7.2f} s {peak:8.0f} MB  exit {code}  {ratio}", flush=True)
        return seconds

    print(f"Hostile inputs (Python {sys.version.split()[0]}, in {WORK})")
    start_up = row("start-up: --help", "--help")
    small = write("chain1000.yaml", shapes.chain(1_000))
    large = write("chain20000.yaml", shapes.chain(20_000))
    base = row("validate 1,000-node chain (baseline)", "validate", str(small))
    row("validate 20,000-node chain", "validate", str(large), base=base)
    for label, text in (
        ("validate 20,000-wide fan-out", shapes.fan_out(20_000)),
        ("validate 20,000 nodes reading the first", shapes.far_references(20_000)),
        ("validate 20,000 unknown references", shapes.unknown_references(20_000)),
        ("validate a 20,000-node cycle", shapes.long_cycle(20_000)),
        ("validate 1.9 MiB of YAML keys", shapes.key_flood(1_900_000)),
        ("validate 2.1 MiB of YAML keys (refused)", shapes.key_flood(2_200_000)),
        ("validate an alias bomb (9^9 values)", shapes.alias_bomb(9, 9)),
        ("validate an alias bomb (12^12 values)", shapes.alias_bomb(12, 12)),
        ("validate YAML nested 150 deep", shapes.deep_yaml(150)),
    ):
        row(label, "validate", str(write("shape.yaml", text)), base=base)
    echo = ROOT / "data" / "workflows" / "echo.yaml"
    row("run --inputs-file /dev/zero (refused)", "run", str(echo), "--inputs-file", "/dev/zero")

    small_home, large_home = WORK / "small", WORK / "large"
    small_home.mkdir()
    large_home.mkdir()
    run_base = row(
        "run 1,000-node chain (baseline)", "run", str(small), "--simulate", folder=small_home
    )
    row("run 20,000-node chain", "run", str(large), "--simulate", base=run_base, folder=large_home)
    profile_base = row(
        "profile-report, 1,000 nodes (baseline)", "profile-report", folder=small_home
    )
    row("profile-report, 20,000 nodes", "profile-report", base=profile_base, folder=large_home)
    print(
        f"\n  Start-up alone takes {start_up:.2f} s of each figure; ratios include it, so "
        "linear work shows a ratio somewhat under 20."
    )


if __name__ == "__main__":
    main()

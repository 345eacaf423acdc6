"""How well `--estimate-cost` predicts real runs, on the example workflows (simulated provider).

For each example: 20 runs of history with varied inputs, then new runs, each estimated
first and then run. Prints the share of runs whose actual cost fell inside the estimated
range and how wide the range is relative to the expected cost.
Targets: at least 90 % inside, ranges no wider than ±30 %.

    python bench/estimate_calibration.py [--history 20] [--trials 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core import load_workflow, run_workflow
from core.analytics.estimate import estimate
from core.workflow import Workflow

EXAMPLES = Path(__file__).resolve().parent.parent / "data" / "workflows"
SUBJECTS = [
    "solar power", "tidal energy in small island states", "urban beekeeping", "quantum sensors",
    "the history of the printing press and its effect on literacy in Europe", "soil carbon",
    "electric ferries", "remote work and city centres", "open-source licensing", "sleep",
    "microfinance in rural India", "battery recycling", "coral reef restoration", "chess engines",
    "water pricing", "heat pumps in old houses", "language learning apps", "desalination",
]  # fmt: skip


def instant(path: Path) -> Workflow:
    """The example with zero simulated latency: costs do not depend on time, the bench does."""
    data = yaml.safe_load(path.read_text())
    data["workflow"].setdefault("llm", {})["simulate"] = {"latency_ms": 0}
    return load_workflow(yaml.safe_dump(data, sort_keys=False), filename=path.name)


def inputs_for(workflow: Workflow, index: int) -> dict[str, object]:
    subject = f"{SUBJECTS[index % len(SUBJECTS)]} ({index})"
    values: dict[str, object] = {}
    for name, spec in workflow.spec.inputs.items():
        if spec.type == "string" and (spec.required or spec.default is None):
            values[name] = subject if name != "text" else (subject + ". ") * (3 + index % 5)
    return values


def calibrate(path: Path, history: int, trials: int) -> dict[str, float]:
    home = Path(tempfile.mkdtemp(prefix="bench-calibration-"))
    workflow = instant(path)
    for index in range(history):
        run_workflow(
            workflow, inputs_for(workflow, index), simulate=True, use_cache=False, home=home
        )
    inside, widths, errors, skipped = 0, [], [], 0
    for index in range(history, history + trials):
        values = inputs_for(workflow, 1000 + index)
        guess = estimate(workflow, values, simulate=True, use_cache=False, home=home)
        actual = run_workflow(workflow, values, simulate=True, use_cache=False, home=home)
        if actual.status != "success" or actual.cost_usd is None:
            skipped += 1
            continue
        inside += guess.cost_low <= actual.cost_usd <= guess.cost_high
        widths.append((guess.cost_high - guess.cost_low) / 2 / guess.cost_usd)
        errors.append(abs(actual.cost_usd - guess.cost_usd) / actual.cost_usd)
    measured = len(widths)
    return {
        "runs": measured,
        "skipped": skipped,
        "inside": inside / measured if measured else 0.0,
        "half_width": max(widths) if widths else 0.0,
        "median_half_width": statistics.median(widths) if widths else 0.0,
        "median_error": statistics.median(errors) if errors else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=20)
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    print(f"estimate calibration: {args.history} runs of history, then {args.trials} new runs")
    print(
        f"{'workflow':<22} {'inside range':>12} {'widest ±':>9} {'median ±':>9} {'median err':>10}"
    )
    total_inside = total_runs = 0
    worst_width = 0.0
    for path in sorted(EXAMPLES.glob("*.yaml")):
        figures = calibrate(path, args.history, args.trials)
        total_inside += round(figures["inside"] * figures["runs"])
        total_runs += int(figures["runs"])
        worst_width = max(worst_width, figures["half_width"])
        note = (
            f"  ({int(figures['skipped'])} runs stopped early, not counted)"
            if figures["skipped"]
            else ""
        )
        print(
            f"{path.stem:<22} {figures['inside']:>12.0%} {figures['half_width']:>9.0%} "
            f"{figures['median_half_width']:>9.0%} {figures['median_error']:>10.1%}{note}"
        )
    share = total_inside / total_runs if total_runs else 0.0
    print(
        f"overall: {share:.1%} of {total_runs} runs inside the range (target ≥ 90 %); "
        f"widest range ±{worst_width:.0%} of the expected cost (target ≤ ±30 %)"
    )


if __name__ == "__main__":
    main()

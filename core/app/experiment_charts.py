"""What the Experiments page and its HTML export show: the variant table, the cost (or
latency) against score scatter with its Pareto frontier, the differences against the
baseline with their intervals, and the per-item view. Pure Altair and pandas, built from an
`ExperimentReport` (already aggregated: one row per variant, scorer or shown item).
"""

from __future__ import annotations

import difflib
from typing import Any

import altair as alt
import pandas as pd

from core.app.charts import BETTER, MUTED, WORSE
from core.experiments.estimate import ExperimentEstimate
from core.experiments.report import ExperimentReport
from core.experiments.report_render import primary_output
from core.formatting import money
from core.workflow.templates import to_text

FRONTIER, OFF_FRONTIER, BASELINE = "#4C78A8", "#BAB0AC", "#F58518"
AXES = {"cost": "cost per item (USD)", "latency": "p95 latency (ms)"}
SHOWN = 120  # characters of an output in a table cell
DECISION_ICONS = {"can switch": "✅", "keep the baseline": "❌", "inconclusive": "❔"}


def decision_icon(decision: str) -> str:
    return next(
        (icon for start, icon in DECISION_ICONS.items() if decision.startswith(start)), "➖"
    )


def _interval(low: float | None, high: float | None, shown: Any) -> str:
    return "" if low is None or high is None else f" ({shown(low)}..{shown(high)})"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def variant_table(report: ExperimentReport) -> pd.DataFrame:
    """One row per variant: cost, latency, errors, the frontier, each scorer's mean with its
    interval and difference, and the decision."""
    rows = []
    for variant in report.variants:
        row: dict[str, Any] = {
            "variant": variant.name + (" (baseline)" if variant.name == report.baseline else ""),
            "decision": f"{decision_icon(variant.decision)} {variant.decision}",
            "cost per item": money(variant.cost_per_item)
            + _interval(variant.cost_ci_low, variant.cost_ci_high, money),
            "p50 latency (ms)": variant.p50_latency_ms,
            "p95 latency (ms)": variant.p95_latency_ms,
            "errors": f"{variant.error_rate:.0%}" if variant.error_rate is not None else "–",
            "frontier": ", ".join(
                name
                for name, on in (("cost", variant.pareto), ("latency", variant.pareto_latency))
                if on
            )
            or "–",
        }
        for name, summary in variant.scores.items():
            cell = _score(summary.mean) + _interval(summary.ci_low, summary.ci_high, _score)
            change = summary.vs_baseline
            if change is not None:
                mark = "*" if change.significant else ""
                cell += f" · {change.diff:+.2f}{mark}"
            row[name] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def _points(report: ExperimentReport, axis: str) -> pd.DataFrame:
    primary = report.primary
    rows = []
    for variant in report.variants:
        summary = variant.scores[primary]
        if axis == "cost":
            x, low, high = variant.cost_per_item, variant.cost_ci_low, variant.cost_ci_high
            on = variant.pareto
        else:
            x, low, high, on = variant.p95_latency_ms, None, None, variant.pareto_latency
        if x is None or summary.mean is None:
            continue
        rows.append(
            {
                "variant": variant.name,
                "x": x,
                "x_low": low if low is not None else x,
                "x_high": high if high is not None else x,
                "score": summary.mean,
                "score_low": summary.ci_low,
                "score_high": summary.ci_high,
                "role": "baseline"
                if variant.name == report.baseline
                else ("on the frontier" if on else "off the frontier"),
                "frontier": on,
                "decision": variant.decision,
            }
        )
    return pd.DataFrame(rows)


def frontier_chart(report: ExperimentReport, axis: str = "cost") -> alt.LayerChart:
    """Each variant at (cost per item or p95 latency, primary score) with its 95 % intervals
    as bars, and the Pareto frontier as a step line: no variant below and right of it is
    worth choosing, since another is both cheaper (or faster) and at least as good."""
    data = _points(report, axis)
    money_axis = axis == "cost"
    x = alt.X(
        "x:Q",
        title=AXES[axis],
        scale=alt.Scale(zero=True, nice=True),
        axis=alt.Axis(format="$,.5~f" if money_axis else ",.0f"),
    )
    y = alt.Y(
        "score:Q",
        title=f"{report.primary} (mean, 95 % CI)",
        scale=alt.Scale(domain=[0, 1]),
    )
    colour = alt.Color(
        "role:N",
        title=None,
        scale=alt.Scale(
            domain=["baseline", "on the frontier", "off the frontier"],
            range=[BASELINE, FRONTIER, OFF_FRONTIER],
        ),
        legend=alt.Legend(orient="bottom"),
    )
    tooltip = [
        alt.Tooltip("variant:N"),
        alt.Tooltip("x:Q", title=AXES[axis], format="$,.6f" if money_axis else ",.0f"),
        alt.Tooltip("score:Q", title=report.primary, format=".3f"),
        alt.Tooltip("score_low:Q", title="CI low", format=".3f"),
        alt.Tooltip("score_high:Q", title="CI high", format=".3f"),
        alt.Tooltip("decision:N"),
    ]
    base = alt.Chart(data).encode(x=x, y=y, color=colour, tooltip=tooltip)
    line = (
        alt.Chart(data[data.frontier] if len(data) else data)
        .mark_line(interpolate="step-after", color=FRONTIER, strokeDash=[6, 4], opacity=0.7)
        .encode(x="x:Q", y="score:Q", order="x:Q")
    )
    vertical = base.mark_rule(strokeWidth=2).encode(y="score_low:Q", y2="score_high:Q")
    horizontal = base.mark_rule(strokeWidth=2).encode(x="x_low:Q", x2="x_high:Q")
    dots = base.mark_point(filled=True, size=160, opacity=1)
    labels = base.mark_text(dx=10, dy=-10, align="left", fontWeight="bold").encode(text="variant:N")
    return alt.layer(line, vertical, horizontal, dots, labels).properties(height=360)


def differences(report: ExperimentReport) -> pd.DataFrame:
    """Every (variant, scorer) difference against the baseline, with its interval."""
    rows = []
    for variant in report.variants:
        for name, summary in variant.scores.items():
            change = summary.vs_baseline
            if change is None:
                continue
            kind = "neither"
            if change.significant:
                kind = "better" if change.diff > 0 else "worse"
            rows.append(
                {
                    "scorer": name,
                    "variant": variant.name,
                    "diff": change.diff,
                    "low": change.ci_low,
                    "high": change.ci_high,
                    "p (Holm)": change.p_value,
                    "reading": kind,
                }
            )
    return pd.DataFrame(rows)


def difference_chart(report: ExperimentReport) -> alt.VConcatChart | alt.Chart:
    """Variant minus baseline, one panel per scorer: the dot is the paired difference, the
    bar its 95 % interval; the dashed lines are zero and minus the margin. Green or red only
    when the difference is significant after Holm's correction."""
    data = differences(report)
    if data.empty:
        note = pd.DataFrame({"note": ["no variant to compare with the baseline yet"]})
        return alt.Chart(note).mark_text().encode(text="note:N")
    panels = [
        _difference_panel(data[data.scorer == name], name, report)
        for name in dict.fromkeys(data.scorer)
    ]
    return alt.vconcat(*panels, spacing=16).resolve_scale(color="shared")


def _difference_panel(data: pd.DataFrame, scorer: str, report: ExperimentReport) -> alt.LayerChart:
    y = alt.Y("variant:N", title=None, sort=[v.name for v in report.variants])
    colour = alt.Color(
        "reading:N",
        scale=alt.Scale(domain=["better", "worse", "neither"], range=[BETTER, WORSE, MUTED]),
        legend=alt.Legend(title="difference", orient="bottom"),
    )
    tooltip = [
        "scorer:N",
        "variant:N",
        alt.Tooltip("diff:Q", format="+.3f"),
        alt.Tooltip("low:Q", format="+.3f"),
        alt.Tooltip("high:Q", format="+.3f"),
        alt.Tooltip("p (Holm):Q", format=".3g"),
        "reading:N",
    ]
    base = alt.Chart(data).encode(y=y, color=colour, tooltip=tooltip)
    bars = base.mark_bar(height=10, cornerRadius=5, opacity=0.55).encode(
        x=alt.X("low:Q", title=f"{scorer}: variant − baseline (95 % CI)"), x2="high:Q"
    )
    dots = base.mark_point(filled=True, size=110, opacity=1).encode(x="diff:Q")
    lines = pd.DataFrame({"at": [0.0, -report.record.margin]})
    rules = alt.Chart(lines).mark_rule(strokeDash=[4, 3], color="#555").encode(x="at:Q")
    return alt.layer(bars, rules, dots).properties(height=30 * len(data) + 20)


def item_table(report: ExperimentReport, disagreements_only: bool) -> pd.DataFrame:
    """The shown items, disagreements first: inputs, expected values, and per variant the
    primary scorer's passes over the repeats and the first output."""
    primary = report.primary
    target = next(s["node"] for s in report.record.scorers if s["name"] == primary)
    rows = []
    for view in report.items:
        if disagreements_only and view.disagreement == 0:
            continue
        row: dict[str, Any] = {
            "item": view.item,
            "input": _clip(", ".join(to_text(v) for v in view.inputs.values())),
            "expected": _clip(", ".join(to_text(v) for v in view.expected.values())),
        }
        for variant, cells in view.outputs.items():
            marks = "".join(
                {True: "✓", False: "✗"}.get(c["scores"].get(primary, {}).get("passed"), "?")
                for c in cells
            )
            first = cells[0]
            shown = (
                first["status"]
                if first["status"] != "success"
                else to_text(primary_output(first["output"], target))
            )
            row[variant] = f"{marks} {_clip(shown)}"
        rows.append(row)
    return pd.DataFrame(rows)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN else flat[: SHOWN - 1] + "…"


def expected_vs_actual(expected: Any, output: Any) -> str:
    """A unified diff of the expected value against an output, line by line."""
    want, got = to_text(expected).splitlines(), to_text(output).splitlines()
    lines = difflib.unified_diff(want, got, "expected", "actual", lineterm="", n=2)
    return "\n".join(lines) or "(identical)"


def estimate_table(found: ExperimentEstimate) -> pd.DataFrame:
    """The estimate's lines: each variant's runs and each judge's calls, with ranges."""
    rows = [
        {
            "what": f"variant {v.name}",
            "per call": money(v.per_run.cost_usd),
            "calls": v.runs,
            "total": money(v.total.cost_usd),
            "range": f"{money(v.total.low)}..{money(v.total.high)}",
        }
        for v in found.variants
    ]
    rows += [
        {
            "what": f"judge {j.scorer} ({j.model})",
            "per call": money(j.per_call.cost_usd),
            "calls": j.calls,
            "total": money(j.total.cost_usd),
            "range": f"{money(j.total.low)}..{money(j.total.high)}",
        }
        for j in found.judges
    ]
    return pd.DataFrame(rows)

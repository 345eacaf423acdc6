"""The experiment report as text (for the terminal) and as one flat CSV table.

Text reads top to bottom the way a review goes: what ran, what each variant costs and how
fast it is, each scorer's figures with the difference against the baseline, the verdicts,
then the items where variants disagree. CSV gives every figure as a row (section, variant,
scorer, metric, value, low, high), ready for a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from core.experiments.report import Difference, ExperimentReport, ScoreSummary, VariantSummary
from core.formatting import aligned, money
from core.workflow.templates import to_text

SHOWN = 70  # characters of an output or input in the per-item view
CSV_COLUMNS = ("section", "variant", "scorer", "metric", "value", "ci_low", "ci_high", "p_value")


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} ms"


def _score(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _interval(low: float | None, high: float | None, money_values: bool = False) -> str:
    if low is None or high is None:
        return ""
    shown = money if money_values else _score
    return f"({shown(low)}..{shown(high)})"


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SHOWN else flat[: SHOWN - 1] + "…"


def render(report: ExperimentReport) -> str:
    record = report.record
    mode = "simulated" if record.simulated else "real calls"
    title = f"Experiment {record.name} ({record.experiment_id})"
    lines = [
        title,
        "=" * len(title),
        f"{record.workflow} · {mode} · {record.status} · started {record.created_at:%Y-%m-%d %H:%M}"
        " UTC",
        f"{report.cells_done:,} of {record.cells:,} cells done: {record.items:,} items × "
        f"{len(record.variants)} variants × {record.repeats} repeats · baseline "
        f"{record.baseline} · primary scorer {record.primary_scorer} · margin {record.margin:g}",
        _spend(report),
    ]
    if record.error and record.status != "finished":
        lines.append(f"Stopped: {record.error}")
    lines += [f"Note: {note}" for note in report.notes]
    if not report.cells_done:
        lines.append("\nNo cell has finished yet.")
        return "\n".join(lines)
    lines += ["", "Variants", "--------", *_variantaligned(report)]
    for scorer in record.scorers:
        lines += ["", *_scorer_section(report, scorer)]
    lines += ["", "Verdicts", "--------", *(v.verdict for v in report.variants)]
    lines += ["", *_items(report)]
    return "\n".join(lines)


def _spend(report: ExperimentReport) -> str:
    if report.cost_usd is None:
        return "Spend: unknown (no model of these runs has a known price)"
    judges = f", of which judges {money(report.judge_cost_usd)}" if report.judge_cost_usd else ""
    if report.record.simulated:
        return (
            f"Simulated spend: {money(report.cost_usd)}{judges} (what it would cost; nothing paid)"
        )
    return f"Spend: {money(report.cost_usd)}{judges}"


def _variantaligned(report: ExperimentReport) -> list[str]:
    rows = [["variant", "cost per item (95 % CI)", "p50", "p95", "tokens", "errors", "frontier"]]
    for variant in report.variants:
        name = variant.name + (" (baseline)" if variant.name == report.baseline else "")
        cost = money(variant.cost_per_item)
        cost += " " + _interval(variant.cost_ci_low, variant.cost_ci_high, money_values=True)
        if variant.unpriced_cells:
            cost += f" +{variant.unpriced_cells} unpriced"
        frontier = [
            label
            for label, on in (("cost", variant.pareto), ("latency", variant.pareto_latency))
            if on
        ]
        rows.append(
            [
                name,
                cost.strip(),
                _ms(variant.p50_latency_ms),
                _ms(variant.p95_latency_ms),
                "–" if variant.tokens_per_item is None else f"{variant.tokens_per_item:,.0f}",
                _share(variant.error_rate),
                ", ".join(frontier) or "–",
            ]
        )
    return aligned(rows)


def _scorer_section(report: ExperimentReport, scorer: dict[str, Any]) -> list[str]:
    name, k = scorer["name"], report.record.repeats
    heading = (
        f"Scorer {name} ({scorer['type']} on {scorer['node']}, passes at {scorer['threshold']:g})"
    )
    header = ["variant", "mean (95 % CI)", "pass rate", f"pass^{k}", f"pass@{k}"]
    rows = [[*header, "vs baseline (95 % CI)", "p (Holm)"]]
    for variant in report.variants:
        summary = variant.scores[name]
        rows.append(
            [
                variant.name,
                f"{_score(summary.mean)} {_interval(summary.ci_low, summary.ci_high)}".strip(),
                _share(summary.pass_rate),
                _score(summary.pass_hat_k),
                _score(summary.pass_at_k),
                *_against(summary.vs_baseline, variant.name == report.baseline),
            ]
        )
    unjudged = sum(v.scores[name].unjudged for v in report.variants)
    extra = [f"  {unjudged} cells could not be judged (see the per-item view)"] if unjudged else []
    return [heading, "-" * len(heading), *aligned(rows), *extra]


def _against(difference: Difference | None, baseline: bool) -> list[str]:
    if baseline:
        return ["baseline", ""]
    if difference is None:
        return ["–", ""]
    interval = f"({difference.ci_low:+.2f}..{difference.ci_high:+.2f})"
    mark = " *" if difference.significant else ""
    return [f"{difference.diff:+.2f} {interval}", f"{difference.p_value:.3g}{mark}"]


def _items(report: ExperimentReport) -> list[str]:
    if not report.items:
        return []
    heading = (
        f"Items, where variants disagree first ({len(report.items)} of {report.items_total};"
        " --items N for more)"
    )
    lines = [heading, "-" * len(heading)]
    primary = report.primary
    target = next(s["node"] for s in report.record.scorers if s["name"] == primary)
    for view in report.items:
        inputs = ", ".join(f"{k}={_clip(to_text(v))!r}" for k, v in view.inputs.items())
        expected = ", ".join(f"{k}={to_text(v)!r}" for k, v in view.expected.items())
        lines.append(f"#{view.item} {inputs}" + (f" · expected {expected}" if expected else ""))
        for variant, cells in view.outputs.items():
            for cell in cells:
                result = cell["scores"].get(primary, {})
                mark = {True: "✓", False: "✗"}.get(result.get("passed"), "?")
                shown = f"[{cell['status']}] {cell['error'] or ''}"
                if cell["status"] == "success":
                    shown = to_text(primary_output(cell["output"], target))
                lines.append(f"  {mark} {variant} r{cell['repeat']}: {_clip(shown)}")
    return lines


def primary_output(outputs: Any, target: str) -> Any:
    """What the primary scorer read in a cell's kept outputs (its node's, or the outputs)."""
    return outputs.get(target) if isinstance(outputs, dict) else outputs


# ---------------------------------------------------------------------------- CSV


def _row(
    section: str, variant: str, scorer: str, metric: str, value: Any, *interval: Any
) -> list[Any]:
    """One CSV row; `interval` is (low, high) or (low, high, p) when the figure has them."""
    return [section, variant, scorer, metric, value, *interval, *[""] * (3 - len(interval))]


def _difference(variant: str, scorer: str, metric: str, change: Difference) -> list[Any]:
    return _row(
        "vs_baseline", variant, scorer, metric, change.diff, change.ci_low, change.ci_high,
        change.p_value,
    )  # fmt: skip


def to_csv(report: ExperimentReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for variant in report.variants:
        writer.writerows(_variant_rows(variant))
        for summary in variant.scores.values():
            writer.writerows(_score_rows(variant.name, summary))
    for view in report.items:
        for variant, cells in view.outputs.items():
            for cell in cells:
                metric = f"item {view.item} repeat {cell['repeat']}"
                for scorer, result in cell["scores"].items():
                    writer.writerow(_row("item", variant, scorer, metric, result.get("score")))
    return buffer.getvalue()


def _variant_rows(variant: VariantSummary) -> list[list[Any]]:
    name = variant.name
    rows = [
        _row(
            "variant",
            name,
            "",
            "cost_per_item",
            variant.cost_per_item,
            variant.cost_ci_low,
            variant.cost_ci_high,
        ),
        _row("variant", name, "", "p50_latency_ms", variant.p50_latency_ms),
        _row("variant", name, "", "p95_latency_ms", variant.p95_latency_ms),
        _row("variant", name, "", "tokens_per_item", variant.tokens_per_item),
        _row("variant", name, "", "error_rate", variant.error_rate),
        _row("variant", name, "", "pareto", variant.pareto),
        _row("variant", name, "", "verdict", variant.verdict),
    ]
    if variant.cost_vs_baseline is not None:
        rows.append(_difference(name, "", "cost_per_item", variant.cost_vs_baseline))
    return rows


def _score_rows(variant: str, summary: ScoreSummary) -> list[list[Any]]:
    name = summary.scorer
    rows = [
        _row("score", variant, name, "mean", summary.mean, summary.ci_low, summary.ci_high),
        _row("score", variant, name, "pass_rate", summary.pass_rate),
        _row("score", variant, name, "pass_hat_k", summary.pass_hat_k),
        _row("score", variant, name, "pass_at_k", summary.pass_at_k),
    ]
    if summary.vs_baseline is not None:
        rows.append(_difference(variant, name, "mean", summary.vs_baseline))
    return rows


def to_json_text(report: ExperimentReport) -> str:
    return json.dumps(report.to_json(), indent=2, ensure_ascii=False, default=str)

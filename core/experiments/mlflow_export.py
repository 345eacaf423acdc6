"""Experiments as MLflow runs: one run per variant, with its scores and their intervals.

A reviewer who lives in MLflow sees each variant as a run of the MLflow experiment the
workflow runs go to, named `{experiment} · {variant}`: params say what was compared
(workflow, dataset, baseline, repeats, primary scorer), metrics carry the report's figures
(cost per item and its interval, latency, error rate, each scorer's mean with its 95 %
interval, pass rate, pass@k, pass^k, and the paired difference from the baseline with its
interval and Holm-corrected p), tags the verdict. The figures are those of
`experiment report`, computed once per experiment.

Idempotent: a variant already exported with as many cells done is skipped; one exported
while the experiment had fewer cells is replaced, so a resumed experiment's numbers catch up.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.analytics.window import window
from core.experiments.records import list_experiments
from core.experiments.report import Difference, ExperimentReport, VariantSummary, experiment_report
from core.exporters.mlflow_runs import (
    DEFAULT_EXPERIMENT,
    MAX_METRICS,
    MAX_PARAMS,
    experiment_id_for,
    mlflow_client,
    mlflow_environment,
    one_line,
)
from core.exporters.spans import PREFIX, epoch_ns
from core.exporters.summary import ExportSummary
from core.settings import data_home

EXPERIMENT_TAG = PREFIX + "experiment_id"
VARIANT_TAG = PREFIX + "variant"
CELLS_TAG = PREFIX + "cells_done"
MAX_TAG = 5000  # MLflow's limit on a tag value


@dataclass(frozen=True)
class _Prior:
    mlflow_run_id: str
    cells_done: int


def export_experiments(
    home: str | os.PathLike[str] | None = None,
    *,
    tracking_uri: str,
    experiment: str = DEFAULT_EXPERIMENT,
    days: int | None = None,
    workflow: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ExportSummary:
    """Exports the variants of every recorded experiment (of `workflow`, started in the last
    `days` whole UTC days) to an MLflow experiment (created if missing); `runs` counts the
    variants sent. Stops at the first error, with `error` set. Raises MissingExtra without
    `mlflow`."""
    folder = data_home(home)
    since = window(days).start if days else None
    summary = ExportSummary(
        destination=f"MLflow {tracking_uri}, experiment {experiment!r}",
        what="experiment variants",
    )
    records = [
        record
        for record in list_experiments(folder)
        if (workflow is None or record.workflow == workflow)
        and (since is None or record.created_at >= since)
    ]
    done = 0
    with mlflow_environment():
        client = mlflow_client(tracking_uri)
        try:
            target = experiment_id_for(client, experiment)
            prior = _exported(client, target)
            for record in records:
                report = experiment_report(record.experiment_id, folder, items_shown=0)
                for variant in report.variants:
                    key = (report.record.experiment_id, variant.name)
                    known = prior.get(key)
                    if known is not None and known.cells_done == variant.cells_done:
                        summary.skipped += 1
                        continue
                    if known is not None:
                        client.delete_run(known.mlflow_run_id)
                    _log_variant(client, target, report, variant)
                    summary.runs += 1
                done += 1
                if on_progress is not None:
                    on_progress(done, len(records))
        except Exception as exc:
            summary.error = f"could not export to {summary.destination}: {one_line(exc)}"
            summary.failed = len(records) - done
    return summary


def _exported(client: Any, experiment_id: str) -> dict[tuple[str, str], _Prior]:
    """Variants already in the MLflow experiment, by (experiment id, variant)."""
    found: dict[tuple[str, str], _Prior] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{EXPERIMENT_TAG}` IS NOT NULL",
            max_results=1000,
            page_token=token,
        )
        for run in page:
            tags = run.data.tags
            key = (tags[EXPERIMENT_TAG], tags.get(VARIANT_TAG, ""))
            found[key] = _Prior(run.info.run_id, int(tags.get(CELLS_TAG, -1)))
        token = page.token
        if not token:
            return found


def _log_variant(
    client: Any, experiment_id: str, report: ExperimentReport, variant: VariantSummary
) -> None:
    from mlflow.entities import Metric, Param

    record = report.record
    started = epoch_ns(record.created_at) // 1_000_000
    ended = epoch_ns(record.updated_at or record.created_at) // 1_000_000
    run = client.create_run(
        experiment_id,
        start_time=started,
        run_name=f"{record.name} · {variant.name}",
        tags={
            EXPERIMENT_TAG: record.experiment_id,
            VARIANT_TAG: variant.name,
            CELLS_TAG: str(variant.cells_done),
            PREFIX + "simulated": str(record.simulated).lower(),
            PREFIX + "decision": variant.decision[:MAX_TAG],
            PREFIX + "verdict": variant.verdict[:MAX_TAG],
        },
    )
    run_id = run.info.run_id
    params = [Param(k, v) for k, v in _params(report, variant).items()]
    metrics = [Metric(k, v, ended, 0) for k, v in _metrics(variant).items()]
    while params or metrics:
        client.log_batch(run_id, metrics=metrics[:MAX_METRICS], params=params[:MAX_PARAMS])
        params, metrics = params[MAX_PARAMS:], metrics[MAX_METRICS:]
    client.set_terminated(run_id, status="FINISHED", end_time=ended)


def _params(report: ExperimentReport, variant: VariantSummary) -> dict[str, str]:
    record = report.record
    return {
        "experiment": record.name,
        "experiment_id": record.experiment_id,
        "workflow": record.workflow,
        "dataset": record.dataset,
        "variant": variant.name,
        "baseline": record.baseline,
        "is_baseline": str(variant.name == record.baseline).lower(),
        "items": str(record.items),
        "repeats": str(record.repeats),
        "primary_scorer": record.primary_scorer,
        "margin": str(record.margin),
    }


def _metrics(variant: VariantSummary) -> dict[str, float]:
    """The variant's figures; a figure that does not exist (no price, no baseline) is left
    out rather than logged as 0."""
    figures: dict[str, float | None] = {
        "cells_done": variant.cells_done,
        "error_rate": variant.error_rate,
        "cost_per_item": variant.cost_per_item,
        "cost_per_item_ci_low": variant.cost_ci_low,
        "cost_per_item_ci_high": variant.cost_ci_high,
        "p50_latency_ms": variant.p50_latency_ms,
        "p95_latency_ms": variant.p95_latency_ms,
        "tokens_per_item": variant.tokens_per_item,
        "pareto_cost": float(variant.pareto),
        "pareto_latency": float(variant.pareto_latency),
    }
    figures |= _difference("cost_vs_baseline", variant.cost_vs_baseline)
    for name, score in variant.scores.items():
        prefix = f"score.{name}"
        figures |= {
            f"{prefix}.mean": score.mean,
            f"{prefix}.ci_low": score.ci_low,
            f"{prefix}.ci_high": score.ci_high,
            f"{prefix}.pass_rate": score.pass_rate,
            f"{prefix}.pass_at_k": score.pass_at_k,
            f"{prefix}.pass_hat_k": score.pass_hat_k,
        }
        figures |= _difference(f"{prefix}.vs_baseline", score.vs_baseline)
    return {k: float(v) for k, v in figures.items() if v is not None and math.isfinite(v)}


def _difference(prefix: str, change: Difference | None) -> dict[str, float | None]:
    if change is None:
        return {}
    return {
        f"{prefix}.diff": change.diff,
        f"{prefix}.ci_low": change.ci_low,
        f"{prefix}.ci_high": change.ci_high,
        f"{prefix}.p_value": change.p_value,
    }

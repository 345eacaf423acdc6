"""Experiments in MLflow: one run per variant with the report's scores and intervals, read
back through MlflowClient from a real tracking server."""

from __future__ import annotations

from pathlib import Path

import pytest
from exporter_helpers import MlflowServer

from core.demo.experiment import seed_demo_experiment
from core.experiments.mlflow_export import (
    CELLS_TAG,
    EXPERIMENT_TAG,
    VARIANT_TAG,
    export_experiments,
)
from core.experiments.report import experiment_report
from core.exporters.summary import ExportSummary


def test_each_variant_becomes_an_mlflow_run_with_its_scores(
    mlflow_server: MlflowServer, home: Path
) -> None:
    outcome = seed_demo_experiment(home)
    assert outcome is not None
    report = experiment_report(outcome.experiment_id, home, items_shown=0)
    name = "experiments-export"

    def export() -> ExportSummary:
        return export_experiments(home, tracking_uri=mlflow_server.url, experiment=name)

    summary = export()
    assert summary.ok, summary.error
    assert summary.runs == len(report.variants)
    assert summary.line().startswith(f"{len(report.variants)} experiment variants exported")

    client = mlflow_server.client()
    target = client.get_experiment_by_name(name).experiment_id
    runs = client.search_runs([target], filter_string=f"tags.`{EXPERIMENT_TAG}` IS NOT NULL")
    by_variant = {run.data.tags[VARIANT_TAG]: run for run in runs}
    assert set(by_variant) == {v.name for v in report.variants}
    for variant in report.variants:
        run = by_variant[variant.name]
        assert run.info.status == "FINISHED"
        assert run.data.params["baseline"] == report.baseline
        assert run.data.tags[CELLS_TAG] == str(variant.cells_done)
        metrics = run.data.metrics
        assert metrics["cost_per_item"] == pytest.approx(variant.cost_per_item)
        for scorer, score in variant.scores.items():
            if score.mean is None:
                continue
            assert metrics[f"score.{scorer}.mean"] == pytest.approx(score.mean)
            assert metrics[f"score.{scorer}.ci_low"] == pytest.approx(score.ci_low)
            assert metrics[f"score.{scorer}.ci_high"] == pytest.approx(score.ci_high)
            change = score.vs_baseline
            if variant.name == report.baseline or change is None:
                assert f"score.{scorer}.vs_baseline.diff" not in metrics
            else:
                assert metrics[f"score.{scorer}.vs_baseline.diff"] == pytest.approx(change.diff)
                assert metrics[f"score.{scorer}.vs_baseline.p_value"] == pytest.approx(
                    change.p_value
                )

    # Exporting again sends nothing new.
    again = export()
    assert (again.runs, again.skipped) == (0, len(report.variants))
    runs = client.search_runs([target], filter_string=f"tags.`{EXPERIMENT_TAG}` IS NOT NULL")
    assert len(runs) == len(report.variants)

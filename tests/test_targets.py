"""Targets a workflow declares (`workflow.targets`): judged by `check` with flags that win,
and shown on the app's Home and Profile pages."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import NOW, ROOT, make_node, make_run, write_rows
from streamlit.testing.v1 import AppTest

from core.analytics.check import check
from core.analytics.targets import target_status
from core.cli import main

ALPHA = """\
workflow:
  name: alpha
  targets:
    min_success_rate: 0.75
    min_cache_hit_rate: 0.5
    max_node_time_share: 0.35
    max_node_cost_share: 0.9
nodes:
  - {name: a, prompt: hi}
  - {name: b, prompt: hi}
  - {name: c, prompt: hi}
  - {name: d, prompt: hi, cache: {enabled: true}}
"""
BETA = "workflow: {name: beta}\nnodes: [{name: a, prompt: hi}]\n"


@pytest.fixture
def targeted(home: Path) -> Path:
    """alpha: 10 runs, 8 succeeded (80 %); node a takes 40 % of node time; node d's cache hit
    3 times in 10 (30 %). beta: 5 earlier runs, all fine, no targets."""
    runs, nodes = [], []
    for i in range(10):
        at = NOW - timedelta(minutes=i + 1)
        run_id = f"alpha{i}"
        runs.append(
            make_run(
                run_id,
                at,
                0.004,
                workflow="alpha",
                workflow_hash="alpha",
                status=("failed" if i < 2 else "success"),
            )
        )
        for node, ms in (("a", 400.0), ("b", 200.0), ("c", 200.0), ("d", 200.0)):
            hit = node == "d" and i < 3
            nodes.append(
                make_node(
                    run_id, node, at, workflow="alpha", duration_ms=ms, cost_usd=0.001,
                    cache_enabled=node == "d", cache_hit=hit,
                )
            )  # fmt: skip
    for i in range(5):
        at = NOW - timedelta(hours=2, minutes=i)
        runs.append(make_run(f"beta{i}", at, 0.001, workflow="beta", workflow_hash="beta"))
        nodes.append(make_node(f"beta{i}", "a", at, workflow="beta"))
    seen = NOW - timedelta(days=1)
    versions = [
        {"workflow_hash": name, "workflow": name, "source": source, "first_seen": seen}
        for name, source in (("alpha", ALPHA), ("beta", BETA))
    ]
    write_rows(home, runs, nodes, versions)
    return home


def _metrics(report: object) -> dict[str, object]:
    return {m.label: m for m in report.metrics}


def test_targets_set_per_workflow_limits_beside_the_built_in_rules(targeted: Path) -> None:
    metrics = _metrics(check(targeted))

    overall = metrics["success rate"]  # 13 of 15 runs, against the built-in 95 %
    assert (overall.status, overall.threshold, overall.workflow) == ("FAIL", 0.95, None)
    mine = metrics["success rate [alpha]"]
    assert (mine.status, mine.value, mine.threshold) == ("PASS", 0.8, 0.75)
    assert mine.detail == "8 of 10 runs succeeded; limit from targets.min_success_rate"
    cache = metrics["cache hit rate [alpha]"]
    assert (cache.status, cache.value, cache.threshold, cache.workflow) == (
        "FAIL",
        0.3,
        0.5,
        "alpha",
    )
    # A target is judged as given: the built-in rule would allow twice an even share (50 %).
    time_share = metrics["node time share [alpha]"]
    assert (time_share.status, time_share.value, time_share.threshold) == ("FAIL", 0.4, 0.35)
    assert time_share.detail == "largest: a; limit from targets.max_node_time_share"
    assert metrics["node cost share [alpha]"].status == "PASS"
    assert "success rate [beta]" not in metrics  # beta declares no targets
    assert metrics["node time share [beta]"].source == ""


def test_over_one_workflow_its_targets_set_the_overall_rates(targeted: Path) -> None:
    metrics = _metrics(check(targeted, workflow="alpha"))

    success = metrics["success rate"]
    assert (success.status, success.threshold, success.workflow) == ("PASS", 0.75, "alpha")
    assert success.source == "targets.min_success_rate"
    assert metrics["cache hit rate"].status == "FAIL"
    assert metrics["error rate"].source == ""  # no target for it: the built-in 5 %


def test_command_line_flags_win_over_targets(
    targeted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["check", "-w", "alpha", "--min-success-rate", "0.9", "--max-node-time-share", "0.5",
         "--min-cache-hit-rate", "0.2", "--format", "json"]
    )  # fmt: skip

    assert code == 1
    found = {m["name"]: m for m in json.loads(capsys.readouterr().out)["metrics"]}
    assert (found["success_rate"]["status"], found["success_rate"]["threshold"]) == ("FAIL", 0.9)
    assert found["success_rate"]["source"] == "--min-success-rate"
    assert found["node_time_share"]["status"] == "PASS"
    assert found["cache_hit_rate"]["detail"].endswith("limit from --min-cache-hit-rate")


def test_a_rate_flag_outside_zero_to_one_is_refused(
    targeted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check", "--min-success-rate", "95"])

    assert exited.value.code == 2
    assert "expected a fraction from 0 to 1 (0.95 = 95 %), got '95'" in capsys.readouterr().err


def test_a_target_out_of_range_is_a_located_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(ALPHA.replace("min_success_rate: 0.75", "min_success_rate: 95"))

    assert main(["validate", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}:4:")
    assert "min_success_rate" in line


def test_target_status_keeps_what_workflows_promised(targeted: Path) -> None:
    status = target_status(targeted)

    assert status.workflows == ["alpha"]
    assert sorted((m.name, m.status) for m in status.judged) == [
        ("cache_hit_rate", "FAIL"),
        ("node_cost_share", "PASS"),
        ("node_time_share", "FAIL"),
        ("success_rate", "PASS"),
    ]
    assert [m.name for m in status.violations] == ["cache_hit_rate", "node_time_share"]
    assert target_status(targeted, workflow="beta").judged == []


def _page(path: Path) -> AppTest:
    page = AppTest.from_file(str(path), default_timeout=60)
    page.run()
    assert not page.exception
    return page


def test_home_shows_the_violations(targeted: Path) -> None:
    page = _page(ROOT / "app.py")

    (alert,) = page.error
    assert alert.value == "2 of 4 targets violated over the last 7 days (alpha)."
    table = next(d.value for d in page.dataframe if "Target" in d.value.columns)
    assert table.to_dict("records") == [
        {
            "Workflow": "alpha",
            "Target": "cache hit rate",
            "Value": "30.0%",
            "Limit": ">= 50.0%",
            "Detail": "3 of 10 cache-enabled executions were hits; limit from "
            "targets.min_cache_hit_rate",
        },
        {
            "Workflow": "alpha",
            "Target": "node time share",
            "Value": "40.0%",
            "Limit": "<= 35.0%",
            "Detail": "largest: a; limit from targets.max_node_time_share",
        },
    ]


def test_profile_shows_the_chosen_workflows_targets(targeted: Path) -> None:
    page = _page(ROOT / "pages" / "4_Profile.py")

    assert page.selectbox[0].value == "alpha"  # the latest run's workflow
    (alert,) = page.error
    assert alert.value.startswith("2 of 4 targets violated")

    page.selectbox[0].select("beta").run()
    assert not page.error
    assert any("No `targets:` to judge for beta" in c.value for c in page.caption)

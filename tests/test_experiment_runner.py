"""Running experiments as users do, through the command line: JSON shapes, tags, repeats as
fresh samples, a killed process resumed without a missing or doubled cell, errored cells run
again, the whole-experiment budget, and every refusal before anything is spent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import ROOT, cli, quiz_experiment
from openai_server import OpenAIServer

from core.engine import arun_workflow
from core.engine.budget import Budget
from core.engine.llm_node import SHARED_BUDGET
from core.providers.base import Reference
from core.telemetry import get_store
from core.workflow import load_workflow

CELLS = 6 * 2 * 2  # quiz: six items, two variants, two repeats


def run_json(*args: str, home: Path) -> dict:
    done = cli("experiment", "run", *args, "--json", home=home)
    assert "Traceback" not in done.stderr, done.stderr
    return {"exit": done.returncode, **json.loads(done.stdout)}


def test_run_list_and_report_print_the_documented_json(home: Path, tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    outcome = run_json(str(path), "--simulate", home=home)
    assert outcome["exit"] == 0
    assert outcome["status"] == "finished"
    assert (outcome["cells"], outcome["cells_done"]) == (CELLS, CELLS)
    experiment_id = outcome["experiment_id"]
    assert experiment_id.startswith("quiz_models-")

    listed = json.loads(cli("experiment", "list", "--format", "json", home=home).stdout)
    assert [e["experiment_id"] for e in listed] == [experiment_id]
    assert {"experiment_id", "name", "status", "cells", "cells_done"} <= set(listed[0])
    assert (listed[0]["name"], listed[0]["cells_done"]) == ("quiz_models", CELLS)

    done = cli("experiment", "report", experiment_id, "--format", "json", home=home)
    report = json.loads(done.stdout)
    assert {"experiment_id", "cells", "cells_done", "baseline", "variants"} <= set(report)
    assert report["baseline"] == "big" and report["cells_done"] == CELLS
    names = [v["name"] for v in report["variants"]]
    assert names == ["big", "small"]
    for variant in report["variants"]:
        assert {"name", "cost_per_item", "p95_latency_ms", "pareto", "scores"} <= set(variant)
        assert isinstance(variant["pareto"], bool)
        exact = variant["scores"]["exact"]
        assert {"mean", "ci_low", "ci_high", "pass_rate"} <= set(exact)
        assert exact["ci_low"] <= exact["mean"] <= exact["ci_high"]
        if variant["name"] == "big":
            assert "vs_baseline" not in exact
        else:
            assert {"diff", "ci_low", "ci_high", "p_value"} <= set(exact["vs_baseline"])
    # The experiment's name finds its latest run too, and every format prints.
    for fmt in ("text", "csv", "html"):
        done = cli("experiment", "report", "quiz_models", "--format", fmt, home=home)
        assert done.returncode == 0 and done.stdout.strip(), done.stderr
    unknown = cli("experiment", "report", "quiz_modles", home=home)
    assert unknown.returncode == 2
    assert "no experiment 'quiz_modles'; did you mean 'quiz_models'?" in unknown.stderr


def test_every_cell_is_an_ordinary_tagged_run_with_its_scores(home: Path, tmp_path: Path) -> None:
    outcome = run_json(str(quiz_experiment(tmp_path)), "--simulate", home=home)
    experiment_id = outcome["experiment_id"]
    store = get_store(home)
    runs = store.query_df("SELECT run_id, experiment, variant, tags, simulated FROM runs")
    assert len(runs) == CELLS and runs.simulated.all()
    assert set(runs.experiment) == {experiment_id} and set(runs.variant) == {"big", "small"}
    tags = [json.loads(t) for t in runs.tags]
    assert all(t["experiment"] == experiment_id for t in tags)
    cells = {(t["item"], t["variant"], t["repeat"]) for t in tags}
    assert len(cells) == CELLS  # one run per (item, variant, repeat)
    scores = store.query(
        "SELECT scorer, count(*), count(DISTINCT run_id) FROM experiment_scores GROUP BY ALL"
        " ORDER BY scorer"
    )
    assert scores == [("exact", CELLS, CELLS), ("quick", CELLS, CELLS)]
    (joined,) = store.query(
        "SELECT count(*) FROM experiment_cells c JOIN runs r USING (run_id)"
        " WHERE r.variant = c.variant"
    )[0]
    assert joined == CELLS


def test_repeats_are_fresh_samples_and_only_repeat_zero_uses_the_cache(
    home: Path, tmp_path: Path
) -> None:
    path = quiz_experiment(tmp_path, repeats=3)
    workflow = tmp_path / "quiz.yaml"
    workflow.write_text(workflow.read_text() + "    cache: {enabled: true}\n")
    run_json(str(path), "--simulate", home=home)
    second = run_json(str(path), "--simulate", home=home)["experiment_id"]
    rows = get_store(home).query_df(
        "SELECT json_extract_string(r.tags, '$.repeat') AS repeat, n.cache_hit, n.request_hash,"
        " json_extract_string(r.tags, '$.item') AS item, r.variant"
        " FROM node_runs n JOIN runs r USING (run_id) WHERE r.experiment = ?",
        [second],
    )
    assert rows[rows.repeat == "0"].cache_hit.all()  # the same requests as the first run
    assert not rows[rows.repeat != "0"].cache_hit.any()
    per_cell = rows.groupby(["item", "variant"]).request_hash.nunique()
    assert (per_cell == 3).all()  # each repeat is a request of its own


def _wait_for(home: Path, sql: str, at_least: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if get_store(home).query(sql)[0][0] >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"never reached {at_least}: {sql}")


def _start(path: Path, home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "core", "experiment", "run", str(path), "--simulate"],
        cwd=ROOT,
        env={**os.environ, "CONFIGURABLE_AGENTS_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_experiment_resumes_exactly_the_missing_cells(home: Path, tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path, rows=12, latency_ms=300)
    path.write_text(path.read_text().replace("concurrency: 4", "concurrency: 2"))
    total = 12 * 2 * 2
    process = _start(path, home)
    _wait_for(home, "SELECT count(*) FROM experiment_cells", 4, process)
    process.kill()
    process.wait(timeout=30)
    store = get_store(home)
    assert store.flush()
    ((experiment_id, status),) = store.query("SELECT experiment_id, status FROM experiments")
    assert status == "interrupted"
    (done_before,) = store.query("SELECT count(*) FROM experiment_cells")[0]
    assert 4 <= done_before < total

    outcome = run_json(str(path), "--simulate", "--resume", experiment_id, home=home)
    assert outcome["exit"] == 0 and outcome["status"] == "finished"
    assert outcome["cells_done"] == total
    counts = store.query(
        "SELECT count(*), count(DISTINCT (item, variant, repeat)) FROM experiment_cells"
    )
    assert counts == [(total, total)]  # none missing, none twice
    (resumed_runs,) = store.query(
        "SELECT count(*) FROM runs WHERE experiment = ? AND status = 'success'", [experiment_id]
    )[0]
    assert resumed_runs == total
    report = json.loads(
        cli("experiment", "report", experiment_id, "--format", "json", home=home).stdout
    )
    assert report["cells_done"] == total and report["status"] == "finished"


def test_ctrl_c_cancels_and_says_how_to_resume(home: Path, tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path, rows=12, latency_ms=300)
    path.write_text(path.read_text().replace("concurrency: 4", "concurrency: 1"))
    process = _start(path, home)
    _wait_for(home, "SELECT count(*) FROM experiment_cells", 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "cancelled" in stderr and "--resume quiz_models-" in stderr
    assert "Traceback" not in stderr
    assert get_store(home).query("SELECT status FROM experiments") == [("cancelled",)]


def test_rerun_failed_runs_again_only_the_cells_that_errored(home: Path, tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    path.write_text(
        path.read_text().replace(
            "    workflow: {llm: {model: gpt-4o-mini}}",
            "    workflow: {retries: 0, llm: {model: gpt-4o-mini, simulate: {error_rate: 0.5}}}",
        )
    )
    first = run_json(str(path), "--simulate", home=home)
    failed = first["cells_failed"]
    assert first["exit"] == 0 and 0 < failed < CELLS // 2
    store = get_store(home)
    before = store.query_df("SELECT run_id, status FROM experiment_cells")
    again = run_json(str(path), "--simulate", "--rerun-failed", first["experiment_id"], home=home)
    assert again["cells_done"] == CELLS
    after = store.query_df("SELECT run_id, status FROM experiment_cells")
    assert len(after) == CELLS + failed  # one new row per errored cell, no other
    kept = before[before.status == "success"].run_id
    assert set(kept) <= set(after.run_id)
    (runs,) = store.query("SELECT count(*) FROM runs")[0]
    assert runs == CELLS + failed


def test_max_cost_spans_the_whole_experiment_and_resume_finishes(
    home: Path, tmp_path: Path
) -> None:
    path = quiz_experiment(tmp_path)
    path.write_text(path.read_text().replace("baseline: big", "baseline: big\nmax_cost: 0.001"))
    outcome = run_json(str(path), "--simulate", home=home)
    assert outcome["exit"] == 3 and outcome["status"] == "budget_exceeded"
    assert "max_cost $0.001 reached" in outcome["error"]
    store = get_store(home)
    (spent,) = store.query("SELECT sum(cost_usd) FROM runs")[0]
    assert 0 < spent <= 0.001  # reserved before each call: never over
    assert 0 < outcome["cells_done"] < CELLS
    refused = store.query("SELECT error FROM runs WHERE status = 'budget_exceeded'")
    assert refused and all(SHARED_BUDGET in error for (error,) in refused)
    path.write_text(path.read_text().replace("max_cost: 0.001", "max_cost: 1.0"))
    resumed = run_json(str(path), "--simulate", "--resume", outcome["experiment_id"], home=home)
    assert resumed["status"] == "finished" and resumed["cells_done"] == CELLS


def test_resume_refuses_another_design_or_mode(home: Path, tmp_path: Path) -> None:
    path = quiz_experiment(tmp_path)
    experiment_id = run_json(str(path), "--simulate", home=home)["experiment_id"]
    real = cli("experiment", "run", str(path), "--resume", experiment_id, home=home)
    assert real.returncode == 2
    assert "ran simulated calls: --resume it with --simulate" in real.stderr
    dataset = tmp_path / "quiz.jsonl"
    dataset.write_text(dataset.read_text().replace("Paris", "Lyon"))
    changed = cli(
        "experiment", "run", str(path), "--simulate", "--resume", experiment_id, home=home
    )
    assert changed.returncode == 2 and "no longer describes experiment" in changed.stderr


def test_a_judge_without_its_key_stops_the_experiment_before_any_call(
    home: Path, tmp_path: Path
) -> None:
    extra = (
        "  - name: polite\n    type: llm_judge\n    node: answer\n    rubric: Polite?\n"
        "    llm: {provider: openai, model: gpt-4o-mini}\n"
    )
    path = quiz_experiment(tmp_path, extra=extra)
    workflow = tmp_path / "quiz.yaml"
    workflow.write_text(workflow.read_text().replace("provider: openai", "provider: simulated"))
    done = cli("experiment", "run", str(path), home=home)
    assert done.returncode == 2
    assert "scorer 'polite' (llm_judge): OPENAI_API_KEY is not set" in done.stderr
    assert "--simulate" in done.stderr and "Traceback" not in done.stderr
    assert get_store(home).query("SELECT count(*) FROM experiments") == [(0,)]
    assert get_store(home).query("SELECT count(*) FROM runs") == [(0,)]


def test_dry_run_prices_the_runs_and_the_judge_calls(home: Path, tmp_path: Path) -> None:
    extra = (
        "  - name: polite\n    type: llm_judge\n    node: answer\n    rubric: Polite?\n"
        "    llm: {provider: openai, model: gpt-4o-mini}\n"
    )
    path = quiz_experiment(tmp_path, extra=extra)
    done = cli(
        "experiment",
        "run",
        str(path),
        "--simulate",
        "--dry-run",
        "--estimate-cost",
        "--json",
        home=home,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["cells"] == CELLS and found["cost_usd"] > 0
    assert found["cost_low"] <= found["cost_usd"] <= found["cost_high"]
    (judge,) = found["judges"]
    assert judge["calls"] == CELLS and judge["total"]["cost_usd"] > 0
    per_variant = {v["name"]: v["total"]["cost_usd"] for v in found["variants"]}
    assert per_variant["small"] < per_variant["big"]  # gpt-4o-mini is cheaper than gpt-4o
    assert get_store(home).query("SELECT count(*) FROM runs") == [(0,)]
    text = cli(
        "experiment", "run", str(path), "--simulate", "--dry-run", "--estimate-cost", home=home
    ).stdout
    assert "judge polite (openai/gpt-4o-mini)" in text and "Total:" in text


async def test_a_shared_budget_spans_runs(home: Path, tmp_path: Path) -> None:
    workflow = load_workflow(quiz_experiment(tmp_path).with_name("quiz.yaml"))
    shared = Budget(None, 0.0006)
    first = await arun_workflow(
        workflow, {"question": "Hi?"}, simulate=True, home=home, shared_budget=shared
    )
    assert first.status == "success"
    second = await arun_workflow(
        workflow, {"question": "Hi?"}, simulate=True, home=home, shared_budget=shared
    )
    assert second.status == "budget_exceeded"
    assert SHARED_BUDGET in (second.error or "")


async def test_samples_and_references_never_reach_a_real_provider(
    home: Path, tmp_path: Path, openai_server: OpenAIServer
) -> None:
    source = tmp_path / "real.yaml"
    source.write_text(
        f"workflow:\n  name: real\n  llm: {{provider: openai, model: gpt-4o-mini, api_base: "
        f'"{openai_server.base_url}"}}\ninputs: {{q: string}}\nnodes:\n'
        "  - name: answer\n    prompt: 'Q: {inputs.q}'\n"
    )
    workflow = load_workflow(source)
    plain = await arun_workflow(workflow, {"q": "x"}, home=home)
    sampled = await arun_workflow(
        workflow,
        {"q": "x"},
        home=home,
        sample=3,
        references={"answer": Reference("the answer", ("a", "b"), "item-1")},
    )
    assert plain.status == sampled.status == "success"
    first, second = (request.json for request in openai_server.requests)
    assert first == second  # the provider sees the same call either way
    assert "the answer" not in json.dumps(second)

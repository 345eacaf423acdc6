"""Critical paths on known DAGs, and the profile report on known telemetry."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from helpers import write_rows

from core.analytics.critical_path import critical_path
from core.analytics.profile import ProfileError, profile
from core.analytics.profile_render import render
from core.cli import main
from core.workflow import parse_workflow
from core.workflow.graph import Graph

DIAMOND = """
workflow: {name: diamond, llm: {provider: openai, model: gpt-4o}}
nodes:
  - {name: a, prompt: start}
  - {name: b, prompt: "use {a}"}
  - {name: c, prompt: "use {a} too", llm: {model: my-model}}
  - {name: d, prompt: "only {b}"}
edges:
  - {from: a, to: b}
  - {from: a, to: c}
  - {from: b, to: d}
  - {from: c, to: d}
"""


def test_critical_path_of_a_diamond() -> None:
    graph = Graph.build(["a", "b", "c", "d"], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])
    schedule = critical_path(graph, {"a": 100, "b": 200, "c": 1000, "d": 100})
    assert schedule.path == ("a", "c", "d")
    assert schedule.length_ms == 1200
    assert schedule.slack == {"a": 0, "b": 800, "c": 0, "d": 0}
    assert schedule.earliest_start == {"a": 0, "b": 100, "c": 100, "d": 1100}


def test_critical_path_of_a_chain_and_of_independent_nodes() -> None:
    chain = critical_path(Graph.build(["x", "y", "z"], None), {"x": 5, "y": 7, "z": 1})
    assert (chain.path, chain.length_ms) == (("x", "y", "z"), 13)
    assert set(chain.slack.values()) == {0}
    loose = critical_path(Graph.build(["x", "y", "z"], []), {"x": 5, "y": 7, "z": 1})
    assert (loose.path, loose.length_ms) == (("y",), 7)
    assert loose.slack == {"x": 2, "y": 0, "z": 6}


def test_nodes_that_never_ran_take_no_time() -> None:
    schedule = critical_path(Graph.build(["x", "y"], None), {"x": 10})
    assert (schedule.path, schedule.length_ms) == (("x", "y"), 10)


def _record(
    home: Path, runs: list[dict[str, dict[str, float | str | None]]], simulated: bool = False
) -> list[str]:
    """Writes runs of DIAMOND; each run maps node -> {duration, cost, hash, ...}. Simulated
    runs come an hour after real ones."""
    workflow = parse_workflow(DIAMOND, "diamond.yaml")
    start = datetime(2026, 11, 1, 12 + simulated, 0, 0)
    ids, run_rows, node_rows = [], [], []
    for index, nodes in enumerate(runs):
        run_id = f"{'sim' if simulated else 'run'}{index:03d}"
        ids.append(run_id)
        began = start + timedelta(minutes=index)
        wall = critical_path(
            workflow.graph, {n: float(v["duration"]) for n, v in nodes.items()}
        ).length_ms
        run_rows.append(
            {
                "run_id": run_id,
                "workflow": "diamond",
                "workflow_hash": workflow.hash,
                "started_at": began,
                "finished_at": began + timedelta(milliseconds=wall),
                "duration_ms": wall,
                "status": "success",
                "simulated": simulated,
            }
        )
        for name, values in nodes.items():
            node_rows.append(
                {
                    "run_id": run_id,
                    "node": name,
                    "node_type": "llm",
                    "provider": "openai",
                    "model": "my-model" if name == "c" else "gpt-4o",
                    "started_at": began,
                    "duration_ms": values["duration"],
                    "input_tokens": values.get("in", 100),
                    "output_tokens": values.get("out", 50),
                    "cost_usd": values.get("cost", 0.001) if name != "c" else None,
                    "cache_hit": False,
                    "attempts": values.get("attempts", 1),
                    "status": "success",
                    "workflow": "diamond",
                    "workflow_hash": workflow.hash,
                    "simulated": simulated,
                    "request_hash": values.get("hash", f"{run_id}-{name}"),
                }
            )
    version = {
        "workflow_hash": workflow.hash,
        "workflow": "diamond",
        "workflow_file": "diamond.yaml",
        "source": DIAMOND,
        "first_seen": start,
    }
    write_rows(home, run_rows, node_rows, [version])
    return ids


def _diamond_run(d_ms: float = 50.0, **extra: dict) -> dict[str, dict]:
    nodes = {
        "a": {"duration": 100.0, "cost": 0.002},
        "b": {"duration": 200.0, "cost": 0.01, "hash": "same-request"},
        "c": {"duration": 1000.0},
        "d": {"duration": d_ms, "cost": 0.004},
    }
    for name, values in extra.items():
        nodes[name].update(values)
    return nodes


def test_profile_of_one_run_with_history(home: Path) -> None:
    ids = _record(home, [_diamond_run() for _ in range(5)] + [_diamond_run(d_ms=100.0)])
    found = profile(home, run=ids[-1][:6] + ids[-1][6:])
    nodes = {n.name: n for n in found.nodes}

    assert [n.name for n in found.nodes] == ["a", "b", "c", "d"]
    assert found.runs == [ids[-1]]
    assert found.duration_ms == 1200
    assert found.critical_path == ["a", "c", "d"] and found.critical_path_ms == 1200
    assert nodes["c"].status == "BOTTLENECK"
    assert nodes["c"].reasons == ["83% of run time", "2.9x average node", "on the critical path"]
    assert nodes["d"].status == "SLOW"  # 100 ms against a p95 of 50 ms over five calls
    assert nodes["a"].status == nodes["b"].status == "OK"
    assert nodes["b"].slack_ms == 800 and not nodes["b"].on_critical_path

    assert nodes["c"].cost_usd is None and found.unpriced_calls == 1
    assert found.cost_usd == pytest.approx(0.002 + 0.01 + 0.004)
    assert found.most_expensive is nodes["b"]
    assert found.slowest is nodes["c"]
    assert found.average_parallelism == pytest.approx(1400 / 1200)
    assert found.max_parallelism == 2

    # Advice cites the runs profiled: one run's single call of b repeated nothing, though
    # the history holds five repeats of it; profiling all six runs finds them.
    assert not [r for r in nodes["b"].recommendations if r.startswith("Enable cache")]
    every = {n.name: n for n in profile(home, workflow=found.workflow, last=6).nodes}
    assert [r for r in every["b"].recommendations if r.startswith("Enable cache")] == [
        "Enable cache: 5 of 6 calls in the 6 runs profiled repeated an identical request; "
        "caching would have saved $0.050"
    ]
    assert any(r.startswith("Model: the same tokens on") for r in nodes["b"].recommendations)
    assert found.recommendations == [
        "Parallelism: d does not read c's output, yet the edge c -> d makes it wait; "
        "without it the run could be 100ms shorter"
    ]


def test_profile_of_the_last_runs_and_rendering(home: Path) -> None:
    _record(home, [_diamond_run(b={"attempts": 2}) for _ in range(4)])
    found = profile(home, workflow="diamond", last=3)
    assert len(found.runs) == 3
    nodes = {n.name: n for n in found.nodes}
    assert nodes["b"].calls == 3 and nodes["b"].retried == 3
    assert any(r.startswith("Retries: 3 of 3 calls") for r in nodes["b"].recommendations)
    text = render(found)
    assert "c: [openai/my-model]" in text
    assert "Status: ❌ BOTTLENECK (87% of run time" in text
    assert "Total Duration: 1,150ms" in text
    assert "Most Expensive Node: b (62% of cost)" in text
    assert "Slowest Node: c (87% of duration)" in text
    assert "Critical Path: a -> c -> d (1,150ms)" in text
    assert "Unpriced calls: 3" in text


def test_profile_without_history_or_with_unknown_ids(home: Path) -> None:
    with pytest.raises(ProfileError, match="no runs recorded yet"):
        profile(home)
    _record(home, [_diamond_run()])
    with pytest.raises(ProfileError, match="no finished run with id 'zzz'"):
        profile(home, run="zzz")
    with pytest.raises(ProfileError, match="no runs of workflow 'nope'; known: diamond"):
        profile(home, workflow="nope")


def test_profile_report_cli(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile-report"]) == 0
    assert "no runs recorded yet" in capsys.readouterr().out
    _record(home, [_diamond_run(), _diamond_run()])
    assert main(["profile-report", "--workflow", "diamond", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["critical_path"] == ["a", "c", "d"]
    assert {n["name"]: n["status"] for n in document["nodes"]}["c"] == "BOTTLENECK"


def test_profile_of_real_or_simulated_runs_alone(home: Path, capsys) -> None:
    with pytest.raises(ProfileError, match="no simulated runs recorded yet"):
        profile(home, simulated=True)
    real = _record(home, [_diamond_run() for _ in range(5)])  # b repeats one request
    unique = [_diamond_run(d_ms=400.0, b={"hash": f"s{i}"}) for i in range(2)]
    simulated = _record(home, unique, simulated=True)
    assert len(profile(home, workflow="diamond").runs) == 7
    only_real = profile(home, workflow="diamond", simulated=False)
    assert (only_real.runs, only_real.simulated_runs) == (real[::-1], "exclude")
    assert {n.name: n.duration_ms for n in only_real.nodes}["d"] == 50.0
    only_simulated = profile(home, simulated=True)
    assert only_simulated.runs == simulated[::-1]
    nodes = {n.name: n for n in only_simulated.nodes}
    # Judged against simulated history only (none yet), and without the real repeats.
    assert nodes["d"].history_calls == 0
    assert not any(r.startswith("Enable cache") for r in nodes["b"].recommendations)
    one = profile(home, run=real[-1], simulated=False)
    assert {n.name: n for n in one.nodes}["d"].history_calls == 4

    assert main(["profile-report", "--simulated", "only"]) == 0
    assert capsys.readouterr().out.startswith("Profile: diamond (2 simulated runs, means per run)")
    assert main(["profile-report", "--run", real[0], "--simulated", "only"]) == 2
    assert "no finished simulated run with id 'run000'" in capsys.readouterr().err

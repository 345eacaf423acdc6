"""`reprice` and `check` on known telemetry rows, through the CLI as a user or CI calls them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import D1, NOW, litellm_cost, make_node, make_run, write_rows

from core.analytics.check import check
from core.analytics.reprice import reprice
from core.analytics.window import window
from core.cli import main

DIGEST = """\
workflow:
  name: digest
  targets: {max_run_cost: 0.005, max_run_latency_ms: 2000}
nodes:
  - name: research
    prompt: hi
pricing:
  cheapo: {input_per_million: 1, output_per_million: 2}
"""


def version(name: str, source: str, age_days: float = 1) -> dict:
    return {
        "workflow_hash": f"{name}-{age_days}",
        "workflow": name,
        "workflow_file": f"{name}.yaml",
        "source": source,
        "first_seen": NOW - timedelta(days=age_days),
    }


# ----------------------------------------------------------------------------- reprice


@pytest.fixture
def calls(home: Path) -> Path:
    """digest: research 2 calls (4,000 in / 2,000 out, $0.08) and a cache hit, critique 1 call
    (1,000 / 500, $0.01), draft 1 call of an unpriced model; faq: one azure gpt-4o call and
    one google gemini call; one simulated research call; one research call 40 days ago."""
    at = D1
    nodes = [
        make_node("r1", "research", at, input_tokens=2000, output_tokens=1000, cost_usd=0.04),
        make_node("r2", "research", at, input_tokens=2000, output_tokens=1000, cost_usd=0.04),
        make_node("r2", "critique", at, input_tokens=1000, output_tokens=500, cost_usd=0.01),
        make_node("r3", "research", at, cache_hit=True, attempts=0, saved_cost_usd=0.04),
        make_node(
            "r4",
            "draft",
            at,
            provider="acme",
            model="mystery-1",
            cost_usd=None,
            input_tokens=100,
            output_tokens=100,
        ),
        make_node(
            "f1",
            "answer",
            at,
            workflow="faq",
            provider="azure",
            input_tokens=500,
            output_tokens=500,
            cost_usd=0.02,
        ),
        make_node(
            "f2",
            "answer",
            at,
            workflow="faq",
            provider="google",
            model="gemini-2.0-flash",
            input_tokens=100,
            output_tokens=100,
            cost_usd=0.001,
        ),
        make_node(
            "s1",
            "research",
            at,
            simulated=True,
            input_tokens=1000,
            output_tokens=1000,
            cost_usd=0.5,
        ),
        make_node("o1", "research", NOW - timedelta(days=40), input_tokens=9, cost_usd=9.0),
    ]
    write_rows(home, nodes=nodes, workflows=[version("digest", DIGEST)])
    return home


def test_reprice_math_per_node_and_section(calls: Path) -> None:
    [swap] = reprice(calls, swaps=[("gpt-4o", "cheapo")], workflow="digest", days=30).swaps
    assert (swap.price_source, swap.input_per_million, swap.output_per_million) == (
        "pricing:cheapo",
        1.0,
        2.0,
    )
    real = swap.real.total
    assert (real.calls, real.input_tokens, real.output_tokens) == (3, 5000, 2500)
    assert real.actual_cost_usd == pytest.approx(0.09)
    assert real.repriced_cost_usd == pytest.approx(0.01)
    assert real.difference_usd == pytest.approx(-0.08)
    assert real.difference_pct == pytest.approx(-0.08 / 0.09)
    rows = {r.node: r for r in swap.real.by_node}
    assert list(rows) == ["research", "critique"]
    assert rows["research"].repriced_cost_usd == pytest.approx(0.008)
    assert rows["research"].difference_pct == pytest.approx(-0.9)
    assert rows["critique"].difference_usd == pytest.approx(-0.008)
    simulated = swap.simulated.total
    assert (simulated.calls, simulated.actual_cost_usd) == (1, 0.5)
    assert simulated.repriced_cost_usd == pytest.approx(0.003)


def test_old_model_with_and_without_provider(calls: Path) -> None:
    bare, prefixed, gemini = reprice(
        calls,
        swaps=[
            ("gpt-4o", "gpt-4o-mini"),
            ("openai/gpt-4o", "openai/gpt-4o-mini"),
            ("gemini/gemini-2.0-flash", "gpt-4o-mini"),  # recorded as provider google
        ],
    ).swaps
    assert {(r.workflow, r.node) for r in bare.real.by_node} == {
        ("digest", "research"),
        ("digest", "critique"),
        ("faq", "answer"),
    }
    assert bare.real.total.calls == 4
    assert prefixed.real.total.calls == 3  # not the azure call
    mini = litellm_cost("openai", "gpt-4o-mini", 5000, 2500)  # linear: calls add up
    assert prefixed.real.total.repriced_cost_usd == pytest.approx(mini, rel=1e-12)
    assert (gemini.real.total.calls, gemini.real.total.actual_cost_usd) == (1, 0.001)


def test_unpriced_calls_are_repriced_but_not_compared(calls: Path) -> None:
    [swap] = reprice(calls, swaps=[("mystery-1", "cheapo")], workflow="digest").swaps
    total = swap.real.total
    assert (total.calls, total.unpriced_calls, total.actual_cost_usd) == (1, 1, None)
    assert total.repriced_cost_usd == pytest.approx(0.0003)
    assert (total.difference_usd, total.difference_pct) == (None, None)


def test_reprice_text(calls: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reprice", "--model", "gpt-4o=cheapo", "-w", "digest", "--days", "7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    title = f"Reprice: {window(7).title}"
    assert lines[:3] == [title, "=" * len(title), "Workflow: digest"]
    for expected in [
        "gpt-4o -> cheapo ($1 in / $2 out per million tokens, from pricing:cheapo)",
        "  Real calls: 3 (5,000 input + 2,500 output tokens)",
        "    Actual cost:   $0.090",
        "    Repriced cost: $0.010",
        "    Difference:    -$0.080, -89%",
        "      - research: 2 calls, $0.080 -> $0.0080 (-$0.072, -90%)",
        "      - critique: 1 call, $0.010 -> $0.0020 (-$0.0080, -80%)",
        "  Simulated calls: 1 (1,000 input + 1,000 output tokens)",
    ]:
        assert expected in lines, expected


def test_reprice_json(calls: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["reprice", "--model", "gpt-4o=cheapo", "-w", "digest", "--format", "json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["swaps"][0]["real"]["total"]["difference_usd"] == pytest.approx(-0.08)
    assert data["swaps"][0]["simulated"]["total"]["calls"] == 1


def test_reprice_errors(calls: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reprice", "--model", "gpt-4o=gpt-4o-mni"]) == 2
    err = capsys.readouterr().err
    assert "no known price for model 'gpt-4o-mni'" in err
    assert "did you mean gpt-4o-mini" in err
    assert main(["reprice", "--model", "cheapo-elsewhere=cheapo"]) == 2  # no workflow, no override
    assert "'cheapo'" in capsys.readouterr().err
    assert main(["reprice", "--model", "gpt-4o"]) == 2
    assert "expected OLD=NEW" in capsys.readouterr().err


def test_reprice_model_never_called(calls: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reprice", "--model", "gpt-3=gpt-4o-mini", "-w", "faq"]) == 0
    out = capsys.readouterr().out
    assert (
        "No calls of gpt-3 in the last 30 days; models called: azure/gpt-4o, "
        "google/gemini-2.0-flash." in out
    )


# ----------------------------------------------------------------------------- check


def gate_run(run_id: str, minutes: int, **extra: object) -> dict:
    fields = {"workflow": "gate", "duration_ms": 500.0} | extra
    return make_run(run_id, NOW - timedelta(minutes=minutes), 0.004, **fields)


def gate_node(run_id: str, minutes: int, node: str, **extra: object) -> dict:
    fields = {"workflow": "gate", "cost_usd": 0.001, "duration_ms": 100.0} | extra
    return make_node(run_id, node, NOW - timedelta(minutes=minutes), **fields)


@pytest.fixture
def healthy(home: Path) -> Path:
    """20 successful runs of five even nodes; node e has its cache on and hit 15 times."""
    runs, nodes = [], []
    for i in range(20):
        runs.append(gate_run(f"g{i}", i + 1))
        nodes += [gate_node(f"g{i}", i + 1, name) for name in "abcd"]
        hit = i < 15
        nodes.append(
            gate_node(
                f"g{i}",
                i + 1,
                "e",
                cache_enabled=True,
                cache_hit=hit,
                attempts=0 if hit else 1,
                cost_usd=0.0 if hit else 0.001,
            )
        )
    gate = "workflow: {name: gate, targets: {max_run_cost: 0.005, max_run_latency_ms: 2000}}\n"
    write_rows(home, runs, nodes, [version("gate", gate + "nodes: [{name: a, prompt: hi}]\n")])
    return home


def test_check_passes(healthy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "Check: all workflows, last 7 days (20 runs, 100 node executions)"
    assert out.rstrip().endswith("Result: PASS")
    report = check(healthy)
    metrics = {m.name: m for m in report.metrics}
    assert {m.status for m in report.metrics} == {"PASS"}
    assert metrics["success_rate"].value == 1.0
    assert metrics["cache_hit_rate"].value == 0.75
    assert metrics["node_time_share"].value == pytest.approx(0.2)
    assert metrics["node_time_share"].threshold == pytest.approx(0.4)  # twice even, 5 nodes
    assert metrics["node_cost_share"].value == pytest.approx(0.02 / 0.085)
    assert metrics["node_cost_share"].threshold == 0.5
    assert (metrics["run_cost_p95"].value, metrics["run_cost_p95"].threshold) == (0.004, 0.005)
    assert metrics["run_cost_p95"].detail == "limit from targets.max_run_cost"
    assert metrics["run_latency_p95"].threshold == 2000


def test_command_line_limit_wins_and_fails(healthy: Path, capsys) -> None:
    assert main(["check", "--max-run-cost", "0.003", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["result"] == "FAIL"
    [cost] = [m for m in data["metrics"] if m["name"] == "run_cost_p95"]
    assert (cost["status"], cost["threshold"], cost["detail"]) == (
        "FAIL",
        0.003,
        "limit from --max-run-cost",
    )


def test_latest_workflow_version_sets_the_limits(healthy: Path) -> None:
    newer = "workflow: {name: gate, max_cost: 0.001}\nnodes: [{name: a, prompt: hi}]\n"
    write_rows(healthy, workflows=[version("gate", newer, age_days=0.5)])
    metrics = {m.name: m for m in check(healthy).metrics}
    cost = metrics["run_cost_p95"]
    assert (cost.status, cost.threshold, cost.detail) == ("FAIL", 0.001, "limit from max_cost")
    assert metrics["run_latency_p95"].status == "SKIP"


@pytest.fixture
def unhealthy(home: Path) -> Path:
    """20 runs, 2 failed (one node failed, one timed out); node a takes 70 % of node time and
    node b 80 % of node cost; runs take 1 s."""
    runs, nodes = [], []
    for i in range(20):
        run_id, status = f"u{i}", "failed" if i < 2 else "success"
        runs.append(gate_run(run_id, i + 1, status=status, duration_ms=1000.0))
        b_status = {0: "failed", 1: "timeout"}.get(i, "success")
        nodes += [
            gate_node(run_id, i + 1, "a", duration_ms=700.0),
            gate_node(run_id, i + 1, "b", cost_usd=0.008, status=b_status),
            gate_node(run_id, i + 1, "c", node_type="code", cost_usd=0.0, provider=None),
            gate_node(run_id, i + 1, "d"),
        ]
    write_rows(home, runs, nodes)
    return home


def test_check_fails_and_names_the_nodes(unhealthy: Path, capsys) -> None:
    assert main(["check", "-w", "gate", "--max-run-latency-ms", "500"]) == 1
    out = capsys.readouterr().out
    rows = {line[8:].split("  ")[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert rows["success rate"].startswith("  FAIL")
    assert "90.0%  > 95%" in rows["success rate"]
    assert rows["error rate"].startswith("  PASS")
    assert "2 of 80 node executions failed or timed out" in rows["error rate"]
    assert rows["timeout rate"].startswith("  FAIL")
    assert rows["cache hit rate"].startswith("  SKIP")
    assert rows["node time share"].startswith("  FAIL")
    assert "70.0%  <= 50%" in rows["node time share"]
    assert "largest: a" in rows["node time share"]
    assert rows["node cost share"].startswith("  FAIL")
    assert "largest: b" in rows["node cost share"]
    assert rows["p95 run cost"].startswith("  SKIP")
    assert rows["p95 run latency"].startswith("  FAIL")
    assert out.rstrip().endswith("Result: FAIL (5 of 8 metrics failed)")
    metrics = {m.name: m for m in check(unhealthy, max_run_latency_ms=500).metrics}
    assert metrics["timeout_rate"].value == pytest.approx(1 / 80)
    assert metrics["node_cost_share"].value == pytest.approx(0.8)
    assert metrics["node_cost_share"].threshold == pytest.approx(2 / 3)
    assert metrics["node_time_share"].node == "a"


def test_check_without_runs(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert capsys.readouterr().out == (
        "No runs of all workflows in the last 7 days: nothing to check (exit 0).\n"
    )
    assert main(["check", "-w", "gate", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["runs"], data["result"]) == (0, "PASS")
    assert {m["status"] for m in data["metrics"]} == {"SKIP"}


def test_workflows_are_judged_apart(unhealthy: Path) -> None:
    solo = make_node("x1", "solo", D1, workflow="other", cost_usd=0.3)
    write_rows(unhealthy, runs=[make_run("x1", D1, 0.3, workflow="other")], nodes=[solo])
    metrics = {m.label: m for m in check(unhealthy).metrics}
    assert metrics["success rate"].detail == "19 of 21 runs succeeded"
    assert metrics["node time share [gate]"].status == "FAIL"
    assert metrics["node time share [other]"].status == "SKIP"
    assert "too few nodes" in metrics["node time share [other]"].detail
    assert metrics["p95 run cost [other]"].value == 0.3
    assert check(unhealthy, simulated=True).runs == 0  # every row here is real


def test_reprice_real_or_simulated_calls_alone(calls: Path, capsys) -> None:
    swap = ("gpt-4o", "cheapo")
    [real] = reprice(calls, swaps=[swap], workflow="digest", simulated=False).swaps
    assert (real.simulated, real.real.total.calls) == (None, 3)
    [simulated] = reprice(calls, swaps=[swap], workflow="digest", simulated=True).swaps
    assert (simulated.real, simulated.simulated.total.calls) == (None, 1)

    argv = ["reprice", "--model", "gpt-4o=cheapo", "-w", "digest"]
    assert main([*argv, "--simulated", "exclude"]) == 0
    out = capsys.readouterr().out
    assert "  Real calls: 3 (5,000 input + 2,500 output tokens)" in out
    assert "Simulated calls" not in out
    assert main([*argv, "--simulated", "only", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["simulated_runs"] == "only"
    assert data["swaps"][0]["real"] is None
    assert data["swaps"][0]["simulated"]["total"]["calls"] == 1
    assert (
        main(["reprice", "--model", "gpt-4o=gpt-4o-mini", "-w", "faq", "--simulated", "only"]) == 0
    )
    assert "  No simulated calls of gpt-4o in the last 30 days." in capsys.readouterr().out


def test_check_judges_real_or_simulated_runs_alone(healthy: Path, capsys) -> None:
    # Simulated runs that all failed fail the gate, unless the gate is on real runs only.
    runs = [gate_run(f"s{i}", i + 1, simulated=True, status="failed") for i in range(10)]
    nodes = [
        gate_node(f"s{i}", i + 1, name, simulated=True, status="failed")
        for i in range(10)
        for name in "abcde"
    ]
    write_rows(healthy, runs, nodes)
    assert main(["check"]) == 1
    assert "(30 runs, 150 node executions)" in capsys.readouterr().out
    assert main(["check", "--simulated", "exclude"]) == 0
    title = capsys.readouterr().out.splitlines()[0]
    assert title == "Check: all workflows, last 7 days (20 real runs, 100 node executions)"
    assert main(["check", "--simulated", "only", "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert (data["runs"], data["node_executions"], data["simulated_runs"]) == (10, 50, "only")
    metrics = {m["name"]: m for m in data["metrics"]}
    assert (metrics["success_rate"]["value"], metrics["error_rate"]["value"]) == (0.0, 1.0)
    assert main(["check", "-w", "other", "--simulated", "only"]) == 0
    assert capsys.readouterr().out.startswith("No simulated runs of other in the last 7 days")

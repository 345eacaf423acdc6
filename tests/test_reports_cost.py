"""`cost-report` on known telemetry rows: every figure is asserted exactly.

The rows go straight into DuckDB so each cost, token count and date is chosen by the test.
Prices the recommendation depends on are read from the same price map the report uses, so
the tests hold whatever LiteLLM's bundled prices are.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import D1, D2, NOW, litellm_cost, make_node, make_run, write_rows

from core.analytics.cost import cost_report
from core.analytics.window import window
from core.catalog.prices import PriceBook
from core.cli import main
from core.formatting import money

PREVIOUS = NOW - timedelta(days=10)  # in the 7 days before the last 7
OLD = NOW - timedelta(days=20)  # in neither period


def research(run_id: str, at: datetime, cost: float, tokens: tuple[int, int], **extra: Any):
    return make_node(
        run_id,
        "research",
        at,
        cost_usd=cost,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        **extra,
    )


def summary(run_id: str, at: datetime, cost: float | None, **extra: Any) -> dict[str, Any]:
    fields = {"model": "gpt-4o-mini", "input_tokens": 1000, "output_tokens": 500} | extra
    return make_node(run_id, "summary", at + timedelta(seconds=5), cost_usd=cost, **fields)


@pytest.fixture
def known(home: Path) -> Path:
    """Real runs of `digest` (4 in the window, 1 before it, 1 older), simulated runs of
    `digest` and `faq`.

    Real, last 7 days: r1 $0.06 and r2 $0.10 on D1, r3 $0.02 on D2 (research served from the
    cache, saving $0.04), r4 failed on D2 with one call of a model that has no price.
    """
    runs = [
        make_run("r1", D1, 0.06),
        make_run("r2", D1 + timedelta(hours=1), 0.10),
        make_run("r3", D2, 0.02),
        make_run("r4", D2 + timedelta(hours=1), None, status="failed"),
        make_run("p1", PREVIOUS, 0.09),
        make_run("o1", OLD, 5.0),
        make_run("s1", D1, 0.5, simulated=True),
        make_run("s2", D2, 0.25, simulated=True, workflow="faq"),
    ]
    nodes = [
        research("r1", D1, 0.04, (2000, 1000), request_hash="h1"),
        summary("r1", D1, 0.02, request_hash="s1"),
        research("r2", D1 + timedelta(hours=1), 0.08, (2000, 1000), request_hash="h1"),
        summary("r2", D1 + timedelta(hours=1), 0.02, request_hash="s2"),
        research(
            "r3",
            D2,
            0.0,
            (0, 0),
            cache_hit=True,
            cache_enabled=True,
            attempts=0,
            saved_cost_usd=0.04,
            request_hash="h1",
        ),
        summary("r3", D2, 0.02, request_hash="s3"),
        summary(
            "r4",
            D2 + timedelta(hours=1),
            None,
            provider="acme",
            model="mystery-1",
            input_tokens=100,
            output_tokens=50,
            status="failed",
        ),
        research("p1", PREVIOUS, 0.09, (1000, 500)),
        research("o1", OLD, 5.0, (10000, 10000)),
        research("s1", D1, 0.5, (1000, 1000), simulated=True),
        make_node(
            "s2",
            "answer",
            D2,
            provider="acme",
            model="house-model",
            cost_usd=0.25,
            input_tokens=100,
            output_tokens=100,
            simulated=True,
            workflow="faq",
        ),
    ]
    write_rows(home, runs, nodes)
    return home


def cheapest_step(provider: str, model: str, tokens: tuple[int, int]) -> tuple[str, float]:
    key, _ = PriceBook().cheaper_models(provider, model, limit=1)[0]
    return key, litellm_cost("simulated", key, *tokens)


def by_key(items: list) -> dict[str, tuple]:
    return {b.key: (b.cost_usd, b.share, b.calls) for b in items}


def test_per_execution_figures_and_deltas(known: Path) -> None:
    real = cost_report(known, days=7).real
    assert real.runs.executions == 4
    assert real.runs.priced_executions == 3
    assert real.runs.total_cost_usd == pytest.approx(0.18)
    assert real.runs.average_cost_usd == pytest.approx(0.06)
    assert real.runs.min_cost_usd == pytest.approx(0.02)
    assert real.runs.max_cost_usd == pytest.approx(0.10)
    assert real.previous.executions == 1
    assert real.previous.total_cost_usd == pytest.approx(0.09)
    assert real.cost_delta.change == pytest.approx(0.09)
    assert real.cost_delta.change_pct == pytest.approx(1.0)
    assert (real.executions_delta.change, real.executions_delta.change_pct) == (3, 3.0)
    assert real.average_delta.change == pytest.approx(-0.03)
    assert real.average_delta.change_pct == pytest.approx(-1 / 3)


def test_breakdowns_with_shares(known: Path) -> None:
    real = cost_report(known, days=7).real
    assert real.node_cost_usd == pytest.approx(0.18)
    assert real.calls == 6  # the cache hit made no call
    assert by_key(real.by_provider) == {
        "openai": (pytest.approx(0.18), pytest.approx(1.0), 5),
        "acme": (None, 0.0, 1),
    }
    assert by_key(real.by_model) == {
        "gpt-4o": (pytest.approx(0.12), pytest.approx(2 / 3), 2),
        "gpt-4o-mini": (pytest.approx(0.06), pytest.approx(1 / 3), 3),
        "mystery-1": (None, 0.0, 1),
    }
    assert [b.key for b in real.by_node] == ["research", "summary"]
    assert by_key(real.by_node) == {
        "research": (pytest.approx(0.12), pytest.approx(2 / 3), 2),
        "summary": (pytest.approx(0.06), pytest.approx(1 / 3), 4),
    }
    assert real.by_node[1].unpriced_calls == 1
    assert by_key(real.by_day) == {
        D2.date().isoformat(): (pytest.approx(0.02), pytest.approx(1 / 9), 2),
        D1.date().isoformat(): (pytest.approx(0.16), pytest.approx(8 / 9), 4),
    }
    assert [b.key for b in real.by_day] == [D2.date().isoformat(), D1.date().isoformat()]
    assert by_key(real.by_workflow) == {"digest": (pytest.approx(0.18), pytest.approx(1.0), 6)}
    assert (real.input_tokens, real.output_tokens) == (7100, 3550)


def test_cache_savings_and_unpriced_calls(known: Path) -> None:
    real = cost_report(known, days=7).real
    assert real.cache_hits == 1
    assert real.cache_savings_usd == pytest.approx(0.04)
    assert real.unpriced_calls == 1
    assert real.unpriced_models == ["acme/mystery-1"]


def test_simulated_spend_is_kept_apart(known: Path) -> None:
    report = cost_report(known, days=7)
    simulated = report.simulated
    assert simulated.runs.executions == 2
    assert simulated.runs.total_cost_usd == pytest.approx(0.75)
    assert (simulated.runs.min_cost_usd, simulated.runs.max_cost_usd) == (0.25, 0.5)
    # Two workflows in the section: nodes are labelled workflow/node.
    assert by_key(simulated.by_node) == {
        "digest/research": (pytest.approx(0.5), pytest.approx(2 / 3), 1),
        "faq/answer": (pytest.approx(0.25), pytest.approx(1 / 3), 1),
    }
    assert report.real.runs.total_cost_usd == pytest.approx(0.18)
    assert "acme" not in {b.key for b in report.real.by_model}
    assert simulated.cost_delta.previous is None  # nothing simulated before


def test_recommendation_is_the_biggest_computed_saving(known: Path) -> None:
    real = cost_report(known, days=7).real
    key, would_cost = cheapest_step("openai", "gpt-4o", (4000, 2000))
    saving = 0.12 - would_cost
    assert saving > 0.06  # beats caching research's one repeat ($0.06) and any summary switch
    rec = real.recommendation
    assert (rec.kind, rec.node, rec.from_model, rec.to_model) == (
        "switch_model",
        "research",
        "gpt-4o",
        key,
    )
    assert rec.saving_usd == pytest.approx(saving)
    assert rec.saving_pct == pytest.approx(saving / 0.12)
    assert rec.saving_share == pytest.approx(saving / 0.18)
    assert rec.text == (
        f"Switch research from gpt-4o to {key}: would have saved {money(saving)} "
        f"({saving / 0.12:.0%}) in the last 7 days"
    )
    sim = cost_report(known, days=7).simulated.recommendation
    assert sim.text.startswith(f"Switch digest/research from gpt-4o to {key}:")


def test_cache_recommendation_counts_repeated_requests(home: Path) -> None:
    # A model without a cheaper known option, so caching is the only saving on offer.
    hashes = ["q1", "q1", "q1", "q2", "q3"]
    runs = [make_run(f"r{i}", D1 + timedelta(minutes=i), 0.05) for i in range(5)]
    nodes = [
        make_node(
            f"r{i}",
            "answer",
            D1 + timedelta(minutes=i),
            provider="acme",
            model="house-model",
            cost_usd=0.05,
            request_hash=h,
        )
        for i, h in enumerate(hashes)
    ]
    write_rows(home, runs, nodes)
    rec = cost_report(home).real.recommendation
    assert (rec.kind, rec.node, rec.repeated_calls, rec.calls) == ("enable_cache", "answer", 2, 5)
    assert rec.saving_usd == pytest.approx(0.10)
    assert rec.saving_pct == pytest.approx(0.4)
    assert rec.text == (
        "Enable cache on answer: 2 of 5 calls repeated an identical request; caching would "
        "have saved $0.100 (40%) in the last 7 days"
    )


def test_without_any_saving_the_top_node_is_named(home: Path) -> None:
    write_rows(
        home,
        [make_run("r1", D1, 0.05)],
        [make_node("r1", "answer", D1, provider="acme", model="house-model", cost_usd=0.05)],
    )
    rec = cost_report(home).real.recommendation
    assert (rec.kind, rec.node, rec.saving_usd) == ("review_node", "answer", None)
    assert rec.text.startswith("answer is 100% of the spend")


def test_provider_model_and_date_filters(known: Path) -> None:
    acme = cost_report(known, providers=["acme"]).real
    assert (acme.runs.executions, acme.runs.total_cost_usd) == (1, None)
    assert [b.key for b in acme.by_provider] == ["acme"]
    # r3's gpt-4o node was a cache hit: that run spent $0 on gpt-4o.
    gpt4o = cost_report(known, models=["gpt-4o"]).real
    assert gpt4o.runs.executions == 3
    assert gpt4o.runs.total_cost_usd == pytest.approx(0.12)
    assert (gpt4o.runs.min_cost_usd, gpt4o.runs.max_cost_usd) == (0, 0.08)
    one_day = cost_report(known, start=D2.date(), end=D2.date())
    assert one_day.label == f"{D2.date()} to {D2.date()}"
    assert one_day.real.runs.executions == 2
    assert one_day.real.runs.total_cost_usd == pytest.approx(0.02)
    assert one_day.simulated.runs.total_cost_usd == pytest.approx(0.25)
    assert cost_report(known, workflow="faq").real.empty


def test_text_report(known: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost-report"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    title = f"Cost Report: {window(7).title}"
    assert lines[:3] == [title, "=" * len(title), "Workflow: all workflows"]
    for expected in [
        "Real Spend",
        "Total Executions: 4 (+3, +300% vs previous 7 days)",
        "Total Cost: $0.180 (+$0.090, +100% vs previous 7 days)",
        "Average Cost: $0.060 (-$0.030, -33% vs previous 7 days)",
        "Min Cost: $0.020",
        "Max Cost: $0.100",
        "Cache Savings: $0.040 (1 cache hit)",
        "Cost by Provider:",
        "  - openai: $0.180 (100%)",
        "  - acme: unknown (0%), 1 unpriced call",
        "  - gpt-4o: $0.120 (67%)",
        "  - research: $0.120 (67%)  ← Most expensive",
        "  - summary: $0.060 (33%), 1 unpriced call",
        f"  - {D1.date()}: $0.160 (89%)",
        "Simulated Spend",
        "Total Executions: 2 (none in the previous 7 days)",
        "Total Cost: $0.750 (none in the previous 7 days)",
        "  - digest/research: $0.500 (67%)  ← Most expensive",
    ]:
        assert expected in lines, expected
    assert "Unpriced Calls: 1 (no known price for acme/mystery-1;" in out
    assert lines.index("Real Spend") < lines.index("Simulated Spend")
    recommendations = [line for line in lines if line.startswith("Recommendation: ")]
    assert len(recommendations) == 2
    assert recommendations[0].startswith("Recommendation: Switch research from gpt-4o to ")


def test_text_says_when_a_section_is_empty(home: Path, capsys) -> None:
    simulated_run = research("s1", D1, 0.5, (1, 1), simulated=True)
    write_rows(home, [make_run("s1", D1, 0.5, simulated=True)], [simulated_run])
    assert main(["cost-report", "--workflow", "digest"]) == 0
    out = capsys.readouterr().out
    assert "Workflow: digest" in out
    assert "Real Spend: no real runs in the last 7 days." in out


def test_json_format(known: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost-report", "--format", "json", "--days", "7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["days"] == 7
    assert data["real"]["runs"]["executions"] == 4
    assert data["real"]["runs"]["total_cost_usd"] == pytest.approx(0.18)
    assert data["real"]["cost_delta"]["change_pct"] == pytest.approx(1.0)
    assert data["simulated"]["runs"]["total_cost_usd"] == pytest.approx(0.75)
    assert data["real"]["recommendation"]["kind"] == "switch_model"
    assert data["real"]["unpriced_models"] == ["acme/mystery-1"]
    datetime.fromisoformat(data["start"])


def test_csv_format(known: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost-report", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert set(rows[0]) >= {
        "section",
        "dimension",
        "key",
        "cost_usd",
        "share",
        "calls",
        "input_tokens",
        "output_tokens",
    }
    table = {(r["section"], r["dimension"], r["key"]): r for r in rows}
    openai = table[("real", "provider", "openai")]
    assert (float(openai["cost_usd"]), float(openai["share"]), int(openai["calls"])) == (
        pytest.approx(0.18),
        1.0,
        5,
    )
    assert table[("real", "provider", "acme")]["cost_usd"] == ""
    assert int(table[("real", "node", "research")]["input_tokens"]) == 4000
    assert float(table[("simulated", "node", "faq/answer")]["cost_usd"]) == 0.25
    for section in ("real", "simulated"):
        for dimension in ("provider", "model", "node", "day", "workflow"):
            shares = [
                float(r["share"])
                for r in rows
                if (r["section"], r["dimension"]) == (section, dimension)
            ]
            assert sum(shares) == pytest.approx(1.0, abs=1e-5), (section, dimension)


def test_no_runs_at_all(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cost-report"]) == 0
    assert capsys.readouterr().out == "No runs in the last 7 days.\n"
    assert main(["cost-report", "--days", "1", "-w", "digest"]) == 0
    assert capsys.readouterr().out == "No runs of digest in the last 1 day.\n"
    assert main(["cost-report", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["real"]["runs"]["executions"] == 0
    assert data["real"]["recommendation"] is None
    assert main(["cost-report", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("section,dimension,key,cost_usd,share")


def test_simulated_spend_can_be_left_out_or_reported_alone(known: Path, capsys) -> None:
    both = cost_report(known)
    real = cost_report(known, simulated=False)
    assert (real.simulated, real.simulated_runs) == (None, "exclude")
    assert real.real == both.real
    simulated = cost_report(known, simulated=True)
    assert (simulated.real, simulated.simulated_runs) == (None, "only")
    assert simulated.simulated == both.simulated

    assert main(["cost-report", "--simulated", "exclude"]) == 0
    out = capsys.readouterr().out
    assert "Real Spend" in out and "Simulated" not in out
    assert main(["cost-report", "--simulated", "only", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["real"], data["simulated_runs"]) == (None, "only")
    assert data["simulated"]["runs"]["total_cost_usd"] == pytest.approx(0.75)
    assert main(["cost-report", "--simulated", "only", "--format", "csv"]) == 0
    assert {r["section"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))} == {
        "simulated"
    }
    # Only today: the simulated runs were yesterday and before.
    assert main(["cost-report", "--simulated", "only", "--days", "1"]) == 0
    assert capsys.readouterr().out == "No simulated runs in the last 1 day.\n"

"""Where a workflow's time and money go, node by node, and what to change.

A node is a BOTTLENECK when it lies on the critical path (so shortening it shortens the run)
and either takes over 20 % of the run's wall time or over twice the average node; it is
SLOW when it ran slower than its own 95th percentile over earlier runs. Recommendations are
computed from the recorded calls: what caching repeated requests would have saved, what the
same tokens cost on cheaper models, whether input dominates a node's cost, and which edges
serialise nodes that never read each other's output.

With `simulated` set, everything is drawn from one kind of run: the runs profiled, the
history their durations are judged against and the repeated requests. A simulated latency
says nothing about a real one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.analytics.critical_path import critical_path
from core.analytics.filters import kind_of_runs, simulated_choice
from core.catalog.model_names import SIMULATED
from core.catalog.prices import PriceBook
from core.catalog.usage import Usage
from core.errors import WorkflowError
from core.formatting import count, money, share
from core.settings import data_home
from core.telemetry import get_store
from core.workflow import Workflow, parse_workflow
from core.workflow.graph import Graph
from core.workflow.models import LLMNode
from core.workflow.validation import code_node_references

BOTTLENECK_SHARE = 0.20
BOTTLENECK_RATIO = 2.0
MIN_HISTORY = 5
PROMPT_SHARE = 0.6  # input tokens above this share of a node's cost call for a shorter prompt
EDGES_TRIED = 20  # critical-path edges whose removal is simulated, each a pass over the graph


@dataclass
class NodeProfile:
    name: str
    node_type: str
    provider: str | None
    model: str | None
    calls: int
    duration_ms: float  # mean over the profiled runs
    p50_ms: float
    p95_ms: float
    cost_usd: float | None  # mean per run; None when no call had a price
    input_tokens: float
    output_tokens: float
    errors: int
    retried: int
    cache_hits: int
    history_p95_ms: float | None
    history_calls: int
    status: str = "OK"
    reasons: list[str] = field(default_factory=list)
    on_critical_path: bool = False
    slack_ms: float = 0.0
    recommendations: list[str] = field(default_factory=list)


@dataclass
class Profile:
    workflow: str
    workflow_hash: str
    runs: list[str]
    duration_ms: float  # mean run wall time
    cost_usd: float  # mean priced cost per run
    nodes: list[NodeProfile]
    critical_path: list[str]
    critical_path_ms: float
    average_parallelism: float
    max_parallelism: int
    recommendations: list[str] = field(default_factory=list)
    unpriced_calls: int = 0
    simulated_runs: str = "include"  # include | exclude | only
    simulated_count: int = 0  # of `runs`, how many were simulated (the rest were real)

    @property
    def most_expensive(self) -> NodeProfile | None:
        priced = [n for n in self.nodes if n.cost_usd]
        return max(priced, key=lambda n: n.cost_usd or 0.0) if priced else None

    @property
    def slowest(self) -> NodeProfile | None:
        return max(self.nodes, key=lambda n: n.duration_ms) if self.nodes else None


class ProfileError(LookupError):
    """The run or workflow asked for is not in telemetry."""


class NothingToProfile(ProfileError):
    """No finished run recorded at all: an empty history, not a wrong argument."""


_RUN_COLUMNS = "run_id, workflow, workflow_hash, duration_ms, coalesce(simulated, false)"


def _kind(simulated: bool | None) -> tuple[str, list[bool]]:
    """The condition on `simulated` (with its parameters) that keeps one kind of run."""
    if simulated is None:
        return "true", []
    return "coalesce(simulated, false) = ?", [simulated]


def _select_runs(
    home: Path, workflow: str | None, run: str | None, last: int, simulated: bool | None
) -> list[tuple[str, str, str, float, bool]]:
    store = get_store(home)
    kind, params = _kind(simulated)
    runs = kind_of_runs(simulated)
    if run:
        rows = store.query(
            f"SELECT {_RUN_COLUMNS} FROM runs "
            f"WHERE starts_with(run_id, ?) AND status <> 'running' AND {kind} "
            "ORDER BY started_at DESC",
            [run, *params],
        )
        if not rows:
            raise ProfileError(f"no finished {runs}run with id {run!r}")
        if len({r[0] for r in rows}) > 1:
            raise ProfileError(f"{run!r} matches {len(rows)} {runs}runs; give more of the id")
        return rows
    if workflow is None:
        latest = store.query(
            f"SELECT workflow FROM runs WHERE status <> 'running' AND {kind} "
            "ORDER BY started_at DESC LIMIT 1",
            params,
        )
        if not latest:
            raise NothingToProfile(f"no {runs}runs recorded yet: run a workflow first")
        workflow = latest[0][0]
    rows = store.query(
        f"SELECT {_RUN_COLUMNS} FROM runs "
        f"WHERE workflow = ? AND status <> 'running' AND {kind} ORDER BY started_at DESC LIMIT ?",
        [workflow, *params, last],
    )
    if not rows:
        known = [
            r[0]
            for r in store.query(
                f"SELECT DISTINCT workflow FROM runs WHERE {kind} ORDER BY 1", params
            )
        ]
        raise ProfileError(
            f"no {runs}runs of workflow {workflow!r}"
            + (f"; known: {', '.join(known)}" if known else "")
        )
    return rows


def _node_rows(
    home: Path, workflow: str, run_ids: list[str], simulated: bool | None
) -> list[tuple]:
    kind, params = _kind(simulated)
    return get_store(home).query(
        f"""
        WITH picked AS (
            SELECT * FROM node_runs WHERE workflow = ? AND list_contains(?, run_id)
        ),
        history AS (
            -- An anti-join: a list lookup per row costs more than the percentiles.
            SELECT node, quantile_cont(duration_ms, 0.95) AS p95, count(*) AS calls
            FROM node_runs ANTI JOIN (SELECT unnest(?::VARCHAR[]) AS run_id) USING (run_id)
            WHERE workflow = ? AND status = 'success' AND NOT cache_hit AND {kind}
            GROUP BY node
        )
        SELECT p.node, any_value(p.node_type), mode(p.provider), mode(p.model), count(*),
               avg(p.duration_ms), quantile_cont(p.duration_ms, 0.5),
               quantile_cont(p.duration_ms, 0.95),
               sum(p.cost_usd), count(p.cost_usd), avg(p.input_tokens), avg(p.output_tokens),
               count_if(p.status NOT IN ('success')), count_if(p.attempts > 1),
               count_if(p.cache_hit),
               any_value(h.p95), coalesce(any_value(h.calls), 0),
               count_if(p.node_type = 'llm' AND p.attempts > 0 AND NOT p.cache_hit
                        AND p.cost_usd IS NULL)
        FROM picked p LEFT JOIN history h USING (node)
        GROUP BY p.node
        """,
        [workflow, run_ids, run_ids, workflow, *params],
    )


def _runs(count_: int) -> str:
    return "run" if count_ == 1 else f"{count_:,} runs"


def _repeated_requests(
    home: Path, workflow: str, nodes: list[str], runs: list[str], simulated: bool | None
) -> dict[str, tuple[int, int, float]]:
    """Per node of `nodes`: (calls, repeated calls, cost of the repeats) over the uncached
    calls of the profiled `runs` only, so the advice cites the runs on screen, not the whole
    history. Reading request hashes is most of a profile's time, so only the nodes that need
    the figure are asked for."""
    if not nodes or not runs:
        return {}
    kind, params = _kind(simulated)
    rows = get_store(home).query(
        f"""
        SELECT node, sum(n), sum(n - 1), sum((n - 1) * avg_cost)
        FROM (
            SELECT node, request_hash, count(*) AS n, avg(coalesce(cost_usd, 0)) AS avg_cost
            FROM node_runs
            SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS node) USING (node)
            SEMI JOIN (SELECT unnest(?::VARCHAR[]) AS run_id) USING (run_id)
            WHERE workflow = ? AND node_type = 'llm'
              AND status = 'success' AND NOT cache_hit AND request_hash IS NOT NULL AND {kind}
            GROUP BY node, request_hash
        )
        GROUP BY node
        """,
        [nodes, runs, workflow, *params],
    )
    return {
        node: (int(calls), int(repeats), float(cost or 0)) for node, calls, repeats, cost in rows
    }


def _workflow_version(home: Path, workflow_hash: str) -> Workflow | None:
    rows = get_store(home).query(
        "SELECT source, workflow_file FROM workflows WHERE workflow_hash = ?", [workflow_hash]
    )
    if not rows:
        return None
    try:
        return parse_workflow(rows[0][0], rows[0][1] or "<recorded>")
    except WorkflowError:
        return None


def profile(
    home: str | Path | None = None,
    *,
    workflow: str | None = None,
    run: str | None = None,
    last: int = 20,
    simulated: bool | None = None,
) -> Profile:
    """`simulated`: None profiles any runs, False real runs only, True simulated ones only."""
    folder = data_home(home)
    picked = _select_runs(folder, workflow, run, max(1, last), simulated)
    run_ids = [r[0] for r in picked]
    name, version = picked[0][1], picked[0][2]
    walls = [r[3] for r in picked if r[3] is not None]
    wall = sum(walls) / len(walls) if walls else 0.0
    definition = _workflow_version(folder, version)
    runs_count = len(run_ids)

    nodes = []
    unpriced = 0
    for row in _node_rows(folder, name, run_ids, simulated):
        (node, node_type, provider, model, calls, mean, p50, p95, cost_sum, priced, tokens_in,
         tokens_out, errors, retried, hits, hist_p95, hist_calls, no_price) = row  # fmt: skip
        unpriced += int(no_price)
        nodes.append(
            NodeProfile(
                name=node,
                node_type=node_type,
                provider=provider,
                model=model,
                calls=int(calls),
                duration_ms=float(mean or 0),
                p50_ms=float(p50 or 0),
                p95_ms=float(p95 or 0),
                cost_usd=(float(cost_sum) / runs_count) if priced else None,
                input_tokens=float(tokens_in or 0),
                output_tokens=float(tokens_out or 0),
                errors=int(errors),
                retried=int(retried),
                cache_hits=int(hits),
                history_p95_ms=float(hist_p95) if hist_p95 is not None else None,
                history_calls=int(hist_calls),
            )
        )
    order = {n: i for i, n in enumerate(definition.graph.order)} if definition else {}
    nodes.sort(key=lambda n: order.get(n.name, len(order)))

    graph = definition.graph if definition else Graph.build([n.name for n in nodes], None)
    durations = {n.name: n.duration_ms for n in nodes}
    schedule = critical_path(graph, durations)
    average_node = sum(durations.values()) / len(durations) if durations else 0.0
    for node in nodes:
        node.on_critical_path = schedule.on_path(node.name)
        node.slack_ms = schedule.slack.get(node.name, 0.0)
        _classify(node, wall, average_node)

    result = Profile(
        simulated_count=sum(1 for r in picked if r[4]),
        workflow=name,
        workflow_hash=version,
        runs=run_ids,
        duration_ms=wall,
        cost_usd=sum(n.cost_usd or 0.0 for n in nodes),
        nodes=nodes,
        critical_path=list(schedule.path),
        critical_path_ms=schedule.length_ms,
        average_parallelism=(sum(durations.values()) / wall) if wall else 0.0,
        max_parallelism=_max_width(graph),
        unpriced_calls=unpriced,
        simulated_runs=simulated_choice(simulated),
    )
    _recommend(result, folder, definition, graph, durations, simulated)
    return result


def _classify(node: NodeProfile, wall: float, average_node: float) -> None:
    run_share = node.duration_ms / wall if wall else 0.0
    ratio = node.duration_ms / average_node if average_node else 0.0
    if node.on_critical_path and (run_share > BOTTLENECK_SHARE or ratio > BOTTLENECK_RATIO):
        node.status = "BOTTLENECK"
        node.reasons.append(f"{run_share:.0%} of run time")
        node.reasons.append(f"{ratio:.1f}x average node")
        node.reasons.append("on the critical path")
    elif (
        node.history_p95_ms is not None
        and node.history_calls >= MIN_HISTORY
        and node.duration_ms > node.history_p95_ms
    ):
        node.status = "SLOW"
        node.reasons.append(
            f"{count(node.duration_ms)}ms vs its p95 of {count(node.history_p95_ms)}ms "
            f"over {node.history_calls} earlier calls"
        )
    else:
        node.reasons.append(f"{run_share:.0%} of run time, {ratio:.1f}x average node")


def _max_width(graph: Graph) -> int:
    """Most nodes that can run at once, counting nodes by their depth in the DAG."""
    depth: dict[str, int] = {}
    for name in graph.topological:
        depth[name] = 1 + max((depth[p] for p in graph.parents[name]), default=-1)
    levels: dict[int, int] = {}
    for level in depth.values():
        levels[level] = levels.get(level, 0) + 1
    return max(levels.values(), default=0)


def _recommend(
    result: Profile,
    home: Path,
    definition: Workflow | None,
    graph: Graph,
    durations: dict[str, float],
    simulated: bool | None,
) -> None:
    # Caching is advised only to LLM nodes that had no cache hit in the profiled runs.
    uncached = [n.name for n in result.nodes if n.node_type == "llm" and not n.cache_hits]
    repeats = _repeated_requests(home, result.workflow, uncached, result.runs, simulated)
    prices = PriceBook(definition.spec.pricing if definition else None)
    runs = len(result.runs)
    for node in result.nodes:
        calls, repeated, repeat_cost = repeats.get(node.name, (0, 0, 0.0))
        if repeated:
            node.recommendations.append(
                f"Enable cache: {repeated} of {calls} calls in the {_runs(runs)} profiled "
                f"repeated an identical request; caching would have saved {money(repeat_cost)}"
            )
        if node.provider and node.model and node.cost_usd:
            for key, _ in prices.cheaper_models(node.provider, node.model):
                one = prices.cost(
                    SIMULATED, key, Usage(round(node.input_tokens), round(node.output_tokens))
                )
                would = (one or 0.0) * (node.calls / runs)
                if (
                    one is None or would >= node.cost_usd
                ):  # runs that mixed models can make a "cheaper" one dearer
                    break
                node.recommendations.append(
                    f"Model: the same tokens on {key} would cost {money(would)} per run "
                    f"instead of {money(node.cost_usd)} "
                    f"({share(node.cost_usd - would, node.cost_usd)} less)"
                )
                break
            tokens_in, tokens_out = round(node.input_tokens), round(node.output_tokens)
            in_cost = prices.cost(node.provider, node.model, Usage(tokens_in, 0))
            total = prices.cost(node.provider, node.model, Usage(tokens_in, tokens_out))
            if in_cost is not None and total and in_cost / total > PROMPT_SHARE:
                node.recommendations.append(
                    f"Prompt length: input is {share(in_cost, total)} of this node's cost "
                    f"({count(node.input_tokens)} tokens in); trim the prompt or pass "
                    "summaries instead of whole upstream outputs"
                )
        if node.status == "BOTTLENECK" and node.node_type == "llm" and node.duration_ms:
            rate = node.output_tokens / (node.duration_ms / 1000)
            node.recommendations.append(
                f"Major bottleneck: {count(node.output_tokens)} output tokens at "
                f"{rate:,.0f} tokens/s; cap max_output_tokens, ask for less, or use a faster "
                "model"
            )
        if node.retried:
            node.recommendations.append(
                f"Retries: {node.retried} of {node.calls} calls needed more than one attempt; "
                "check rate limits or lower max_concurrency"
            )
    if definition:
        result.recommendations += _parallelism(definition, graph, durations, result)


def _parallelism(
    definition: Workflow, graph: Graph, durations: dict[str, float], result: Profile
) -> list[str]:
    """Edges whose target never reads its source: dropping them may shorten the run.

    Only an edge on the critical path can shorten it (any other leaves that path whole), so
    only those are tried, each by recomputing the critical path without it, and at most
    EDGES_TRIED of them: every try costs a pass over the whole graph.
    """
    advice = []
    path = result.critical_path
    tried = 0
    for parent, child in itertools.pairwise(path):
        if tried == EDGES_TRIED:
            break
        if parent in _reads(definition, definition.nodes[child]):
            continue
        tried += 1
        pairs = [(p, c) for c, ps in graph.parents.items() for p in ps if (p, c) != (parent, child)]
        trimmed = Graph.build(list(graph.order), pairs)
        saved = result.critical_path_ms - critical_path(trimmed, durations).length_ms
        if saved > 0:
            advice.append(
                f"Parallelism: {child} does not read {parent}'s output, yet the edge "
                f"{parent} -> {child} makes it wait; without it the run could be "
                f"{count(saved)}ms shorter"
            )
    return advice


def _reads(definition: Workflow, node: Any) -> set[str]:
    """Upstream nodes whose output the node uses (its compiled templates, or its code)."""
    if isinstance(node, LLMNode):
        templates = [t for t in definition.templates[node.name] if t is not None]
        return {r.name for t in templates for r in t.references if r.kind == "node"}
    return code_node_references(node.code)

"""Where the money went: spend by provider, model, node, workflow and day, with one concrete
recommendation backed by the recorded tokens.

Per-execution figures come from `runs`, so they match what each run reported; breakdowns
come from node rows (the daily rollup, see `filters.node_days`), so each adds up to 100 %.
Simulated spend is a section of its own, never added to real spend, and a model without a
known price is never counted as $0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple

from core.analytics.filters import (
    FINISHED_RUN,
    LLM_CALL,
    Where,
    node_days,
    simulated_choice,
)
from core.analytics.window import Window, pct_change, thin_previous, window
from core.catalog.model_names import SIMULATED, bare_model
from core.catalog.prices import PriceBook
from core.formatting import count, money
from core.settings import data_home
from core.telemetry import get_store
from core.telemetry.tables import NODE_COUNTS_AT

# Calls up to which repeated requests are counted exactly (see _repeats).
EXACT_REPEATS_LIMIT = 1_000_000
# Nodes per section whose repeated requests are counted (see _add_cache_options).
REPEAT_NODES = 5


@dataclass
class RunStats:
    """Per-execution figures from `runs`; costs are None when no execution had a price."""

    executions: int = 0
    priced_executions: int = 0
    total_cost_usd: float | None = None
    average_cost_usd: float | None = None
    min_cost_usd: float | None = None
    max_cost_usd: float | None = None
    days_with_runs: int = 0  # UTC days on which a run started: how much data a period holds
    max_cost_run_id: str | None = None  # which run cost max_cost_usd


@dataclass
class Delta:
    """Now against the previous period of the same length (what the app's metrics show)."""

    current: float | None
    previous: float | None
    change: float | None  # current - previous
    change_pct: float | None  # None when the previous period had nothing to compare


@dataclass
class Breakdown:
    key: str
    cost_usd: float | None  # None: every call of this key was unpriced
    share: float  # of the section's node spend, 0..1
    calls: int  # LLM calls made: not cache hits, at least one attempt
    input_tokens: int
    output_tokens: int
    unpriced_calls: int
    cache_hits: int
    saved_cost_usd: float
    provider: str | None = None  # on model rows, where the model name may be ambiguous
    workflow: str | None = None  # on node rows, whose key reads "workflow/node" only when
    node: str | None = None  # the section holds several workflows


@dataclass
class Recommendation:
    kind: str  # switch_model | enable_cache | review_node
    workflow: str
    node: str
    text: str
    saving_usd: float | None = None
    saving_pct: float | None = None  # of what that node (or node and model) cost
    saving_share: float | None = None  # of the whole section's spend
    from_model: str | None = None
    to_model: str | None = None
    repeated_calls: int | None = None
    calls: int | None = None
    approximate: bool = False  # repeats estimated, not counted (very large windows)


@dataclass
class CostSection:
    simulated: bool
    runs: RunStats = field(default_factory=RunStats)
    previous: RunStats = field(default_factory=RunStats)
    cost_delta: Delta | None = None
    executions_delta: Delta | None = None
    average_delta: Delta | None = None
    node_cost_usd: float = 0.0  # sum of the node rows: the base of every share
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0  # of input_tokens, read from the providers' prompt caches
    reasoning_tokens: int = 0  # of output_tokens
    cache_hits: int = 0
    cache_savings_usd: float = 0.0
    unpriced_calls: int = 0
    unpriced_models: list[str] = field(default_factory=list)
    by_provider: list[Breakdown] = field(default_factory=list)
    by_model: list[Breakdown] = field(default_factory=list)
    by_workflow: list[Breakdown] = field(default_factory=list)
    by_node: list[Breakdown] = field(default_factory=list)
    by_day: list[Breakdown] = field(default_factory=list)
    recommendation: Recommendation | None = None

    @property
    def empty(self) -> bool:
        return not self.runs.executions and not self.by_node

    def thin_previous(self, compared_with: str) -> str | None:
        """A warning when the previous period holds much less data than this one."""
        return thin_previous(self.runs.days_with_runs, self.previous.days_with_runs, compared_with)


@dataclass
class CostReport:
    start: datetime
    end: datetime
    days: int | None
    label: str  # "Last 7 Days" or "2025-01-01 to 2025-01-07"
    workflow: str | None
    providers: list[str] | None
    models: list[str] | None
    real: CostSection | None  # None when left out (--simulated only)
    simulated: CostSection | None  # None when left out (--simulated exclude)
    simulated_runs: str = "include"  # include | exclude | only

    @property
    def empty(self) -> bool:
        return all(s.empty for s in self.sections)

    @property
    def sections(self) -> tuple[CostSection, ...]:
        return tuple(s for s in (self.real, self.simulated) if s is not None)

    @property
    def span(self) -> Window:
        return Window(self.start, self.end, self.days)


def cost_report(
    home: str | Path | None = None,
    *,
    days: int = 7,
    workflow: str | None = None,
    providers: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    simulated: bool | None = None,
) -> CostReport:
    """Spend over the last `days` days, or from `start` to `end` (a date `end` is inclusive).
    `simulated`: None reports both sections, False only real spend, True only simulated."""
    scope = _Scope(
        data_home(home),
        window(days, start, end),
        workflow,
        tuple(providers or ()),
        tuple(models or ()),
        simulated,
    )
    sections = {sim: CostSection(simulated=sim) for sim in scope.sections}
    for sim, (current, previous) in _run_stats(scope).items():
        _set_runs(sections[sim], current, previous)
    uses: dict[bool, list[_Use]] = {}
    candidates: list[_Candidate] = []
    for sim, rows in _node_groups(scope).items():
        uses[sim] = _set_breakdowns(sections[sim], rows, candidates)
    prices = PriceBook()
    options = {sim: _switch_options(uses.get(sim, []), prices) for sim in sections}
    _add_cache_options(scope, sections, options, candidates)
    for sim, section in sections.items():
        section.recommendation = _recommend(section, options[sim], scope.span)
    return CostReport(
        start=scope.span.start,
        end=scope.span.end,
        days=scope.span.days,
        label=scope.span.label,
        workflow=workflow,
        providers=list(providers) if providers else None,
        models=list(models) if models else None,
        real=sections.get(False),
        simulated=sections.get(True),
        simulated_runs=simulated_choice(simulated),
    )


class _Use(NamedTuple):
    """A node's calls of one model, priced ones only: what a cheaper model is compared on."""

    provider: str | None
    model: str | None
    workflow: str
    node: str
    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class _Candidate(NamedTuple):
    """A node's calls that a cache could have answered, had they repeated a request."""

    simulated: bool
    workflow: str
    node: str
    calls: int
    cost_usd: float  # the most caching them could save: the first of each request is paid


class _Repeat(NamedTuple):
    simulated: bool
    workflow: str
    node: str
    calls: int
    repeated: int
    cost_usd: float  # of the repeated calls
    approximate: bool


# ----------------------------------------------------------------------------- queries


@dataclass(frozen=True)
class _Scope:
    home: Path
    span: Window
    workflow: str | None
    providers: tuple[str, ...]
    models: tuple[str, ...]
    simulated: bool | None

    @property
    def sections(self) -> tuple[bool, ...]:
        """The sections reported, by their `simulated` value."""
        return tuple(sim for sim in (False, True) if self.simulated in (None, sim))

    def keys(self) -> Where:
        """The LLM node rows in scope, by the columns node_runs and node_daily share."""
        where = Where().add("node_type = 'llm'")
        if self.workflow:
            where.add("workflow = ?", self.workflow)
        if self.simulated is not None:
            where.add("coalesce(simulated, false) = ?", self.simulated)
        return where.add_in("provider", self.providers).add_in("model", self.models)

    def nodes(self, span: Window | None = None) -> Where:
        """The LLM node rows in scope in node_runs, over `span` (default: the window)."""
        return self.keys().between(NODE_COUNTS_AT, span or self.span)


def _run_stats(scope: _Scope) -> dict[bool, tuple[RunStats, RunStats]]:
    """Current and previous period per section, in one scan of both periods.

    A run is an execution of the section of each kind of call it made: a real run's cost is
    its real calls, and the simulated calls a real run made (a node on the simulated
    provider) count in the simulated section, never in real spend.
    """
    both = Window(scope.span.previous.start, scope.span.end)
    runs = Where().between("r.started_at", both).add(f"r.{FINISHED_RUN}")
    if scope.workflow:
        runs.add("r.workflow = ?", scope.workflow)
    if scope.providers or scope.models:
        # The run's cost is then the part spent on the chosen providers and models, by the
        # engine's rule: unknown only when calls were made and none had a price.
        nodes = scope.nodes(both)
        source = f"""
            SELECT n.sim, r.started_at, n.cost, r.run_id
            FROM runs r JOIN (
                SELECT run_id, coalesce(simulated, false) AS sim,
                    CASE WHEN count_if(called) = 0 OR count_if(called AND cost_usd IS NOT NULL) > 0
                        THEN coalesce(sum(cost_usd) FILTER (WHERE called), 0) END AS cost
                FROM (SELECT *, {LLM_CALL} AS called FROM node_runs WHERE {nodes.sql})
                GROUP BY ALL
            ) n USING (run_id)
            WHERE {runs.sql}"""
        params = [*nodes.params, *runs.params]
    else:
        simulated_run = "coalesce(r.simulated, false)"
        source = f"""
            SELECT false AS sim, r.started_at, r.cost_usd AS cost, r.run_id FROM runs r
            WHERE {runs.sql} AND NOT {simulated_run}
            UNION ALL
            SELECT true, r.started_at,
                CASE WHEN {simulated_run} THEN r.cost_usd ELSE r.simulated_cost_usd END, r.run_id
            FROM runs r
            WHERE {runs.sql} AND ({simulated_run} OR r.simulated_cost_usd IS NOT NULL)"""
        params = [*runs.params, *runs.params]
    rows = get_store(scope.home).query(
        f"""
        SELECT sim, started_at >= ?, count(*), count(cost), sum(cost), avg(cost), min(cost),
            max(cost), count(DISTINCT CAST(started_at AS DATE)), arg_max(run_id, cost)
        FROM ({source})
        WHERE list_contains(?, sim)
        GROUP BY ALL
        """,
        [scope.span.start, *params, list(scope.sections)],
    )
    found = {(sim, current): figures for sim, current, *figures in rows}
    return {
        sim: (_run_figures(found.get((sim, True))), _run_figures(found.get((sim, False))))
        for sim in scope.sections
    }


def _run_figures(row: Sequence | None) -> RunStats:
    if row is None:
        return RunStats()
    executions, priced, total, average, low, high, days, costliest = row
    return RunStats(int(executions), int(priced), total, average, low, high, int(days), costliest)


# Bit of GROUPING(provider, model, workflow, node, day) set for each column left out.
_SETS = {31: "total", 15: "provider", 7: "model", 27: "workflow", 25: "node", 30: "day", 1: "use"}


def _node_groups(scope: _Scope) -> dict[bool, list[tuple]]:
    """Every breakdown of both sections, plus (workflow, node, provider, model) for the
    cheaper-model arithmetic, in one pass over the window's rollup rows."""
    relation, params = node_days(scope.span, scope.keys())
    # Rows that made no call carry $0 (cache hits, calls never made) and no saving unless
    # they are hits, so plain sums are right.
    repeatable = "called AND status = 'success' AND hashed AND NOT cache_enabled"
    rows = get_store(scope.home).query(
        f"""
        SELECT sim, g, provider, model, workflow, node, day,
            CASE WHEN calls > 0 AND calls = unpriced THEN NULL ELSE cost END,
            calls, tokens_in, tokens_out, unpriced, hits, saved, priced_in, priced_out, cost,
            repeatable, repeatable_cost, cached, reasoning
        FROM (
            SELECT simulated AS sim, grouping(provider, model, workflow, node, day) AS g,
                provider, model, workflow, node, day,
                coalesce(sum(node_rows) FILTER (WHERE called), 0) AS calls,
                coalesce(sum(node_rows) FILTER (WHERE called AND NOT priced), 0) AS unpriced,
                sum(cost_usd) AS cost, sum(input_tokens) AS tokens_in,
                sum(output_tokens) AS tokens_out,
                coalesce(sum(node_rows) FILTER (WHERE cache_hit), 0) AS hits,
                sum(saved_cost_usd) AS saved,
                coalesce(sum(input_tokens) FILTER (WHERE priced), 0) AS priced_in,
                coalesce(sum(output_tokens) FILTER (WHERE priced), 0) AS priced_out,
                coalesce(sum(node_rows) FILTER (WHERE {repeatable}), 0) AS repeatable,
                coalesce(sum(cost_usd) FILTER (WHERE {repeatable}), 0) AS repeatable_cost,
                sum(cached_tokens) AS cached, sum(reasoning_tokens) AS reasoning
            FROM {relation}
            GROUP BY GROUPING SETS ((sim), (sim, provider), (sim, provider, model),
                (sim, workflow), (sim, workflow, node), (sim, day),
                (sim, workflow, node, provider, model))
        )
        """,
        params,
    )
    grouped: dict[bool, list[tuple]] = {}
    for sim, g, *rest in rows:
        grouped.setdefault(sim, []).append((_SETS[g], *rest))
    return grouped


def _repeats(scope: _Scope, nodes: Sequence[_Candidate]) -> list[_Repeat]:
    """How many calls of each of `nodes` repeated an earlier identical request.

    A repeat is a successful call whose exact request (same hash) was already made in the
    window; a cache would have answered it for $0. Counting them exactly takes a hash table
    of every distinct request, over a second for ten million calls, so past
    EXACT_REPEATS_LIMIT calls of `nodes` the distinct requests are estimated (HyperLogLog,
    within a few per cent) and the figure is marked approximate.
    """
    where = scope.nodes().add(LLM_CALL).add("status = 'success' AND request_hash IS NOT NULL")
    where.add("NOT coalesce(cache_enabled, false)")
    exact = sum(n.calls for n in nodes) <= EXACT_REPEATS_LIMIT
    picked = f"""
        SELECT sim, workflow, node, request_hash, cost_usd
        FROM (SELECT coalesce(simulated, false) AS sim, * FROM node_runs WHERE {where.sql})
        JOIN (SELECT unnest(?::BOOLEAN[]) AS sim, unnest(?::VARCHAR[]) AS workflow,
            unnest(?::VARCHAR[]) AS node) USING (sim, workflow, node)
    """
    if exact:
        # Each repeat is charged the average cost of its own request.
        sql = f"""
            SELECT sim, workflow, node, sum(n), sum(n - 1), sum((n - 1) * avg_cost)
            FROM (
                SELECT sim, workflow, node, hash(request_hash) AS request, count(*) AS n,
                    coalesce(avg(cost_usd), 0) AS avg_cost
                FROM ({picked})
                GROUP BY ALL
            )
            GROUP BY ALL
            HAVING sum(n - 1) > 0
        """
    else:
        sql = f"""
            SELECT sim, workflow, node, n, repeated, repeated * avg_cost
            FROM (
                SELECT sim, workflow, node, count(*) AS n,
                    greatest(count(*) - approx_count_distinct(request_hash), 0) AS repeated,
                    coalesce(avg(cost_usd), 0) AS avg_cost
                FROM ({picked})
                GROUP BY ALL
            )
            WHERE repeated > 0
        """
    params = [
        *where.params,
        [n.simulated for n in nodes],
        [n.workflow for n in nodes],
        [n.node for n in nodes],
    ]
    return [
        _Repeat(sim, wf, node, int(calls), int(repeated), float(cost), not exact)
        for sim, wf, node, calls, repeated, cost in get_store(scope.home).query(sql, params)
    ]


# ----------------------------------------------------------------------------- assembling


def _set_runs(section: CostSection, current: RunStats, previous: RunStats) -> None:
    section.runs, section.previous = current, previous
    section.cost_delta = _delta(current.total_cost_usd, previous.total_cost_usd)
    section.executions_delta = _delta(current.executions, previous.executions)
    section.average_delta = _delta(current.average_cost_usd, previous.average_cost_usd)


def _delta(current: float | None, previous: float | None) -> Delta:
    change = None if current is None or previous is None else current - previous
    return Delta(current, previous, change, pct_change(current, previous))


def _set_breakdowns(
    section: CostSection, rows: list[tuple], candidates: list[_Candidate]
) -> list[_Use]:
    """Fills the section from its grouping-set rows; returns the per-model use of each node
    and adds the nodes with calls that could have repeated a request to `candidates`."""
    totals = next(r for r in rows if r[0] == "total")
    section.node_cost_usd = float(totals[6] or 0)
    calls, tokens_in, tokens_out, unpriced, hits = (int(v) for v in totals[7:12])
    section.calls, section.input_tokens, section.output_tokens = calls, tokens_in, tokens_out
    section.unpriced_calls, section.cache_hits = unpriced, hits
    section.cache_savings_usd = float(totals[12])
    section.cached_tokens, section.reasoning_tokens = (int(v or 0) for v in totals[-2:])
    several = sum(1 for r in rows if r[0] == "workflow") > 1
    uses = []
    for dimension, provider, model, wf, node, day, *figures in rows:
        if dimension == "use":
            priced_calls = int(figures[1]) - int(figures[4])
            uses.append(
                _Use(provider, model, wf, node, priced_calls, *figures[7:9], float(figures[9]))
            )
        if dimension in ("total", "use"):
            continue
        item = _breakdown(
            {
                "provider": provider,
                "model": model,
                "workflow": wf,
                "node": f"{wf}/{node}" if several else node,
                "day": day.isoformat() if day else None,
            }[dimension],
            figures,
            section.node_cost_usd,
        )
        if dimension == "model":
            item.provider = provider
            if item.unpriced_calls:
                section.unpriced_models.append(f"{provider}/{model}")
        if dimension == "node":
            item.workflow, item.node = wf, node
            calls, cost = figures[10:12]
            if calls > 1:
                candidates.append(_Candidate(section.simulated, wf, node, int(calls), cost))
        getattr(section, f"by_{dimension}").append(item)
    for dimension in ("provider", "model", "workflow", "node"):
        getattr(section, f"by_{dimension}").sort(key=lambda b: (-(b.cost_usd or 0), b.key))
    section.by_day.sort(key=lambda b: b.key)
    section.unpriced_models.sort()
    return uses


def _breakdown(key: str | None, figures: Sequence, whole: float) -> Breakdown:
    cost, calls, tokens_in, tokens_out, unpriced, hits, saved = figures[:7]
    return Breakdown(
        key=str(key),
        cost_usd=cost,
        share=(cost or 0) / whole if whole else 0.0,
        calls=int(calls),
        input_tokens=int(tokens_in),
        output_tokens=int(tokens_out),
        unpriced_calls=int(unpriced),
        cache_hits=int(hits),
        saved_cost_usd=float(saved),
    )


# ----------------------------------------------------------------------------- recommendation


def _switch_options(uses: list[_Use], prices: PriceBook) -> list[Recommendation]:
    """What each node's priced calls would have cost on the nearest cheaper model: the
    likeliest drop-in, so a saving that is believable rather than the largest on paper."""
    options = []
    for use in uses:
        if not use.provider or not use.model or use.cost_usd <= 0:
            continue
        nearest = prices.cheaper_models(use.provider, use.model, limit=1)
        if not nearest:
            continue
        key, _ = nearest[0]
        would = prices.cost_of_calls(SIMULATED, key, use.calls, use.input_tokens, use.output_tokens)
        saving = use.cost_usd - would if would is not None else 0.0
        if saving > 0:
            options.append(
                Recommendation(
                    kind="switch_model",
                    workflow=use.workflow,
                    node=use.node,
                    text="",
                    saving_usd=saving,
                    saving_pct=saving / use.cost_usd,
                    from_model=use.model,
                    to_model=bare_model(use.provider, key),
                )
            )
    return options


def _add_cache_options(
    scope: _Scope,
    sections: dict[bool, CostSection],
    options: dict[bool, list[Recommendation]],
    candidates: list[_Candidate],
) -> None:
    """Adds enabling the cache on nodes whose calls repeated requests to `options`.

    Counting repeats reads the request hash of every call in the window, a second or more
    over ten million calls, so they are counted for a few nodes per section: those whose
    cacheable calls cost the most, the REPEAT_NODES largest savings caching could bring.
    Only the section's best option is recommended, so a node whose cacheable calls cost
    less than the best model switch saves is never counted: caching it cannot win. A node
    left out for ranking lower could still save more only if a much larger share of its
    calls were repeats.
    """
    picked: list[_Candidate] = []
    for sim, found in options.items():
        best = max((o.saving_usd or 0 for o in found), default=0.0)
        could_win = [c for c in candidates if c.simulated == sim and c.cost_usd > best]
        could_win.sort(key=lambda c: (-c.cost_usd, c.workflow, c.node))
        picked += could_win[:REPEAT_NODES]
    if not picked:
        return
    node_cost = {
        (sim, b.workflow, b.node): b.cost_usd or 0
        for sim, section in sections.items()
        for b in section.by_node
    }
    for repeat in _repeats(scope, picked):
        if repeat.cost_usd <= 0:
            continue
        cost = node_cost.get((repeat.simulated, repeat.workflow, repeat.node))
        options[repeat.simulated].append(
            Recommendation(
                kind="enable_cache",
                workflow=repeat.workflow,
                node=repeat.node,
                text="",
                saving_usd=repeat.cost_usd,
                saving_pct=repeat.cost_usd / cost if cost else None,
                repeated_calls=repeat.repeated,
                calls=repeat.calls,
                approximate=repeat.approximate,
            )
        )


def _recommend(
    section: CostSection, options: list[Recommendation], span: Window
) -> Recommendation | None:
    """The single change that would have saved the most over the window; else, when there
    was spend, the node to look at first (no saving claimed that the data cannot back)."""
    if not section.node_cost_usd:
        return None
    several = len(section.by_workflow) > 1
    if not options:
        top = section.by_node[0]
        return Recommendation(
            kind="review_node",
            workflow=top.workflow or "",
            node=top.node or top.key,
            text=f"{top.key} is {top.share:.0%} of the spend and no cheaper model or cache "
            "would have helped: review its prompt length and max_output_tokens",
        )
    best = max(options, key=lambda r: (r.saving_usd or 0, r.kind, r.workflow, r.node))
    best.saving_share = (best.saving_usd or 0) / section.node_cost_usd
    label = f"{best.workflow}/{best.node}" if several else best.node
    amount = f"{money(best.saving_usd)} ({best.saving_pct or 0:.0%})"
    if best.kind == "switch_model":
        best.text = (
            f"Switch {label} from {best.from_model} to {best.to_model}: "
            f"would have saved {amount} {span.phrase}"
        )
    else:
        about = "about " if best.approximate else ""
        best.text = (
            f"Enable cache on {label}: {about}{count(best.repeated_calls or 0)} of "
            f"{count(best.calls or 0)} calls repeated an identical request; caching would "
            f"have saved {about}{amount} {span.phrase}"
        )
    return best

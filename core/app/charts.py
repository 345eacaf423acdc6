"""What the Profile, Costs and Compare pages show: Altair charts, and the tables and headline
figures that go with them.

Builders take figures that are already aggregated (a report's breakdowns, a profile, a few
hundred rows of a series) and never query. The Costs page and its HTML export are drawn from
the same builders, so the file shared after a meeting shows what the meeting saw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import pandas as pd

from core.analytics.compare import Comparison, MetricDelta
from core.analytics.cost import Breakdown, CostReport, CostSection, Delta
from core.analytics.overview import DailySpend
from core.analytics.profile import NodeProfile, Profile
from core.analytics.spend import SpendSeries
from core.analytics.targets import TargetStatus
from core.analytics.window import Window
from core.exporters.webhook import figure
from core.formatting import count, money

SHARE = "Share"  # the share-of-spend column: a bar in the app, a percentage in the export
STATUS_BADGES = {"OK": "✅ OK", "SLOW": "⚠️ SLOW", "BOTTLENECK": "❌ BOTTLENECK"}
STATUS_COLOURS = {"OK": "#54A24B", "SLOW": "#F58518", "BOTTLENECK": "#E45756"}
# Tableau 10 in order, so the largest key always gets the same colour; "other" is grey.
SERIES_COLOURS = ("#4C78A8", "#F58518", "#E45756", "#72B7B2", "#54A24B",
                  "#EECA3B", "#B279A2", "#FF9DA6", "#9D755D", "#79706E")  # fmt: skip
OTHER_COLOUR = "#BAB0AC"
BAR_COLOUR = "#4C78A8"
MUTED = "#9E9E9E"
BETTER, WORSE = "#2E9E5B", "#D64550"
TOP_BARS = 10  # bars in a top-N chart; the table beside it lists every key
ROW_PX = 34  # height of one bar row in horizontal charts
GAP = 0.15  # share of a period left blank between two stacked bars


@dataclass(frozen=True)
class Headline:
    """One headline figure, as st.metric takes it (and the HTML export draws it)."""

    label: str
    value: str
    delta: str | None = None
    delta_color: str = "normal"  # normal | inverse (a rise is bad) | off (neither)
    help: str | None = None


def _money_format(top: float) -> str:
    """A d3 format for a USD axis: whole dollars for big spend, fractions of a cent for the
    small sums a simulated or cheap workflow runs up (two decimals would read $0.00)."""
    if top >= 10:
        return "$,.0f"
    return "$,.2f" if top >= 0.1 else "$,.4~f"


def _signed_money(value: float) -> str:
    return ("-" if value < 0 else "+") + money(abs(value))


# ----------------------------------------------------------------------------- costs

SIMULATED_NOTE = (
    "What the simulated calls would have cost on the models they stand in for. Nothing was "
    "paid, and none of it is counted in real spend."
)


def versus(report: CostReport) -> str:
    """What the deltas compare with: "previous 7 days", "previous period"."""
    return Window(report.start, report.end, report.days).previous_phrase


def no_runs(report: CostReport, kind: str = "") -> str:
    """What an empty section or report says; `kind` is real, simulated or empty for any."""
    runs = f"{kind} runs" if kind else "runs"
    return f"No {runs} {Window(report.start, report.end, report.days).phrase}."


def thin_note(section: CostSection, report: CostReport) -> str | None:
    """The warning that goes with a section's deltas when its previous period is thin."""
    return section.thin_previous(versus(report))


def costliest_run_link(section: CostSection) -> str | None:
    """Markdown naming the most expensive run, linked to its page in the runs explorer."""
    run_id = section.runs.max_cost_run_id
    if not run_id:
        return None
    return (
        f"Most expensive run: [{run_id[:12]}](runs?run={run_id}) · "
        f"{money(section.runs.max_cost_usd)}"
    )


def section_metrics(section: CostSection, compared_with: str) -> list[Headline]:
    """Totals of one kind of spend with their change against the previous period
    (`compared_with`, as `versus` names it)."""
    runs, previous = section.runs, section.previous
    kind = "simulated " if section.simulated else ""
    return [
        Headline(
            "Total spend",
            money(runs.total_cost_usd or 0),
            _money_delta(section.cost_delta),
            "inverse",
            f"What the {kind}runs in this period cost, {money(previous.total_cost_usd or 0)} "
            f"in the {compared_with}.",
        ),
        Headline(
            "Runs",
            count(runs.executions),
            _count_delta(section.executions_delta),
            "off",
            f"Finished {kind}runs; {count(previous.executions)} in the {compared_with}.",
        ),
        Headline(
            "Average per run",
            money(runs.average_cost_usd),
            _money_delta(section.average_delta),
            "inverse",
            "Mean cost of the runs that had a price.",
        ),
        Headline(
            "Most expensive run",
            money(runs.max_cost_usd),
            help=(f"Run {runs.max_cost_run_id}. " if runs.max_cost_run_id else "")
            + f"The cheapest run cost {money(runs.min_cost_usd)}.",
        ),
        Headline(
            "Cache savings",
            money(section.cache_savings_usd),
            help=f"{count(section.cache_hits)} calls answered from the cache for $0: what "
            "those calls would otherwise have cost.",
        ),
    ]


def _money_delta(delta: Delta | None) -> str | None:
    if delta is None or delta.change is None or delta.change_pct is None:
        return None
    return f"{_signed_money(delta.change)} ({_relative(delta.change_pct)})"


def _count_delta(delta: Delta | None) -> str | None:
    if delta is None or delta.change is None or delta.change_pct is None:
        return None
    return f"{delta.change:+,.0f} ({_relative(delta.change_pct)})"


def _relative(change: float) -> str:
    """+12 %, or 48× when a period grew from next to nothing (+4,700 % reads as noise)."""
    return f"{change + 1:,.0f}×" if change >= 9.5 else f"{change:+.0%}"


def unpriced_note(section: CostSection) -> str | None:
    if not section.unpriced_calls:
        return None
    calls = f"{count(section.unpriced_calls)} call{'s' * (section.unpriced_calls != 1)}"
    return (
        f"{calls} could not be priced ({', '.join(section.unpriced_models)}): their cost is "
        "unknown and left out of every total above. Add the model's price under `pricing:` "
        "in the workflow file."
    )


def recommendation_note(section: CostSection) -> str | None:
    advice = section.recommendation
    if advice is None or not advice.text:
        return None
    if advice.saving_share:
        return f"{advice.text} — {advice.saving_share:.0%} of this period's spend."
    return advice.text


def spend_chart(series: SpendSeries, simulated: bool) -> alt.Chart:
    """Stacked bars of spend per period, one colour per key, the largest at the bottom.

    The stack is computed here rather than by Vega-Lite: bars that span a period (x to x2)
    are otherwise read as horizontal ranges, and an explicit stack also fixes the order."""
    rows, order = _stacked(series.rows[series.rows["simulated"] == simulated])
    rows["period_end"] = _period_end(rows["period"], series.grain)
    rows["when"] = rows["period"].dt.strftime(_PERIOD_LABELS[series.grain])
    first = pd.Timestamp(series.start)
    last = _period_end(pd.Series([pd.Timestamp(series.end)]), series.grain, gap=0)[0]
    named = len(order) - int(rows["other"].any())
    palette = [SERIES_COLOURS[i % len(SERIES_COLOURS)] for i in range(named)] + [OTHER_COLOUR]
    grain, dimension = series.grain.capitalize(), series.dimension.capitalize()
    return (
        alt.Chart(rows)
        .mark_bar()
        .encode(
            x=alt.X(
                "period:T",
                title=None,
                scale=alt.Scale(domain=[first.isoformat(), last.isoformat()]),
                axis=alt.Axis(
                    format=_AXIS_DATES[series.grain],
                    labelAngle=0,
                    tickCount={"interval": series.grain, "step": 1},  # no mid-day ticks
                ),
            ),
            x2="period_end:T",
            y=alt.Y(
                "top:Q",
                title=f"Spend per {series.grain} (USD)",
                axis=alt.Axis(format=_money_format(float(rows["top"].max()) if len(rows) else 0)),
            ),
            y2="bottom:Q",
            color=alt.Color(
                "key:N",
                title=dimension,
                sort=order,
                scale=alt.Scale(domain=order, range=palette[: len(order)]),
                legend=alt.Legend(orient="right", labelLimit=220),
            ),
            tooltip=[
                alt.Tooltip("when:N", title=grain),
                alt.Tooltip("key:N", title=dimension),
                alt.Tooltip("cost_usd:Q", title="Spend", format="$,.4~f"),
                alt.Tooltip("period_total:Q", title=f"{grain} total", format="$,.4~f"),
                alt.Tooltip("calls:Q", title="Calls", format=","),
            ],
        )
        .properties(height=320)
    )


def _stacked(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Rows with the bottom and top of their segment, the key that cost most in the whole
    window lowest in every bar and "other" on top; and the keys in that order."""
    totals = rows.groupby(["other", "key"])["cost_usd"].sum().reset_index()
    totals = totals[totals["cost_usd"] > 0]  # a key whose calls had no price has no bar
    order = list(totals.sort_values(["other", "cost_usd"], ascending=[True, False])["key"])
    rows = rows[rows["key"].isin(order)]
    stacked = rows.assign(rank=rows["key"].map({key: i for i, key in enumerate(order)}))
    stacked = stacked.sort_values(["period", "rank"]).reset_index(drop=True)
    by_period = stacked.groupby("period")["cost_usd"]
    stacked["top"] = by_period.cumsum()
    stacked["bottom"] = stacked["top"] - stacked["cost_usd"]
    stacked["period_total"] = by_period.transform("sum")
    return stacked, order


_PERIOD_LABELS = {"day": "%a %d %b %Y", "week": "week of %d %b %Y", "month": "%B %Y"}
_AXIS_DATES = {"day": "%d %b", "week": "%d %b", "month": "%b %Y"}


def _period_end(starts: pd.Series, grain: str, gap: float = GAP) -> pd.Series:
    """Where a period's bar ends: the next period's start, less a small gap between bars."""
    if grain == "month":
        following = starts + pd.offsets.MonthBegin(1)
    else:
        following = starts + pd.Timedelta(days=7 if grain == "week" else 1)
    return following - (following - starts) * gap


def breakdown_chart(items: Sequence[Breakdown], dimension: str) -> alt.LayerChart:
    """Horizontal bars of the TOP_BARS largest keys, labelled with their cost and share."""
    shown = list(items)[:TOP_BARS]
    names = [b.key for b in items]
    data = pd.DataFrame(
        {
            # A model name two providers serve would otherwise share one bar.
            "key": [f"{b.key} ({b.provider})" if names.count(b.key) > 1 else b.key for b in shown],
            "cost": [b.cost_usd or 0.0 for b in shown],
            "label": [
                f"{money(b.cost_usd)} · {b.share:.0%}" if b.cost_usd is not None else "unpriced"
                for b in shown
            ],
            "calls": [b.calls for b in shown],
        }
    )
    order = list(data["key"])
    y = alt.Y("key:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    top = float(data["cost"].max()) if len(data) else 0.0
    x = alt.X(
        "cost:Q",
        title="Spend (USD)",
        axis=alt.Axis(format=_money_format(top), tickCount=5),
        scale=alt.Scale(domainMax=top * 1.3 or 1),  # room for the labels
    )
    base = alt.Chart(data)
    bars = base.mark_bar(color=BAR_COLOUR, cornerRadiusEnd=3, height={"band": 0.7}).encode(
        x=x,
        y=y,
        tooltip=[
            alt.Tooltip("key:N", title=dimension.capitalize()),
            alt.Tooltip("label:N", title="Spend · share"),
            alt.Tooltip("calls:Q", title="Calls", format=","),
        ],
    )
    labels = base.mark_text(align="left", dx=6, color="#444").encode(x=x, y=y, text="label:N")
    return alt.layer(bars, labels).properties(height=60 + ROW_PX * max(len(order), 1))


def breakdown_table(items: Sequence[Breakdown], dimension: str) -> pd.DataFrame:
    """Every key of a breakdown, most spent first."""
    rows = []
    for item in items:
        row: dict[str, object] = {dimension.capitalize(): item.key}
        if dimension == "model":
            row["Provider"] = item.provider
        row |= {
            "Spend": "unpriced" if item.cost_usd is None else money(item.cost_usd),
            SHARE: item.share,
            "Calls": item.calls,
            "Input tokens": item.input_tokens,
            "Output tokens": item.output_tokens,
            "Cache hits": item.cache_hits,
            "Saved by cache": money(item.saved_cost_usd),
            "Unpriced calls": item.unpriced_calls,
        }
        rows.append(row)
    return pd.DataFrame(rows)


def spend_sparkline(daily: DailySpend, simulated: bool) -> alt.Chart:
    """Spend per UTC day as a small area, no axes: the trend behind a headline figure (the
    tooltip gives each day's amount)."""
    rows = pd.DataFrame(
        [(day, cost) for day, sim, cost in daily.days if sim == simulated],
        columns=["day", "cost"],
    )
    rows["day"] = pd.to_datetime(rows["day"])
    rows["spent"] = rows["cost"].map(money)
    colour = MUTED if simulated else BAR_COLOUR
    return (
        alt.Chart(rows)
        .mark_area(line={"color": colour}, color=colour, opacity=0.25, interpolate="monotone")
        .encode(
            x=alt.X("day:T", axis=None),
            y=alt.Y("cost:Q", axis=None, scale=alt.Scale(zero=True)),
            tooltip=[
                alt.Tooltip("day:T", title="Day (UTC)", format="%a %d %b"),
                alt.Tooltip("spent:N", title="Spend"),
            ],
        )
        .properties(height=56)
        .configure_view(stroke=None)
    )


# ----------------------------------------------------------------------------- profile


def profile_metrics(result: Profile) -> list[Headline]:
    runs = len(result.runs)
    wall = result.duration_ms
    return [
        Headline("Runs profiled", count(runs), help="Means and percentiles are over these runs."),
        Headline("Mean run time", f"{wall / 1000:,.2f} s", help="Wall time from start to end."),
        Headline(
            "Mean cost per run",
            money(result.cost_usd),
            help=f"{count(result.unpriced_calls)} unpriced calls are not included."
            if result.unpriced_calls
            else "Priced calls only; cache hits cost $0.",
        ),
        Headline(
            "Critical path",
            f"{result.critical_path_ms / 1000:,.2f} s",
            help=" → ".join(result.critical_path)
            + ": the chain of nodes that sets the run's length.",
        ),
        Headline(
            "Parallelism",
            f"{result.average_parallelism:.1f} of {result.max_parallelism}",
            help="Nodes busy on average over the run, of the most the DAG lets run at once.",
        ),
    ]


def profile_table(result: Profile) -> pd.DataFrame:
    """One row per node in workflow order: status first, since that is what to act on."""
    spent = result.cost_usd
    rows = [
        {
            "Node": node.name,
            "Status": STATUS_BADGES[node.status],
            "Mean ms": round(node.duration_ms),
            "p50 ms": round(node.p50_ms),
            "p95 ms": round(node.p95_ms),
            "Cost / run": "unpriced" if node.cost_usd is None else money(node.cost_usd),
            SHARE: (node.cost_usd or 0.0) / spent if spent else 0.0,
            "Critical path": _path_text(node),
            "Model": f"{node.provider}/{node.model}" if node.model else node.node_type,
            "Calls": node.calls,
            "Errors": node.errors,
            "Cache hits": node.cache_hits,
            "Why": "; ".join(node.reasons),
        }
        for node in result.nodes
    ]
    return pd.DataFrame(rows)


def _path_text(node: NodeProfile) -> str:
    return "on the path" if node.on_critical_path else f"{count(node.slack_ms)} ms slack"


def _segment(node: str, kind: str, start: float, length: float) -> dict[str, object]:
    return {
        "node": node,
        "kind": kind,
        "start": start,
        "end": start + length,
        "text": f"{count(length)} ms",
    }


def latency_chart(quantiles: pd.DataFrame, result: Profile) -> alt.LayerChart:
    """Box plots of each node's call durations: whisker from the fastest call to p95, box
    from p25 to p75, a white tick at the median; coloured by the node's status. The slowest
    call is in the tooltip but not drawn, since one timeout would squash every box."""
    status = {n.name: n.status for n in result.nodes}
    order = [n.name for n in result.nodes]
    data = quantiles.assign(
        status=quantiles["node"].map(status).fillna("OK"),
        badge=lambda d: d["status"].map(STATUS_BADGES),
    )
    y = alt.Y("node:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    x_title = "Call duration (ms)"
    tooltip = [
        alt.Tooltip("node:N", title="Node"),
        alt.Tooltip("badge:N", title="Status"),
        alt.Tooltip("calls:Q", title="Calls", format=","),
        *[
            alt.Tooltip(f"{column}:Q", title=title, format=",.0f")
            for column, title in (
                ("min", "Fastest ms"),
                ("p25", "p25 ms"),
                ("p50", "Median ms"),
                ("p75", "p75 ms"),
                ("p95", "p95 ms"),
                ("max", "Slowest ms"),
            )
        ],
    ]
    colour = alt.Color(
        "status:N",
        title="Status",
        scale=alt.Scale(domain=list(STATUS_COLOURS), range=list(STATUS_COLOURS.values())),
        legend=alt.Legend(orient="top", title=None),
    )
    base = alt.Chart(data).encode(y=y, tooltip=tooltip)
    whisker = base.mark_rule(color="#666").encode(
        x=alt.X("min:Q", title=x_title, scale=alt.Scale(zero=True)), x2="p95:Q"
    )
    box = base.mark_bar(height={"band": 0.6}, cornerRadius=2).encode(
        x="p25:Q", x2="p75:Q", color=colour
    )
    median = base.mark_tick(color="white", thickness=2.5, size=18).encode(x="p50:Q")
    ends = [base.mark_tick(color="#666", size=10).encode(x=f"{q}:Q") for q in ("min", "p95")]
    return alt.layer(whisker, box, median, *ends).properties(height=110 + ROW_PX * len(order))


def slack_chart(result: Profile) -> alt.LayerChart:
    """Each node's mean duration followed by its slack: how much longer it could take before
    the run gets longer. Nodes on the critical path have none, so they are the ones to
    shorten; a node with a long slack can move to a slower, cheaper model for free."""
    on_path, off_path, spare = "on the critical path", "off the critical path", "slack"
    rows = []
    for node in result.nodes:
        kind = on_path if node.on_critical_path else off_path
        rows.append(_segment(node.name, kind, 0.0, node.duration_ms))
        if node.slack_ms > 0:
            rows.append(_segment(node.name, spare, node.duration_ms, node.slack_ms))
    data = pd.DataFrame(rows)
    order = [n.name for n in result.nodes]
    y = alt.Y("node:N", sort=order, title=None, axis=alt.Axis(labelLimit=200))
    bars = (
        alt.Chart(data)
        .mark_bar(height={"band": 0.6}, cornerRadius=2)
        .encode(
            x=alt.X("start:Q", title="Mean duration, then slack (ms)"),
            x2="end:Q",
            y=y,
            color=alt.Color(
                "kind:N",
                title=None,
                scale=alt.Scale(
                    domain=[on_path, off_path, spare], range=["#E45756", BAR_COLOUR, "#D9D9D9"]
                ),
                legend=alt.Legend(orient="top", title=None),
            ),
            tooltip=[
                alt.Tooltip("node:N", title="Node"),
                alt.Tooltip("kind:N", title="Part"),
                alt.Tooltip("text:N", title="Length"),
            ],
        )
    )
    return bars.properties(height=110 + ROW_PX * len(order))


# ----------------------------------------------------------------------------- compare


LOWER_IS_BETTER = {"usd": True, "ms": True, "share": False}


def verdict(metric: MetricDelta) -> tuple[str, str]:
    """("better" | "worse" | "same", a sentence saying so about B against A)."""
    if not metric.significant:
        return "same", (
            f"No significant difference in {metric.metric}: the interval "
            f"{_interval(metric)} contains zero."
        )
    lower = metric.delta < 0
    better = lower == LOWER_IS_BETTER[metric.unit]
    direction = "lower" if lower else "higher"
    size = f"{abs(metric.relative):.0%} " if metric.relative is not None else ""
    if metric.unit == "share":
        size = f"{abs(metric.delta) * 100:.1f} points "
    return ("better" if better else "worse"), (
        f"B's {metric.metric} is {size}{direction} than A's "
        f"({_value(metric.a, metric.unit)} → {_value(metric.b, metric.unit)}; 95 % interval "
        f"of the difference {_interval(metric)}): significant."
    )


def _value(value: float, unit: str) -> str:
    if unit == "usd":
        return money(value)
    return f"{value:.1%}" if unit == "share" else f"{value:,.0f} ms"


def _difference(value: float, unit: str) -> str:
    if unit == "usd":
        return _signed_money(value)
    return f"{value * 100:+.1f} pts" if unit == "share" else f"{value:+,.0f} ms"


def _interval(metric: MetricDelta) -> str:
    return f"[{_difference(metric.low, metric.unit)}, {_difference(metric.high, metric.unit)}]"


def comparison_table(result: Comparison) -> pd.DataFrame:
    rows = []
    for metric in result.metrics:
        kind, _ = verdict(metric)
        rows.append(
            {
                "Metric": metric.metric,
                "A": _value(metric.a, metric.unit),
                "B": _value(metric.b, metric.unit),
                "B − A": _difference(metric.delta, metric.unit),
                "Relative": f"{metric.relative:+.1%}" if metric.relative is not None else "–",
                "95 % interval": _interval(metric),
                "Verdict": {
                    "better": "✅ B better",
                    "worse": "❌ B worse",
                    "same": "➖ no significant difference",
                }[kind],
            }
        )
    return pd.DataFrame(rows)


def delta_panels(result: Comparison) -> list[alt.LayerChart]:
    """One chart per metric, each on its own scale (dollars, milliseconds, points): the
    observed B − A as a dot, its 95 % bootstrap interval as a bar, and a zero line. A bar
    that does not cross zero is a significant difference; colour says which way is good.
    Separate charts rather than one concatenation, so each stretches to its card's width
    instead of keeping a fixed width that overflows a narrow one."""
    return [_delta_panel(metric) for metric in result.metrics]


def axis_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], float]:
    """About `count` round tick values covering [low, high] (steps of 1, 2, 2.5 or 5 times a
    power of ten) and the step: ticks Vega-Lite picks itself can print alike once rounded."""
    raw = ((high - low) or abs(high) or 1.0) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * 0.999)
    first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
    return [round(i * step, 12) for i in range(first, last + 1)], step


def decimals_for(step: float) -> int:
    """The decimals that print every multiple of `step` differently."""
    decimals = 0
    while decimals < 12 and abs(round(step, decimals) - step) > step * 1e-6:
        decimals += 1
    return decimals


def axis_labels(unit: str, ticks: list[float], step: float) -> str:
    """A Vega label expression with the unit spelled out and no SI suffix: "$0.004",
    "-120 ms", "1.5 s", "2.5 pts"; zero reads 0."""
    value = "datum.value"
    if unit == "usd":
        text = f"format({value}, '$,.{decimals_for(step)}f')"
    elif unit == "ms" and max((abs(t) for t in ticks), default=0) >= 1000:
        text = f"format({value} / 1000, ',.{decimals_for(step / 1000)}f') + ' s'"
    elif unit == "ms":
        text = f"format({value}, ',.{decimals_for(step)}f') + ' ms'"
    else:
        text = f"format({value}, ',.{decimals_for(step)}f') + ' pts'"
    return f"{value} == 0 ? '0' : {text}"


def _around_zero(low: float, high: float) -> list[float]:
    """An x domain holding zero and the whole interval, with room on both sides for the
    label above the dot: zero at the very edge would look like a clipped interval."""
    start, end = min(0.0, low), max(0.0, high)
    pad = (end - start or max(abs(low), 1.0)) * 0.15
    return [start - pad, end + pad]


def _delta_panel(metric: MetricDelta) -> alt.LayerChart:
    kind, sentence = verdict(metric)
    scale = 100.0 if metric.unit == "share" else 1.0
    unit = {"usd": "USD", "ms": "ms", "share": "percentage points"}[metric.unit]
    data = pd.DataFrame(
        [
            {
                "metric": metric.metric,
                "delta": metric.delta * scale,
                "low": metric.low * scale,
                "high": metric.high * scale,
                "label": _difference(metric.delta, metric.unit),
                "interval": _interval(metric),
                "verdict": kind,
                "sentence": sentence,
            }
        ]
    )
    domain = _around_zero(metric.low * scale, metric.high * scale)
    ticks, step = axis_ticks(*domain)
    x = alt.X(
        "low:Q",
        title=f"B − A, {unit}",
        scale=alt.Scale(domain=domain, nice=False),
        axis=alt.Axis(values=ticks, labelExpr=axis_labels(metric.unit, ticks, step)),
    )
    y = alt.Y("metric:N", title=None, axis=alt.Axis(labelLimit=200, labelFontWeight="bold"))
    colour = alt.Color(
        "verdict:N",
        scale=alt.Scale(domain=["better", "worse", "same"], range=[BETTER, WORSE, MUTED]),
        legend=None,
    )
    tooltip = [
        alt.Tooltip("metric:N", title="Metric"),
        alt.Tooltip("label:N", title="B − A"),
        alt.Tooltip("interval:N", title="95 % interval"),
        alt.Tooltip("sentence:N", title="Reading"),
    ]
    base = alt.Chart(data).encode(y=y, tooltip=tooltip)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#333", strokeDash=[4, 3])
    interval = base.mark_bar(height=12, cornerRadius=6, opacity=0.55).encode(
        x=x, x2="high:Q", color=colour
    )
    dot = base.mark_point(filled=True, size=140, opacity=1).encode(x="delta:Q", color=colour)
    label = base.mark_text(dy=-16, fontWeight="bold").encode(
        x="delta:Q", text="label:N", color=colour
    )
    return alt.layer(interval, zero.encode(x="zero:Q"), dot, label).properties(height=70)


def violations_table(status: TargetStatus) -> pd.DataFrame:
    """The targets workflows declared that the window's runs missed, by workflow."""
    rows = [
        {
            "Workflow": metric.workflow or "",
            "Target": metric.name.replace("_", " "),
            "Value": figure(metric.value, metric.unit),
            "Limit": f"{metric.operator} {figure(metric.threshold, metric.unit)}",
            "Detail": metric.detail,
        }
        for metric in sorted(status.violations, key=lambda m: (m.workflow or "", m.name))
    ]
    return pd.DataFrame(rows, columns=["Workflow", "Target", "Value", "Limit", "Detail"])

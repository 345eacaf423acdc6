"""Compare two sets of runs (variants, versions, periods) with bootstrap confidence intervals.

A difference in averages between two small, noisy samples means little on its own; the
bootstrap resamples each set with replacement and reads the 95 % interval of the difference,
which needs no assumption about the shape of cost or latency distributions (both are skewed).
An interval that excludes zero is a difference worth acting on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from core.settings import data_home
from core.telemetry import get_store

RESAMPLES = 2000
MAX_SAMPLE = 2000  # runs per set: beyond this the interval no longer narrows usefully
SEED = 20261124


@dataclass(frozen=True)
class RunSet:
    """Which runs to take; unset fields do not filter."""

    label: str
    workflow: str | None = None
    workflow_hash: str | None = None
    tag: tuple[str, str] | None = None
    variant: str | None = None
    experiment: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    simulated: bool | None = None

    def where(self) -> tuple[str, list[object]]:
        clauses, params = ["status <> 'running'"], []
        for column in ("workflow", "workflow_hash", "variant", "experiment", "simulated"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.tag is not None:
            clauses.append("json_extract_string(tags, ?) = ?")
            params += [f"$.{self.tag[0]}", self.tag[1]]
        if self.start is not None:
            clauses.append("started_at >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append("started_at < ?")
            params.append(self.end)
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class Sample:
    runs: int
    cost: np.ndarray  # per run, priced runs only
    duration: np.ndarray  # ms, finished runs
    success: np.ndarray  # 1.0 / 0.0 per run


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    unit: str
    a: float
    b: float
    delta: float
    low: float
    high: float

    @property
    def relative(self) -> float | None:
        return self.delta / self.a if self.a else None

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


@dataclass
class Comparison:
    a: RunSet
    b: RunSet
    runs_a: int
    runs_b: int
    metrics: list[MetricDelta] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None  # why there is no comparison: the two sets share runs


@dataclass(frozen=True)
class Overlap:
    """How many runs each selection holds, and how many both do."""

    runs_a: int
    runs_b: int
    shared: int

    def refusal(self) -> str | None:
        """Why two selections that share runs cannot be compared, in plain words; None when
        they are apart. A difference between a set and itself (or a set and a part of it)
        would read as "no significant difference" however different the runs really are."""
        if not self.shared:
            return None
        a, b = f"{self.runs_a:,}", f"{self.runs_b:,}"
        if self.shared == self.runs_a == self.runs_b:
            return (
                f"A and B select the same {a} runs, so there is nothing to compare: the two "
                "choices are different names for one set. Pick a variant, version, tag or "
                "period that tells them apart."
            )
        if self.shared in (self.runs_a, self.runs_b):
            inner, outer = ("A", "B") if self.shared == self.runs_a else ("B", "A")
            size = a if outer == "A" else b
            return (
                f"Every run of {inner} ({self.shared:,}) is also in {outer} ({size}): "
                f"{outer} contains {inner}, so a difference would be diluted by the runs they "
                "share. Pick two sets with no run in common."
            )
        return (
            f"A ({a} runs) and B ({b} runs) share {self.shared:,} runs: a run cannot stand "
            "on both sides of a comparison. Pick two sets with no run in common."
        )


def overlap(a: RunSet, b: RunSet, home: str | Path | None = None) -> Overlap:
    """Counted in one scan of `runs`, every run of each selection (not only the sample)."""
    where_a, params_a = a.where()
    where_b, params_b = b.where()
    row = get_store(data_home(home)).query(
        f"""
        SELECT count(*) FILTER (WHERE in_a), count(*) FILTER (WHERE in_b),
            count(*) FILTER (WHERE in_a AND in_b)
        FROM (SELECT coalesce({where_a}, false) AS in_a, coalesce({where_b}, false) AS in_b
              FROM runs)
        """,
        [*params_a, *params_b],
    )[0]
    return Overlap(int(row[0]), int(row[1]), int(row[2]))


def load_sample(runs: RunSet, home: str | Path | None = None) -> Sample:
    where, params = runs.where()
    rows = get_store(data_home(home)).query(
        f"SELECT cost_usd, duration_ms, status = 'success' FROM runs WHERE {where} "
        "ORDER BY started_at DESC LIMIT ?",
        [*params, MAX_SAMPLE],
    )
    cost = np.array([r[0] for r in rows if r[0] is not None], dtype=float)
    duration = np.array([r[1] for r in rows if r[1] is not None], dtype=float)
    success = np.array([1.0 if r[2] else 0.0 for r in rows])
    return Sample(len(rows), cost, duration, success)


def bootstrap_delta(
    a: np.ndarray,
    b: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float, float]:
    """(observed b - a, 2.5th and 97.5th percentile of the resampled differences).

    `statistic` maps a (resamples, n) matrix to one value per row, so all resamples are
    computed at once.
    """
    rng = np.random.default_rng(seed)
    observed = float(statistic(b[None, :])[0] - statistic(a[None, :])[0])
    draws_a = a[rng.integers(0, len(a), (resamples, len(a)))]
    draws_b = b[rng.integers(0, len(b), (resamples, len(b)))]
    differences = statistic(draws_b) - statistic(draws_a)
    low, high = np.percentile(differences, [2.5, 97.5])
    return observed, float(low), float(high)


METRICS: list[tuple[str, str, str, Callable[[np.ndarray], np.ndarray]]] = [
    ("cost per run", "usd", "cost", lambda m: m.mean(axis=1)),
    ("p50 latency", "ms", "duration", lambda m: np.percentile(m, 50, axis=1)),
    ("p95 latency", "ms", "duration", lambda m: np.percentile(m, 95, axis=1)),
    ("success rate", "share", "success", lambda m: m.mean(axis=1)),
]


def compare(a: RunSet, b: RunSet, home: str | Path | None = None) -> Comparison:
    """B against A; refused (no metrics, `refusal` says why) when the sets share runs."""
    shared = overlap(a, b, home)
    if refusal := shared.refusal():
        return Comparison(a, b, shared.runs_a, shared.runs_b, refusal=refusal)
    sample_a, sample_b = load_sample(a, home), load_sample(b, home)
    result = Comparison(a, b, sample_a.runs, sample_b.runs)
    for name, unit, attribute, statistic in METRICS:
        values_a, values_b = getattr(sample_a, attribute), getattr(sample_b, attribute)
        if len(values_a) < 2 or len(values_b) < 2:
            result.notes.append(f"{name}: too few runs to compare (need 2 on each side)")
            continue
        delta, low, high = bootstrap_delta(values_a, values_b, statistic)
        result.metrics.append(
            MetricDelta(
                metric=name,
                unit=unit,
                a=float(statistic(values_a[None, :])[0]),
                b=float(statistic(values_b[None, :])[0]),
                delta=delta,
                low=low,
                high=high,
            )
        )
    return result


def parse_tag(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"a tag filter is KEY=VALUE, got {text!r}")
    return key, value


def tag_values(home: str | Path | None = None) -> list[str]:
    """Every KEY=VALUE tag seen on runs, for pickers."""
    rows = get_store(data_home(home)).query(
        "SELECT DISTINCT tags FROM runs WHERE tags IS NOT NULL LIMIT 1000"
    )
    found = {f"{k}={v}" for (text,) in rows for k, v in json.loads(text).items()}
    return sorted(found)

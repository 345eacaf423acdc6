"""The period a report covers: whole UTC days, or an explicit range, and the period
before it that deltas compare against.

Every period in the app and the command line is computed here, so "7 days" means the same
thing on Home, on Costs and in `cost-report`: whole UTC days, today included, titled with
the dates they cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta


@dataclass(frozen=True)
class Window:
    """A half-open span [start, end) of `started_at`, in naive UTC like the tables."""

    start: datetime
    end: datetime
    days: int | None = None  # set when the window is "the last N days"

    @property
    def previous(self) -> Window:
        """The span of the same length just before, for period-over-period deltas."""
        return Window(self.start - (self.end - self.start), self.start, self.days)

    @property
    def label(self) -> str:
        if self.days is not None:
            return f"Last {self.days} Day{'s' * (self.days != 1)}"
        last = self.end - timedelta(microseconds=1)
        return f"{self.start:%Y-%m-%d} to {last:%Y-%m-%d}"

    @property
    def dates(self) -> str:
        """The days covered, first and last: "25 Nov – 1 Dec" (years shown when they differ
        from each other, or from this year)."""
        first, last = self.start, self.end - timedelta(microseconds=1)
        if first.date() == last.date():
            return _day(first, first.year != utc_now().year)
        with_year = first.year != last.year or last.year != utc_now().year
        return f"{_day(first, with_year)} – {_day(last, with_year)}"

    @property
    def title(self) -> str:
        """The label with its days, for a heading: "Last 7 days (UTC, 25 Nov – 1 Dec)"."""
        if self.days is not None:
            return f"Last {self.days} day{'s' * (self.days != 1)} (UTC, {self.dates})"
        return f"{self.dates} (UTC)"

    @property
    def phrase(self) -> str:
        """The label inside a sentence: 'in the last 7 days'."""
        if self.days is not None:
            return f"in the {self.label.lower()}"
        return f"from {self.label}"

    @property
    def previous_phrase(self) -> str:
        """What deltas compare against: 'previous 7 days'."""
        return "previous period" if self.days is None else f"previous {self.label[5:].lower()}"


def _day(moment: datetime, with_year: bool) -> str:
    text = f"{moment.day} {moment:%b}"
    return f"{text} {moment.year}" if with_year else text


# The previous period reads as thin when it holds fewer days of data than this share of the
# current period's: a delta against one day of data would read "+$3.37 (22×)" for a week
# that merely had more days recorded.
THIN_SHARE = 0.5


def thin_previous(current_days: int, previous_days: int, compared_with: str) -> str | None:
    """A warning for deltas whose previous period holds much less data than the current one
    (None when it is comparable, or empty: then no delta is shown at all)."""
    if not previous_days or previous_days >= current_days * THIN_SHARE:
        return None
    held = f"{previous_days} day{'s' * (previous_days != 1)}"
    verb = "holds" if compared_with == "previous period" else "hold"
    return (
        f"The {compared_with} {verb} {held} of data against {current_days} in this one: "
        "read the changes with care."
    )


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def window(
    days: int | None = 7,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
) -> Window:
    """The last `days` days, or an explicit range.

    The last N days are N whole UTC days, today (so far) and the N - 1 before it: every day
    of a daily breakdown is then a whole day, a period compares with the same calendar days
    before it, and the reports read such windows from the daily rollup alone, in
    milliseconds however long the history. A date as `end` includes that whole day, as a
    date picker means it; without `end` the range runs to the end of today; datetimes are
    taken as UTC and cut days where they fall.
    """
    tonight = midnight(utc_now()) + timedelta(days=1)
    if start is None and end is None:
        span = max(days or 0, 1)
        return Window(tonight - timedelta(days=span), tonight, span)
    stop = _utc(end, end_of_day=True) if end is not None else tonight
    begin = _utc(start) if start is not None else stop - timedelta(days=max(days or 0, 1))
    return Window(begin, stop)


def _utc(value: datetime | date, end_of_day: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    moment = datetime.combine(value, time())
    return moment + timedelta(days=1) if end_of_day else moment


def midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time())


def pct_change(current: float | None, previous: float | None) -> float | None:
    """Relative change; None when there is nothing to compare against."""
    if current is None or not previous:
        return None
    return (current - previous) / previous

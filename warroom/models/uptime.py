"""Uptime arithmetic over recorded component-state intervals.

How time counts:

- **Down** is time in *partial outage* or *major outage*, both in full. The
  intervals of different incidents may overlap; overlapping down time is
  counted once.
- *Degraded performance* and *under maintenance* are not down time: the
  service worked, slowly or as announced. They colour a day's bar but do not
  lower the percentage.
- Uptime over a window is ``1 - down / counted``, where *counted* is the part
  of the window after the component's ``start_date`` (and not in the future).
  The percentage is rounded **down** to two decimals, so any down time at all
  shows below 100.00 %: 43 minutes of major outage in 30 days is 99.90 %.

Every function takes explicit instants; nothing reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from warroom.models.components import ComponentState, worst

Span = tuple[datetime, datetime]


@dataclass(frozen=True)
class StateInterval:
    state: ComponentState
    start: datetime
    end: datetime | None = None
    """None while the interval is still open (the incident still holds the component)."""


def _clip(start: datetime, end: datetime, lo: datetime, hi: datetime) -> Span | None:
    s, e = max(start, lo), min(end, hi)
    return (s, e) if s < e else None


def merge(spans: Iterable[Span]) -> list[Span]:
    """The union of spans, as sorted disjoint spans."""
    out: list[Span] = []
    for start, end in sorted(s for s in spans if s[0] < s[1]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def down_time(intervals: Iterable[StateInterval], start: datetime, end: datetime) -> timedelta:
    """Time in partial or major outage within [start, end), overlaps counted once.
    An open interval runs to ``end``."""
    spans = []
    for iv in intervals:
        if iv.state.is_outage:
            clipped = _clip(iv.start, iv.end or end, start, end)
            if clipped:
                spans.append(clipped)
    return sum((e - s for s, e in merge(spans)), timedelta(0))


def uptime_ratio(intervals: Iterable[StateInterval], start: datetime, end: datetime) -> float | None:
    """The fraction of [start, end) not down; None for an empty window."""
    total = end - start
    if total <= timedelta(0):
        return None
    return 1 - down_time(intervals, start, end) / total


def format_percent(ratio: float | None) -> str:
    """``99.90 %``-style text, rounded down; ``no data`` for an empty window."""
    if ratio is None:
        return "no data"
    floored = math.floor(round(ratio * 10000, 6)) / 100
    return f"{floored:.2f} %"


def worst_state(intervals: Iterable[StateInterval], start: datetime, end: datetime) -> ComponentState:
    """The worst state any interval held within [start, end)."""
    return worst(iv.state for iv in intervals if _clip(iv.start, iv.end or end, start, end))


@dataclass(frozen=True)
class Day:
    day: date
    state: ComponentState | None
    """Worst state that day; None for a day without data (before start_date or after now)."""
    down: timedelta
    uptime: float | None


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def daily(
    intervals: list[StateInterval], now: datetime, days: int = 90, start_date: date | None = None
) -> list[Day]:
    """One entry per UTC day, oldest first, ending with today (counted up to ``now``)."""
    today = now.astimezone(UTC).date()
    out = []
    for offset in range(days - 1, -1, -1):
        d = today - timedelta(days=offset)
        if start_date is not None and d < start_date:
            out.append(Day(day=d, state=None, down=timedelta(0), uptime=None))
            continue
        lo, hi = day_start(d), min(day_start(d + timedelta(days=1)), now)
        down = down_time(intervals, lo, hi)
        out.append(Day(day=d, state=worst_state(intervals, lo, hi), down=down, uptime=uptime_ratio(intervals, lo, hi)))
    return out


def window_uptime(
    intervals: list[StateInterval], now: datetime, days: int = 90, start_date: date | None = None
) -> float | None:
    """Uptime over the last ``days`` UTC days up to ``now`` (the bar's percentage)."""
    lo = day_start(now.astimezone(UTC).date() - timedelta(days=days - 1))
    if start_date is not None:
        lo = max(lo, day_start(start_date))
    return uptime_ratio(intervals, lo, now)

"""Uptime arithmetic over recorded state intervals, table-style with explicit instants."""

from datetime import UTC, date, datetime, timedelta

import pytest

from warroom.models.components import ComponentState
from warroom.models.uptime import StateInterval, daily, down_time, format_percent, uptime_ratio, window_uptime

OP, DEG, PART, MAJ, MAINT = (
    ComponentState.OPERATIONAL,
    ComponentState.DEGRADED_PERFORMANCE,
    ComponentState.PARTIAL_OUTAGE,
    ComponentState.MAJOR_OUTAGE,
    ComponentState.UNDER_MAINTENANCE,
)
START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=30)


def iv(state: ComponentState, start_min: float, minutes: float | None) -> StateInterval:
    s = START + timedelta(minutes=start_min)
    return StateInterval(state, s, s + timedelta(minutes=minutes) if minutes is not None else None)


@pytest.mark.parametrize(
    ("intervals", "percent"),
    [
        # The example: 43 minutes of major outage in 30 days.
        ([iv(MAJ, 600, 43)], "99.90 %"),
        ([], "100.00 %"),
        # Partial outage counts in full; degraded performance and maintenance do not count.
        ([iv(PART, 600, 43)], "99.90 %"),
        ([iv(DEG, 600, 43 * 60)], "100.00 %"),
        ([iv(MAINT, 600, 43 * 60)], "100.00 %"),
        # Overlapping outages of two incidents count once: 43 min, not 63.
        ([iv(MAJ, 600, 30), iv(PART, 610, 33)], "99.90 %"),
        # Rounded down: one minute down in 30 days is 99.997 %, shown as 99.99 %, never 100.00 %.
        ([iv(MAJ, 0, 1)], "99.99 %"),
        # 4 h 19 min of outage: 99.4004 %.
        ([iv(MAJ, 0, 259)], "99.40 %"),
        # Intervals outside the window do not count; one crossing its start counts only inside it.
        ([iv(MAJ, -120, 60)], "100.00 %"),
        ([iv(MAJ, -120, 163)], "99.90 %"),
        # An interval still open runs to the end of the window.
        ([iv(MAJ, 30 * 24 * 60 - 43, None)], "99.90 %"),
        # A whole window down.
        ([iv(MAJ, 0, 30 * 24 * 60)], "0.00 %"),
    ],
)
def test_uptime_over_thirty_days(intervals: list[StateInterval], percent: str) -> None:
    assert format_percent(uptime_ratio(intervals, START, END)) == percent


def test_down_time_counts_overlap_once_and_ignores_degraded() -> None:
    intervals = [iv(MAJ, 0, 30), iv(PART, 20, 30), iv(DEG, 0, 500), iv(PART, 100, 10)]
    assert down_time(intervals, START, END) == timedelta(minutes=60)


def test_empty_window_has_no_data() -> None:
    assert uptime_ratio([], START, START) is None
    assert format_percent(None) == "no data"


def test_daily_bar_splits_intervals_at_utc_midnight_and_shows_the_worst_state_of_each_day() -> None:
    now = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    intervals = [
        StateInterval(MAJ, datetime(2026, 11, 2, 23, 30, tzinfo=UTC), datetime(2026, 11, 3, 0, 15, tzinfo=UTC)),
        StateInterval(DEG, datetime(2026, 11, 3, 8, 0, tzinfo=UTC), datetime(2026, 11, 3, 9, 0, tzinfo=UTC)),
        StateInterval(MAINT, datetime(2026, 11, 4, 1, 0, tzinfo=UTC), datetime(2026, 11, 4, 2, 0, tzinfo=UTC)),
    ]
    days = daily(intervals, now, days=4, start_date=date(2026, 11, 2))
    assert [(d.day.isoformat(), d.state, d.down) for d in days] == [
        ("2026-11-01", None, timedelta(0)),  # before the component's start date: no data
        ("2026-11-02", MAJ, timedelta(minutes=30)),
        ("2026-11-03", MAJ, timedelta(minutes=15)),
        ("2026-11-04", MAINT, timedelta(0)),
    ]
    # Maintenance is not down time; a day before the start date has no uptime at all.
    assert days[0].uptime is None and days[3].uptime == 1.0
    # Today counts only up to now: 30 minutes down out of today's 12 hours is 95.83 %.
    today = daily([StateInterval(MAJ, now - timedelta(minutes=30), None)], now, days=1)[0]
    assert format_percent(today.uptime) == "95.83 %"


def test_window_uptime_starts_at_the_components_start_date() -> None:
    now = datetime(2026, 11, 4, 0, 0, tzinfo=UTC)
    intervals = [StateInterval(MAJ, datetime(2026, 11, 3, 0, 0, tzinfo=UTC), datetime(2026, 11, 3, 2, 24, tzinfo=UTC))]
    # Counted from 3 Nov only: 2 h 24 min out of 24 h is 90 %.
    assert format_percent(window_uptime(intervals, now, days=90, start_date=date(2026, 11, 3))) == "90.00 %"
    # Without a start date the 90-day window dilutes it: 1 - 2.4 / (89 * 24) = 99.887...
    assert format_percent(window_uptime(intervals, now, days=90)) == "99.88 %"

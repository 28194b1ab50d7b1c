"""Whole shifts: the true start of the shift in force, however long, and the coming shifts
per schedule (``GET /api/oncall``), table-style at explicit instants across a DST change."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from warroom.models import routing
from warroom.models.oncall import (
    EARLIEST,
    LATEST,
    Override,
    Rotation,
    Schedule,
    Shift,
    Window,
    next_shift,
    shift_at,
    shifts,
    shifts_from,
)
from warroom.models.policy import Policy, parse_policy


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def rota(people: list[str], shift: str, start: date, handoff: time = time(9), only: list[Window] | None = None) -> Rotation:
    return Rotation(participants=people, shift=shift, handoff=handoff, start=start, only=only or [])


def whole(s: Shift) -> tuple[str | None, str, int | None, datetime, datetime]:
    return s.person, s.source, s.layer, s.start, s.end


# --- the true start of the shift in force (it used to be looked for 8 days back only) ---------------

FORTNIGHTS = Schedule(layers=[rota(["ann", "ben"], "14d", date(2026, 1, 5))])
ANN_TWICE = Schedule(time_zone="Europe/London", layers=[rota(["ann", "ann", "ben"], "weekly", date(2026, 1, 5))])
ALONE = Schedule(time_zone="Europe/London", layers=[rota(["ann"], "daily", date(2026, 3, 1))])
TWO_LAYERS = Schedule(
    time_zone="Europe/London",
    layers=[
        rota(["ann", "ben"], "weekly", date(2026, 1, 5)),
        rota(["ann"], "daily", date(2026, 1, 5), only=[Window(start=time(9), end=time(17))]),
    ],
)
LONG_COVER = Schedule(
    layers=[rota(["ann", "ben"], "daily", date(2026, 1, 1))],
    overrides=[Override(person="cat", start=utc(2026, 2, 1, 6), end=utc(2026, 2, 20, 18))],
)


@pytest.mark.parametrize(
    ("schedule", "at", "expected"),
    [
        # A custom 14-day shift, ten days in: since its hand-off, not since ten days minus two.
        (FORTNIGHTS, utc(2026, 1, 15, 12), ("ann", "rotation", 1, utc(2026, 1, 5, 9), utc(2026, 1, 19, 9))),
        (FORTNIGHTS, utc(2026, 1, 19, 9), ("ben", "rotation", 1, utc(2026, 1, 19, 9), utc(2026, 2, 2, 9))),
        # ann's two weeks in a row are one shift of 14 days.
        (ANN_TWICE, utc(2026, 1, 16, 12), ("ann", "rotation", 1, utc(2026, 1, 5, 9), utc(2026, 1, 19, 9))),
        # A rotation of one: on call since the first hand-off (09:00 GMT), with no end in sight,
        # across the change to summer time.
        (ALONE, utc(2026, 4, 10, 3), ("ann", "rotation", 1, utc(2026, 3, 1, 9), LATEST)),
        # Before the first hand-off nobody has been on call, since ever.
        (ALONE, utc(2026, 2, 27), (None, "rotation", None, EARLIEST, utc(2026, 3, 1, 9))),
        # ann's week and her desk days on top of it: one stretch of two layers, until her desk
        # closes on the Monday ben's week begins.
        (TWO_LAYERS, utc(2026, 1, 9, 20), ("ann", "rotation", None, utc(2026, 1, 5, 9), utc(2026, 1, 12, 17))),
        # ben's week is cut by ann's desk each weekday: Wednesday evening to Thursday 09:00.
        (TWO_LAYERS, utc(2026, 1, 14, 20), ("ben", "rotation", 1, utc(2026, 1, 14, 17), utc(2026, 1, 15, 9))),
        (TWO_LAYERS, utc(2026, 1, 14, 12), ("ann", "rotation", 2, utc(2026, 1, 14, 9), utc(2026, 1, 14, 17))),
        # An override of almost three weeks, two weeks in.
        (LONG_COVER, utc(2026, 2, 15), ("cat", "override", None, utc(2026, 2, 1, 6), utc(2026, 2, 20, 18))),
    ],
)
def test_the_shift_in_force_is_reported_from_its_true_start(
    schedule: Schedule, at: datetime, expected: tuple[Any, ...]
) -> None:
    assert whole(shift_at(schedule, at)) == expected


def test_the_overview_reports_a_fortnight_from_its_start_and_the_next_in_full() -> None:
    policy = policy_with({"fortnights": FORTNIGHTS})
    [overview] = routing.on_call_overview(policy, utc(2026, 1, 15, 12))
    assert overview.now is not None and overview.next is not None
    assert (overview.now.person, overview.now.start) == ("ann", utc(2026, 1, 5, 9))
    assert (overview.next.person, overview.next.start, overview.next.end) == (
        "ben", utc(2026, 1, 19, 9), utc(2026, 2, 2, 9)
    )
    assert next_shift(FORTNIGHTS, utc(2026, 1, 15, 12)) == shift_at(FORTNIGHTS, utc(2026, 1, 19, 9))


people_pool = st.sampled_from(["a", "b", "c"])
zones = st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"])


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    layers = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        only = []
        if draw(st.booleans()):
            # Windows away from the small hours, where the clocks change (see the README).
            start = draw(st.integers(min_value=5, max_value=22))
            end = draw(st.integers(min_value=5, max_value=23).filter(lambda h: h != start))
            days = draw(st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                                 min_size=1, max_size=7, unique=True))
            only = [Window(days=days, start=time(start), end=time(end))]
        layers.append(Rotation(
            participants=draw(st.lists(people_pool, min_size=1, max_size=4)),
            shift=timedelta(hours=draw(st.sampled_from([5, 12, 24, 72, 168, 240, 500]))),
            handoff=time(draw(st.integers(min_value=0, max_value=23)), draw(st.sampled_from([0, 30]))),
            start=date(2026, 1, 1) + timedelta(days=draw(st.integers(min_value=0, max_value=60))),
            only=only,
        ))
    overrides = []
    cursor = utc(2026, 1, 1)
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        begin = cursor + timedelta(hours=draw(st.integers(min_value=0, max_value=24 * 60)))
        cursor = begin + timedelta(hours=draw(st.integers(min_value=1, max_value=24 * 20)))
        overrides.append(Override(person=draw(people_pool), start=begin, end=cursor))
    return Schedule(time_zone=draw(zones), layers=layers, overrides=overrides)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(), offset=st.integers(min_value=0, max_value=120 * 24 * 60))
def test_whole_shifts_agree_with_the_shifts_of_a_window_that_holds_them(schedule: Schedule, offset: int) -> None:
    """Against ``shifts`` over a window from before the schedule began to well after ``at``:
    the shift in force and the next ones are the same, not cut anywhere."""
    at = utc(2026, 1, 1) + timedelta(minutes=offset)
    begin, end = utc(2025, 12, 20), at + timedelta(days=30)
    window = shifts(schedule, begin, end)
    i = next(i for i, s in enumerate(window) if s.start <= at < s.end)
    found = shifts_from(schedule, at, 4)
    got, want = found[0], window[i]
    assert (got.person, got.source) == (want.person, want.source)
    # Nothing before ``begin``: a shift running from there is the gap before the schedule began.
    assert got.start == (EARLIEST if want.start == begin else want.start)
    if i + 1 < len(window):
        assert (got.end, got.layer) == (want.end, want.layer)
        later = window[i + 1: i + 1 + 4]
        assert [whole(s) for s in found[1:len(later)]] == [whole(s) for s in later[:-1]]
        if later[-1].end < end:
            assert whole(found[len(later)]) == whole(later[-1])
    else:
        assert got.end >= end  # still going at the window's end
    assert all(a.end == b.start for a, b in zip(found, found[1:]))


# --- the coming shifts, across the night the clocks go back in London (25 October 2026) ------------

DST_WEEKEND = {
    "ops": {
        "time_zone": "Europe/London",
        "layers": [
            {"participants": ["ann", "ben"], "shift": "daily", "handoff": "09:00", "start": "2026-10-20"},
            {"participants": ["cat"], "shift": "daily", "handoff": "00:00", "start": "2026-10-01",
             "only": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "12:00", "end": "14:00"}]},
        ],
        "overrides": [{"person": "dan", "start": "2026-10-25T12:00:00Z", "end": "2026-10-25T14:00:00Z"}],
    }
}


def policy_with(schedules: dict[str, Any]) -> Policy:
    people = {
        "ann": {"name": "Ann", "email": "ann@example.com", "time_zone": "Europe/London"},
        "ben": {"name": "Ben", "email": "ben@example.com", "time_zone": "America/New_York"},
        "cat": {"name": "Cat", "email": "cat@example.com"},
        "dan": {"name": "Dan", "email": "dan@example.com", "time_zone": "Asia/Kolkata"},
    }
    data = {"people": people, "escalation": {"levels": [{"notify": ["ann"]}]}, "schedules": {
        name: s.model_dump(mode="json") if isinstance(s, Schedule) else s for name, s in schedules.items()
    }}
    return parse_policy(data, "test policy")


ANN_SAT = ("ann", "rotation", 1, "2026-10-24T08:00:00Z", "2026-10-25T09:00:00Z",
           "2026-10-24T09:00:00+01:00", "2026-10-25T09:00:00Z", "Europe/London")
"""ann's Saturday shift: 25 hours, 09:00 BST to 09:00 GMT."""
BEN_SUN = ("ben", "rotation", 1, "2026-10-25T09:00:00Z", "2026-10-25T12:00:00Z",
           "2026-10-25T09:00:00Z", "2026-10-25T12:00:00Z", "America/New_York")
DAN_COVER = ("dan", "override", None, "2026-10-25T12:00:00Z", "2026-10-25T14:00:00Z",
             "2026-10-25T12:00:00Z", "2026-10-25T14:00:00Z", "Asia/Kolkata")
BEN_SUN_LATE = ("ben", "rotation", 1, "2026-10-25T14:00:00Z", "2026-10-26T09:00:00Z",
                "2026-10-25T14:00:00Z", "2026-10-26T09:00:00Z", "America/New_York")
ANN_MON = ("ann", "rotation", 1, "2026-10-26T09:00:00Z", "2026-10-26T12:00:00Z",
           "2026-10-26T09:00:00Z", "2026-10-26T12:00:00Z", "Europe/London")
CAT_DESK = ("cat", "rotation", 2, "2026-10-26T12:00:00Z", "2026-10-26T14:00:00Z",
            "2026-10-26T12:00:00Z", "2026-10-26T14:00:00Z", None)


def row(out: routing.ShiftOut | None) -> tuple[Any, ...] | None:
    if out is None:
        return None
    data = out.model_dump(mode="json")
    return tuple(data[k] for k in ("person", "source", "layer", "start", "end", "start_local", "end_local",
                                   "person_time_zone"))


@pytest.mark.parametrize(
    ("at", "count", "now", "coming"),
    [
        # Saturday 21:00 BST, before the change: ann until 09:00 GMT, then ben, dan's cover, ...
        (utc(2026, 10, 24, 20), 5, ANN_SAT, [BEN_SUN, DAN_COVER, BEN_SUN_LATE, ANN_MON, CAT_DESK]),
        # 01:30 happens twice that night; both are in ann's shift.
        (utc(2026, 10, 25, 0, 30), 2, ANN_SAT, [BEN_SUN, DAN_COVER]),
        (utc(2026, 10, 25, 1, 30), 2, ANN_SAT, [BEN_SUN, DAN_COVER]),
        # During the cover: dan, then ben again until Monday 09:00 GMT.
        (utc(2026, 10, 25, 13), 3, DAN_COVER, [BEN_SUN_LATE, ANN_MON, CAT_DESK]),
        # Monday's desk: cat on layer 2, then ann to Tuesday 09:00.
        (utc(2026, 10, 26, 12, 59), 1, CAT_DESK, [
            ("ann", "rotation", 1, "2026-10-26T14:00:00Z", "2026-10-27T09:00:00Z",
             "2026-10-26T14:00:00Z", "2026-10-27T09:00:00Z", "Europe/London"),
        ]),
        # Asking for none still says who is next.
        (utc(2026, 10, 24, 20), 0, ANN_SAT, []),
    ],
)
def test_coming_shifts_with_utc_and_local_times_across_the_clocks_going_back(
    at: datetime, count: int, now: tuple[Any, ...], coming: list[tuple[Any, ...]]
) -> None:
    [ops] = routing.on_call_report(policy_with(DST_WEEKEND), at, coming=count).schedules
    assert row(ops.now) == now
    assert [row(s) for s in ops.coming] == coming
    assert ops.next is not None and row(ops.next) == (coming[0] if coming else BEN_SUN)
    assert ops.more_coming


def test_a_window_lists_the_shifts_that_begin_in_it() -> None:
    policy = policy_with(DST_WEEKEND)
    [ops] = routing.on_call_overview(policy, utc(2026, 10, 24, 20), coming=100, until=utc(2026, 10, 25, 13))
    assert [row(s) for s in ops.coming] == [BEN_SUN, DAN_COVER] and not ops.more_coming
    [capped] = routing.on_call_overview(policy, utc(2026, 10, 24, 20), coming=1, until=utc(2026, 10, 25, 13))
    assert [row(s) for s in capped.coming] == [BEN_SUN] and capped.more_coming
    # A window in which nothing begins lists nothing, and still says who is next.
    [quiet] = routing.on_call_overview(policy, utc(2026, 10, 24, 20), coming=100, until=utc(2026, 10, 24, 21))
    assert quiet.coming == [] and not quiet.more_coming and row(quiet.next) == BEN_SUN

"""The on-call calculator, table-style with explicit instants, across DST changes."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from warroom.models.oncall import Override, Rotation, Schedule, Window, next_shift, on_call, shifts

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def local(tz: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=tz, fold=fold)


def daily(tz: str, start: date, handoff: time = time(9), people=("ann", "ben")) -> Schedule:
    return Schedule(time_zone=tz, layers=[Rotation(participants=list(people), shift="daily", handoff=handoff, start=start)])


# 2026: London springs forward on 29 March and falls back on 25 October;
# New York springs forward on 8 March and falls back on 1 November.
@pytest.mark.parametrize(
    ("schedule", "at", "expected"),
    [
        # Before the first hand-off nobody is on this rotation.
        (daily("Europe/London", date(2026, 3, 27)), local(LONDON, 2026, 3, 27, 8, 59), None),
        (daily("Europe/London", date(2026, 3, 27)), local(LONDON, 2026, 3, 27, 9, 0), "ann"),
        (daily("Europe/London", date(2026, 3, 27)), local(LONDON, 2026, 3, 28, 8, 59), "ann"),
        (daily("Europe/London", date(2026, 3, 27)), local(LONDON, 2026, 3, 28, 9, 0), "ben"),
        # The night the clocks go forward: ben's shift is 23 h; hand-off still at 09:00 BST.
        (daily("Europe/London", date(2026, 3, 27)), local(LONDON, 2026, 3, 29, 8, 59), "ben"),
        (daily("Europe/London", date(2026, 3, 27)), local(LONDON, 2026, 3, 29, 9, 0), "ann"),
        (daily("Europe/London", date(2026, 3, 27)), datetime(2026, 3, 29, 8, 0, tzinfo=UTC), "ann"),
        (daily("Europe/London", date(2026, 3, 27)), datetime(2026, 3, 29, 7, 59, tzinfo=UTC), "ben"),
        # The night the clocks go back: ben's shift is 25 h; hand-off at 09:00 GMT.
        (daily("Europe/London", date(2026, 10, 23)), local(LONDON, 2026, 10, 25, 8, 59), "ben"),
        (daily("Europe/London", date(2026, 10, 23)), datetime(2026, 10, 25, 8, 59, tzinfo=UTC), "ben"),
        (daily("Europe/London", date(2026, 10, 23)), datetime(2026, 10, 25, 9, 0, tzinfo=UTC), "ann"),
        # New York, both changes, hand-off at 09:00 local.
        (daily("America/New_York", date(2026, 3, 7)), local(NEW_YORK, 2026, 3, 8, 8, 59), "ann"),
        (daily("America/New_York", date(2026, 3, 7)), datetime(2026, 3, 8, 13, 0, tzinfo=UTC), "ben"),
        (daily("America/New_York", date(2026, 3, 7)), datetime(2026, 3, 8, 12, 59, tzinfo=UTC), "ann"),
        (daily("America/New_York", date(2026, 10, 31)), datetime(2026, 11, 1, 13, 59, tzinfo=UTC), "ann"),
        (daily("America/New_York", date(2026, 10, 31)), datetime(2026, 11, 1, 14, 0, tzinfo=UTC), "ben"),
        # A hand-off inside the repeated hour (01:30 happens twice): the first 01:30 counts.
        (
            daily("America/New_York", date(2026, 10, 31), handoff=time(1, 30)),
            local(NEW_YORK, 2026, 11, 1, 1, 30, fold=0),
            "ben",
        ),
        (
            daily("America/New_York", date(2026, 10, 31), handoff=time(1, 30)),
            local(NEW_YORK, 2026, 11, 1, 1, 29, fold=0),
            "ann",
        ),
        # A hand-off inside the skipped hour (02:30 does not exist): it happens at 03:30 EDT.
        (
            daily("America/New_York", date(2026, 3, 7), handoff=time(2, 30)),
            datetime(2026, 3, 8, 7, 29, tzinfo=UTC),
            "ann",
        ),
        (
            daily("America/New_York", date(2026, 3, 7), handoff=time(2, 30)),
            datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
            "ben",
        ),
    ],
)
def test_daily_rotation_hands_off_at_local_time(schedule: Schedule, at: datetime, expected: str | None) -> None:
    assert on_call(schedule, at) == expected


def test_twelve_hour_shifts_keep_their_local_hand_off_times_across_spring_forward() -> None:
    sched = Schedule(
        time_zone="America/New_York",
        layers=[Rotation(participants=["day", "night"], shift="12h", handoff=time(9), start=date(2026, 3, 1))],
    )
    found = shifts(sched, local(NEW_YORK, 2026, 3, 7, 9), local(NEW_YORK, 2026, 3, 9, 9))
    assert [(s.person, s.start.astimezone(NEW_YORK).hour, s.end - s.start) for s in found] == [
        ("day", 9, timedelta(hours=12)),
        ("night", 21, timedelta(hours=11)),  # the night the clocks go forward
        ("day", 9, timedelta(hours=12)),
        ("night", 21, timedelta(hours=12)),
    ]


def test_weekly_rotation_cycles_through_participants_in_order() -> None:
    sched = Schedule(
        time_zone="Europe/London",
        layers=[Rotation(participants=["a", "b", "c"], shift="weekly", handoff=time(10), start=date(2026, 1, 5))],
    )
    weeks = [on_call(sched, local(LONDON, 2026, 1, 5, 12) + timedelta(weeks=w)) for w in range(7)]
    assert weeks == ["a", "b", "c", "a", "b", "c", "a"]


def test_override_crossing_a_hand_off_wins_on_both_sides_and_then_the_rotation_resumes() -> None:
    base = daily("Europe/London", date(2026, 6, 1))
    sched = base.model_copy(
        update={
            "overrides": [
                Override(person="cara", start=local(LONDON, 2026, 6, 2, 20), end=local(LONDON, 2026, 6, 3, 12))
            ]
        }
    )
    assert on_call(sched, local(LONDON, 2026, 6, 2, 19, 59)) == "ben"
    assert on_call(sched, local(LONDON, 2026, 6, 2, 20)) == "cara"
    assert on_call(sched, local(LONDON, 2026, 6, 3, 9, 30)) == "cara"  # past the 09:00 hand-off
    assert on_call(sched, local(LONDON, 2026, 6, 3, 12)) == "ann"
    found = shifts(sched, local(LONDON, 2026, 6, 2, 12), local(LONDON, 2026, 6, 3, 18))
    assert [(s.person, s.source) for s in found] == [("ben", "rotation"), ("cara", "override"), ("ann", "rotation")]
    assert found[1].start == local(LONDON, 2026, 6, 2, 20) and found[1].end == local(LONDON, 2026, 6, 3, 12)


def test_business_hours_layer_sits_on_top_only_inside_its_window() -> None:
    sched = Schedule(
        time_zone="America/New_York",
        layers=[
            Rotation(participants=["night-owl"], shift="weekly", start=date(2026, 1, 1)),
            Rotation(participants=["desk"], shift="daily", start=date(2026, 1, 1), only=[Window(start=time(9), end=time(17))]),
        ],
    )
    wednesday = date(2026, 12, 2)
    assert on_call(sched, local(NEW_YORK, 2026, 12, 2, 15)) == "desk"
    assert on_call(sched, local(NEW_YORK, 2026, 12, 2, 3)) == "night-owl"
    assert on_call(sched, local(NEW_YORK, 2026, 12, 2, 17)) == "night-owl"
    assert on_call(sched, local(NEW_YORK, 2026, 12, 5, 15)) == "night-owl"  # Saturday
    assert wednesday.weekday() == 2


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    window = Window(days=["fri"], start=time(22), end=time(6))
    assert window.contains(local(LONDON, 2026, 12, 4, 23))  # Friday night
    assert window.contains(local(LONDON, 2026, 12, 5, 5))  # early Saturday, still Friday's window
    assert not window.contains(local(LONDON, 2026, 12, 5, 23))  # Saturday night
    assert not window.contains(local(LONDON, 2026, 12, 4, 5))  # early Friday belongs to Thursday


def test_next_shift_names_who_is_next_and_when() -> None:
    sched = daily("Europe/London", date(2026, 6, 1))
    upcoming = next_shift(sched, local(LONDON, 2026, 6, 1, 12))
    assert upcoming is not None
    assert upcoming.person == "ben" and upcoming.start == local(LONDON, 2026, 6, 2, 9)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("time_zone", "Mars/Olympus", "unknown time zone"),
        ("layers", [], "at least 1"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(field: str, value: object, message: str) -> None:
    data = {"time_zone": "UTC", "layers": [{"participants": ["a"], "start": "2026-01-01"}], field: value}
    with pytest.raises(ValueError, match=message):
        Schedule.model_validate(data)


def test_minute_long_shifts_and_overrides_off_the_calendar_are_refused() -> None:
    with pytest.raises(ValueError, match="at least an hour"):
        Rotation.model_validate({"participants": ["a", "b"], "shift": "30m", "start": "2026-01-01"})
    with pytest.raises(ValueError, match="between the years 1971 and 8999"):
        Rotation.model_validate({"participants": ["a"], "start": "0001-01-01"})
    with pytest.raises(ValueError, match="between the years 1971 and 8999"):
        Override(person="a", start=datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Kolkata")), end=datetime(2026, 1, 1, tzinfo=UTC))


def test_empty_rotation_and_backwards_override_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Rotation.model_validate({"participants": [], "start": "2026-01-01"})
    with pytest.raises(ValueError, match="end after it starts"):
        Override(person="a", start=datetime(2026, 1, 2, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC))


zones = st.sampled_from(["Europe/London", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"])


@settings(max_examples=200, deadline=None)
@given(
    tz=zones,
    people=st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=1, max_size=5, unique=True),
    hours=st.sampled_from([6, 8, 12, 24, 48, 168]),
    handoff_minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    offset_minutes=st.integers(min_value=0, max_value=3 * 365 * 24 * 60),
)
def test_exactly_one_participant_of_a_single_layer_rotation_is_on_call(
    tz: str, people: list[str], hours: int, handoff_minute: int, offset_minutes: int
) -> None:
    rotation = Rotation(
        participants=people,
        shift=timedelta(hours=hours),
        handoff=time(handoff_minute // 60, handoff_minute % 60),
        start=date(2024, 1, 1),
    )
    sched = Schedule(time_zone=tz, layers=[rotation])
    at = datetime(2025, 1, 3, tzinfo=UTC) + timedelta(minutes=offset_minutes)
    assert on_call(sched, at) in people
    # ...and the shifts around that instant tile time with no gap or overlap.
    found = shifts(sched, at - timedelta(days=3), at + timedelta(days=3))
    assert found[0].start == at - timedelta(days=3) and found[-1].end == at + timedelta(days=3)
    assert all(a.end == b.start for a, b in zip(found, found[1:]))
    assert all(s.person in people for s in found)


@settings(max_examples=150, deadline=None)
@given(
    tz=zones,
    hours=st.sampled_from([8, 12, 24, 168]),
    cover_start=st.integers(min_value=0, max_value=60 * 24 * 30),
    cover_minutes=st.integers(min_value=1, max_value=60 * 24 * 3),
    probe=st.integers(min_value=-60 * 24 * 2, max_value=60 * 24 * 5),
)
def test_an_override_answers_exactly_inside_its_window_and_the_rotation_everywhere_else(
    tz: str, hours: int, cover_start: int, cover_minutes: int, probe: int
) -> None:
    rotation = Rotation(participants=["a", "b", "c"], shift=timedelta(hours=hours), handoff=time(9), start=date(2025, 1, 1))
    plain = Schedule(time_zone=tz, layers=[rotation])
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=cover_start)
    end = start + timedelta(minutes=cover_minutes)
    covered = plain.model_copy(update={"overrides": [Override(person="z", start=start, end=end)]})
    at = start + timedelta(minutes=probe)
    expected = "z" if start <= at < end else on_call(plain, at)
    assert on_call(covered, at) == expected
    assert expected is not None  # a single round-the-clock layer: never nobody


def test_overlapping_overrides_are_refused_naming_both() -> None:
    with pytest.raises(ValueError, match=r"overrides.1 \(b\) overlaps overrides.0 \(a\)"):
        Schedule(
            layers=[Rotation(participants=["a"], start=date(2026, 1, 1))],
            overrides=[
                Override(person="a", start=datetime(2026, 1, 2, 8, tzinfo=UTC), end=datetime(2026, 1, 2, 12, tzinfo=UTC)),
                Override(person="b", start=datetime(2026, 1, 2, 11, tzinfo=UTC), end=datetime(2026, 1, 2, 13, tzinfo=UTC)),
            ],
        )
    # Back to back is not an overlap.
    Schedule(
        layers=[Rotation(participants=["a"], start=date(2026, 1, 1))],
        overrides=[
            Override(person="a", start=datetime(2026, 1, 2, 8, tzinfo=UTC), end=datetime(2026, 1, 2, 12, tzinfo=UTC)),
            Override(person="b", start=datetime(2026, 1, 2, 12, tzinfo=UTC), end=datetime(2026, 1, 2, 13, tzinfo=UTC)),
        ],
    )

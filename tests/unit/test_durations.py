"""Policy durations: what parses, what is refused with a reason, how they read."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warroom.models.durations import format_duration, format_wait, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("48h", timedelta(hours=48)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1.5h", timedelta(minutes=90)),
        ("0s", timedelta(0)),
        (" 10m ", timedelta(minutes=10)),
        ("1h 30m", timedelta(minutes=90)),
        ("5M", timedelta(minutes=5)),
        (30, timedelta(seconds=30)),  # a bare YAML number means seconds
        (2.5, timedelta(seconds=2.5)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "not a duration"),
        ("10", "not a duration"),  # a string needs its unit
        ("10x", "not a duration"),
        ("m", "not a duration"),
        ("-5m", "not a duration"),
        ("ten minutes", "not a duration"),
        ("10m30", "not a duration"),
        ("10 min", "not a duration"),
        (-1, "negative"),
        (True, "boolean"),
        (None, "NoneType"),
        ([10], "list"),
        (float("inf"), "duration"),
        (float("nan"), "duration"),
        ("99999999999d", "duration"),
        ("5000000d", "at most 3650d"),  # a valid timedelta, but now + it overflows a datetime
        (10**12, "at most 3650d"),
    ],
)
def test_bad_durations_are_refused_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_duration(value)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0 s"),
        (timedelta(seconds=3), "3 s"),
        (timedelta(seconds=59.6), "1 min"),  # rounded to the second first
        (timedelta(seconds=90), "1 min 30 s"),
        (timedelta(minutes=15), "15 min"),
        (timedelta(hours=2, minutes=5), "2 h 5 min"),
        (timedelta(hours=2, minutes=5, seconds=9), "2 h 5 min"),  # seconds dropped beyond an hour
        (timedelta(hours=1, seconds=1), "1 h"),
        (timedelta(hours=48), "48 h"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


def policy_text(days: int, hours: int, minutes: int, seconds: int) -> str:
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


@given(
    days=st.integers(0, 30), hours=st.integers(0, 23), minutes=st.integers(0, 59), seconds=st.integers(0, 59)
)
def test_parse_reads_every_unit(days: int, hours: int, minutes: int, seconds: int) -> None:
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    assert parse_duration(policy_text(days, hours, minutes, seconds)) == expected


@given(st.integers(min_value=0, max_value=30 * 86400))
def test_format_then_parse_round_trips_to_the_shown_precision(total: int) -> None:
    """What people read is what the policy would mean: seconds below an hour, minutes above."""
    shown = format_duration(timedelta(seconds=total))
    as_policy = shown.replace(" min", "m").replace(" h", "h").replace(" s", "s").replace(" ", "")
    expected = total if total < 3600 else total - total % 60
    assert parse_duration(as_policy) == timedelta(seconds=expected)


@pytest.mark.parametrize(("delta", "text"), [
    (timedelta(hours=47, minutes=5), "47 h 5 min"),
    (timedelta(days=3), "3 d"),
    (timedelta(days=12, hours=4, minutes=59), "12 d 4 h"),
    (timedelta(hours=26977, minutes=18), "1124 d 1 h"),
])
def test_format_wait_counts_days_from_three_on(delta: timedelta, text: str) -> None:
    assert format_wait(delta) == text

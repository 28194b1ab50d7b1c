"""On-call schedules: who is on call at instant ``t``, as a pure function.

A schedule has layers of rotations and a list of overrides. A rotation hands
off at local wall-clock times in the schedule's time zone, so a daily 09:00
hand-off (or 09:00/21:00 for 12-hour shifts) stays put across daylight-saving
changes: the shift that spans the change is an hour shorter or longer.

Precedence at an instant: an override covering it; otherwise the highest
layer (the last listed) that is active then; otherwise nobody.

Layers may overlap: that is what layers are for (a business-hours layer sits on
top of a round-the-clock one). Overrides may not overlap each other: with two
covers for the same minute the answer would depend on the order they were
written in, so a schedule with overlapping overrides is refused; shorten one.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warroom.models.durations import Duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as Europe/London)") from None


def _parse_shift(value: object) -> object:
    if isinstance(value, str):
        keyword = value.strip().lower()
        if keyword == "daily":
            return "1d"
        if keyword == "weekly":
            return "7d"
    return value


def _clock_time(value: object) -> object:
    """Times of day are written ``"09:00"``. YAML reads an unquoted 10:00 as the number
    600 (base 60), which must not silently become ten minutes past midnight."""
    if isinstance(value, bool) or isinstance(value, (int, float)):
        raise ValueError("write a time of day in quotes, e.g. \"09:00\" (YAML reads 10:00 unquoted as a number)")
    return value


class Window(_Strict):
    """A weekly window of local time, e.g. weekdays 09:00-17:00."""

    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    start: time = time(9, 0)
    end: time = time(17, 0)
    """End of the window; an end at or before the start runs past midnight."""

    _times = field_validator("start", "end", mode="before")(_clock_time)

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        cleaned = [d.strip().lower()[:3] for d in value]
        bad = [d for d in cleaned if d not in WEEKDAYS]
        if bad or not cleaned:
            raise ValueError(f"days must be among {', '.join(WEEKDAYS)}")
        return cleaned

    @model_validator(mode="after")
    def _not_empty(self) -> "Window":
        if self.start == self.end:
            raise ValueError("a window's start and end must differ (an end before the start runs past midnight)")
        return self

    def describe(self) -> str:
        """``Mon-Fri 09:00-17:30``, ``Sat, Sun 10:00-14:00``."""
        indices = sorted({WEEKDAYS.index(d) for d in self.days})
        runs: list[list[int]] = []
        for i in indices:
            if runs and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        names = [
            WEEKDAYS[r[0]].capitalize() if len(r) == 1 else
            f"{WEEKDAYS[r[0]].capitalize()}{'-' if len(r) > 2 else ', '}{WEEKDAYS[r[-1]].capitalize()}"
            for r in runs
        ]
        fmt = "%H:%M:%S" if self.start.second or self.end.second else "%H:%M"
        return f"{', '.join(names)} {self.start.strftime(fmt)}-{self.end.strftime(fmt)}"

    def contains(self, local: datetime) -> bool:
        t = local.timetz().replace(tzinfo=None)
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if self.start < self.end:
            return today in self.days and self.start <= t < self.end
        # Overnight window: the part after midnight belongs to the day it started.
        return (today in self.days and t >= self.start) or (yesterday in self.days and t < self.end)


EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(8999, 12, 31, tzinfo=UTC)
"""Instants the calculator accepts: far from the ends of the calendar, where a time zone
offset or a look-ahead would step outside what datetime can hold."""


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return EARLIEST - timedelta(days=1)


class Rotation(_Strict):
    participants: list[str] = Field(min_length=1)
    shift: Duration = timedelta(days=7)
    """``daily``, ``weekly`` or a duration such as ``12h`` or ``3d``."""
    handoff: time = time(9, 0)
    """Local time of the hand-off."""
    start: date
    """The local date of the first hand-off; participants[0] takes that shift."""
    only: list[Window] = Field(default_factory=list)
    """If given, the layer is active only inside these windows (e.g. business hours)."""

    _shift = field_validator("shift", mode="before")(_parse_shift)
    _handoff = field_validator("handoff", mode="before")(_clock_time)

    @field_validator("start")
    @classmethod
    def _plausible(cls, value: date) -> date:
        if not EARLIEST.date() <= value <= LATEST.date():
            raise ValueError("a rotation must start between the years 1971 and 8999")
        return value

    @field_validator("shift")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("a shift must last at least an hour (cover shorter absences with an override)")
        return value


class Override(_Strict):
    person: str
    start: datetime
    end: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _check(self) -> "Override":
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override start and end need a time zone offset")
        if not (EARLIEST <= _utc(self.start) and _utc(self.end) <= LATEST):
            raise ValueError("an override must lie between the years 1971 and 8999")
        if self.end <= self.start:
            raise ValueError("an override must end after it starts")
        return self


class Schedule(_Strict):
    time_zone: str = "UTC"
    layers: list[Rotation] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        zone(value)
        return value

    @model_validator(mode="after")
    def _overrides_do_not_overlap(self) -> "Schedule":
        ordered = sorted(enumerate(self.overrides), key=lambda pair: pair[1].start.astimezone(UTC))
        for (i, a), (j, b) in zip(ordered, ordered[1:]):
            if b.start < a.end:
                first, second = sorted((i, j))
                raise ValueError(
                    f"overrides.{second} ({self.overrides[second].person}) overlaps overrides.{first} "
                    f"({self.overrides[first].person}); two covers for the same time are ambiguous: shorten one"
                )
        return self

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.time_zone)

    def people(self) -> set[str]:
        found = {p for layer in self.layers for p in layer.participants}
        return found | {o.person for o in self.overrides}


class Shift(BaseModel):
    person: str | None
    start: datetime
    end: datetime
    source: str
    """``layer N`` or ``override``."""


# --- the calculator --------------------------------------------------------------------


def local_instant(naive_local: datetime, tz: ZoneInfo) -> datetime:
    """A local wall-clock time as a UTC instant.

    fold=0: an ambiguous (fall-back) local time means its first occurrence; a
    non-existent (spring-forward) time lands just after the gap. Everything is
    compared in UTC, because Python compares datetimes that share a tzinfo by
    wall-clock time, which is wrong across a DST change.
    """
    return naive_local.replace(tzinfo=tz).astimezone(UTC)


def _handoff(rotation: Rotation, tz: ZoneInfo, index: int) -> datetime:
    """The instant of hand-off number ``index`` (0 is the first).

    Hand-offs are spaced in wall-clock time, so they stay at the same local
    times whatever the shift length; a shift spanning a DST change is an hour
    shorter or longer.
    """
    origin = datetime.combine(rotation.start, rotation.handoff)
    return local_instant(origin + rotation.shift * index, tz)


def _shift_index(rotation: Rotation, tz: ZoneInfo, at: datetime) -> int:
    """Which shift of the rotation covers ``at`` (negative before the first hand-off)."""
    origin = datetime.combine(rotation.start, rotation.handoff)
    wall = at.astimezone(tz).replace(tzinfo=None)
    guess = (wall - origin) // rotation.shift
    # The wall-clock estimate can be off by one next to a DST change.
    while _handoff(rotation, tz, guess) > at:
        guess -= 1
    while _handoff(rotation, tz, guess + 1) <= at:
        guess += 1
    return guess


def _shift_bounds(rotation: Rotation, tz: ZoneInfo, index: int) -> tuple[datetime, datetime]:
    return _handoff(rotation, tz, index), _handoff(rotation, tz, index + 1)


def rotation_on_call(rotation: Rotation, tz: ZoneInfo, at: datetime) -> str | None:
    """The participant of one layer on call at ``at`` (None before it starts or outside its windows)."""
    index = _shift_index(rotation, tz, at)
    if index < 0:
        return None
    if rotation.only and not any(w.contains(at.astimezone(tz)) for w in rotation.only):
        return None
    return rotation.participants[index % len(rotation.participants)]


def on_call(schedule: Schedule, at: datetime) -> str | None:
    """Who is on call for ``schedule`` at the aware instant ``at``."""
    return who_is_on_call(schedule, at)[0]


def who_is_on_call(schedule: Schedule, at: datetime) -> tuple[str | None, str]:
    """Who is on call at ``at`` and why: ``override``, ``layer N`` (1-based) or ``""`` for nobody."""
    if at.tzinfo is None:
        raise ValueError("on_call needs an aware datetime")
    at = at.astimezone(UTC)
    for override in reversed(schedule.overrides):
        if override.start <= at < override.end:
            return override.person, "override"
    tz = schedule.tz
    for number in range(len(schedule.layers), 0, -1):
        person = rotation_on_call(schedule.layers[number - 1], tz, at)
        if person is not None:
            return person, f"layer {number}"
    return None, ""


def in_windows(windows: list[Window], tz: ZoneInfo, at: datetime) -> bool:
    """Whether ``at`` falls inside any of the weekly ``windows`` (local time in ``tz``)."""
    local = at.astimezone(tz)
    return any(w.contains(local) for w in windows)


def next_window_start(windows: list[Window], tz: ZoneInfo, at: datetime) -> datetime | None:
    """The first instant after ``at`` at which one of ``windows`` opens (None without windows).

    An opening time that does not exist locally (inside a spring-forward gap)
    happens just after the gap, as for hand-offs."""
    at = at.astimezone(UTC)
    found: list[datetime] = []
    day = at.astimezone(tz).date() - timedelta(days=1)
    for offset in range(9):
        current = day + timedelta(days=offset)
        for window in windows:
            if WEEKDAYS[current.weekday()] not in window.days:
                continue
            opens = local_instant(datetime.combine(current, window.start), tz)
            # A window that lies wholly inside a spring-forward gap does not happen that day.
            if opens > at and window.contains(opens.astimezone(tz)):
                found.append(opens)
    return min(found) if found else None


def _boundaries(schedule: Schedule, start: datetime, end: datetime) -> list[datetime]:
    """Every instant in [start, end) at which the answer of ``on_call`` may change."""
    tz = schedule.tz
    points = {start}
    for override in schedule.overrides:
        points.update(p for p in (override.start, override.end) if start < p < end)
    for rotation in schedule.layers:
        index = max(_shift_index(rotation, tz, start), -1)
        while True:
            begin, _ = _shift_bounds(rotation, tz, index + 1)
            if begin >= end:
                break
            if begin > start:
                points.add(begin)
            index += 1
        for window in rotation.only:
            day = start.astimezone(tz).date() - timedelta(days=1)
            while True:
                opens = local_instant(datetime.combine(day, window.start), tz)
                if opens >= end:
                    break
                closes_day = day if window.start < window.end else day + timedelta(days=1)
                closes = local_instant(datetime.combine(closes_day, window.end), tz)
                points.update(p for p in (opens, closes) if start < p < end)
                day += timedelta(days=1)
    return sorted(points)


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The on-call shifts between ``start`` and ``end``, adjacent equal shifts merged."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    points = _boundaries(schedule, start, end) + [end]
    out: list[Shift] = []
    for begin, finish in zip(points, points[1:]):
        if finish <= begin:
            continue
        person = on_call(schedule, begin)
        source = "override" if any(o.start <= begin < o.end for o in schedule.overrides) else "rotation"
        if out and out[-1].person == person and out[-1].source == source:
            out[-1] = out[-1].model_copy(update={"end": finish})
        else:
            out.append(Shift(person=person, start=begin, end=finish, source=source))
    return out


def next_shift(schedule: Schedule, at: datetime, horizon: timedelta = timedelta(days=60)) -> Shift | None:
    """The first shift after the one in force at ``at`` (who is next, and when)."""
    upcoming = shifts(schedule, at, at + horizon)
    return upcoming[1] if len(upcoming) > 1 else None

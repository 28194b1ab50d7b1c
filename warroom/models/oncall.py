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

from bisect import bisect_right
from datetime import UTC, date, datetime, time, timedelta
from math import lcm
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
    """``override`` or ``rotation`` (a gap nobody covers is a ``rotation`` shift of nobody)."""
    layer: int | None = None
    """The layer (1-based) a rotation shift comes from; None for an override, a gap, or a
    stretch in which one person is on call through more than one layer."""


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


def _state(schedule: Schedule, at: datetime) -> tuple[str | None, str, int | None]:
    """(person, ``override`` or ``rotation``, layer number or None) at ``at``."""
    person, why = who_is_on_call(schedule, at)
    if why == "override":
        return person, "override", None
    return person, "rotation", int(why.split()[1]) if why else None


def shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """The on-call shifts between ``start`` and ``end``, adjacent equal shifts merged.

    The first and last are cut at ``start`` and ``end``; ``shift_at`` gives a whole shift."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return []
    points = _boundaries(schedule, start, end) + [end]
    out: list[Shift] = []
    for begin, finish in zip(points, points[1:]):
        if finish <= begin:
            continue
        person, source, layer = _state(schedule, begin)
        if out and out[-1].person == person and out[-1].source == source:
            merged_layer = out[-1].layer if out[-1].layer == layer else None
            out[-1] = out[-1].model_copy(update={"end": finish, "layer": merged_layer})
        else:
            out.append(Shift(person=person, start=begin, end=finish, source=source, layer=layer))
    return out


# --- whole shifts, however long ------------------------------------------------------------
#
# ``shifts`` looks at a window; the shift in force may have begun long before any window one
# would pick (a 14-day custom shift, one person on a rotation of one, the same person on two
# layers back to back). These walk from one instant at which the answer may change to the
# previous or next one, each found arithmetically: a layer's hand-offs where its person changes
# (at most one cycle of participants away), its windows' openings and closings (within a
# week), the overrides' edges. A layer beneath one without windows is hidden once that one has
# started, so its changes are skipped from then on. And between two layers' first hand-offs
# the schedule repeats itself in local time (every cycle of every layer, and every week when
# there are windows): a person who stays on call through a whole such period stays on call to
# the next first hand-off or override, so the walk jumps there.

MAX_WALK = 5000
"""Changes walked through to find where one shift begins or ends. Only a schedule whose pattern
repeats less often than yearly and on which one person stays on call through thousands of
changes gets this far; its shift is then reported from (or to) where the walk stopped."""
MAX_PERIOD = timedelta(days=366)
"""The longest repeating pattern the walk jumps over (longer ones are walked)."""


def _handoff_or_none(rotation: Rotation, tz: ZoneInfo, index: int) -> datetime | None:
    try:
        return _handoff(rotation, tz, index)
    except OverflowError:
        return None


def _changes_hands(rotation: Rotation, index: int) -> bool:
    """Whether hand-off ``index`` gives the layer to someone else (the first always does)."""
    people, n = rotation.participants, len(rotation.participants)
    return index == 0 or people[index % n] != people[(index - 1) % n]


def _cycle(rotation: Rotation) -> int:
    """After how many hand-offs the layer's participants repeat (1: always the same person)."""
    people, n = rotation.participants, len(rotation.participants)
    return next(d for d in range(1, n + 1) if n % d == 0 and all(people[i] == people[i % d] for i in range(n)))


def _handoff_before(rotation: Rotation, tz: ZoneInfo, t: datetime) -> datetime | None:
    """The last hand-off before ``t`` at which the layer's person changed (None: it had not started)."""
    index = _shift_index(rotation, tz, t)
    if index >= 0 and _handoff(rotation, tz, index) >= t:
        index -= 1
    if index < 0:
        return None
    if len(set(rotation.participants)) == 1:
        return _handoff(rotation, tz, 0)
    while not _changes_hands(rotation, index):  # at most one cycle of participants
        index -= 1
    return _handoff(rotation, tz, index)


def _handoff_after(rotation: Rotation, tz: ZoneInfo, t: datetime) -> datetime | None:
    """The first hand-off after ``t`` at which the layer's person changes (None: never again)."""
    index = max(_shift_index(rotation, tz, t) + 1, 0)
    if index > 0 and len(set(rotation.participants)) == 1:
        return None
    while not _changes_hands(rotation, index):
        index += 1
    return _handoff_or_none(rotation, tz, index)


def _window_points(rotation: Rotation, tz: ZoneInfo, t: datetime, days: range) -> list[datetime]:
    """When the layer's windows open and close on the local days ``t`` + ``days``."""
    today = t.astimezone(tz).date()
    found = []
    for window in rotation.only:
        for offset in days:
            try:
                day = today + timedelta(days=offset)
                opens = local_instant(datetime.combine(day, window.start), tz)
                closes_day = day if window.start < window.end else day + timedelta(days=1)
                closes = local_instant(datetime.combine(closes_day, window.end), tz)
            except OverflowError:
                continue
            found.extend((opens, closes))
    return found


class _Walk:
    """What the walk needs to know of one schedule, worked out once."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.tz = schedule.tz
        self.firsts = [_handoff_or_none(r, self.tz, 0) or LATEST for r in schedule.layers]
        # Layer j is hidden from the first hand-off of any windowless layer above it.
        self.hidden_from: list[datetime | None] = [
            min((self.firsts[m] for m in range(j + 1, len(schedule.layers)) if not schedule.layers[m].only),
                default=None)
            for j in range(len(schedule.layers))
        ]
        self.edges = sorted(set(self.firsts))
        self.overrides = sorted(
            ((o.start.astimezone(UTC), o.end.astimezone(UTC)) for o in schedule.overrides), key=lambda e: e[0]
        )

    def state(self, t: datetime) -> tuple[str | None, str, int | None]:
        return _state(self.schedule, t)

    def _visible(self, j: int, p: datetime) -> bool:
        hidden = self.hidden_from[j]
        return hidden is None or p < hidden

    def before(self, t: datetime) -> datetime | None:
        """The last instant before ``t`` at which who is on call may have changed."""
        found = [p for edge in self.overrides for p in edge if p < t]
        for j, rotation in enumerate(self.schedule.layers):
            handed = _handoff_before(rotation, self.tz, t)
            if handed is None:
                continue  # before its first hand-off the layer has nobody, windows or not
            points = [handed, *(p for p in _window_points(rotation, self.tz, t, range(-8, 2))
                                if self.firsts[j] < p < t)]
            found.extend(p for p in points if self._visible(j, p))
        return max(found, default=None)

    def after(self, t: datetime) -> datetime | None:
        """The first instant after ``t`` at which who is on call may change."""
        found = [p for edge in self.overrides for p in edge if p > t]
        for j, rotation in enumerate(self.schedule.layers):
            if not self._visible(j, t):
                continue
            handed = _handoff_after(rotation, self.tz, t)
            points = [handed] if handed is not None else []
            points.extend(p for p in _window_points(rotation, self.tz, t, range(-1, 9)) if p > t and p > self.firsts[j])
            found.extend(p for p in points if self._visible(j, p))
        return min(found, default=None)

    def region(self, t: datetime) -> int:
        """Which stretch between first hand-offs ``t`` lies in (the set of layers running is fixed in one)."""
        return bisect_right(self.edges, t)

    def period(self, t: datetime) -> timedelta | None:
        """How often (in local time) the layers running at ``t`` repeat; None beyond MAX_PERIOD."""
        running = [r for j, r in enumerate(self.schedule.layers) if self.firsts[j] <= t and self._visible(j, t)]
        if not running:
            return None
        units = [_cycle(r) * r.shift for r in running if _cycle(r) > 1]  # one person: hand-offs change nothing
        if any(r.only for r in running):
            units.append(timedelta(days=7))
        micro = lcm(*(u // timedelta(microseconds=1) for u in units)) if units else 1
        return timedelta(microseconds=micro) if micro <= MAX_PERIOD // timedelta(microseconds=1) else None

    def wall(self, t: datetime) -> datetime:
        return t.astimezone(self.tz).replace(tzinfo=None)

    def jump(self, t: datetime, forward: bool) -> datetime | None:
        """The next (or, going back, the last) first hand-off or override edge from ``t``: where
        a repeating pattern can break."""
        if forward:
            return min([e for e in self.edges if e > t] + [s for s, _ in self.overrides if s > t], default=None)
        return max([e for e in self.edges if e <= t] + [e for _, e in self.overrides if e <= t], default=None)


def _walk_override(w: _Walk, t: datetime, person: str | None, forward: bool) -> datetime:
    """An override's edge, or past back-to-back overrides for the same person."""
    covering = next((o for o in w.overrides if o[0] <= t < o[1]), None)
    if covering is None:
        return t
    edge = covering[1] if forward else covering[0]
    while True:
        follow = next((o for o in w.schedule.overrides
                       if (o.start.astimezone(UTC) == edge if forward else o.end.astimezone(UTC) == edge)
                       and o.person == person), None)
        if follow is None:
            return edge
        edge = follow.end.astimezone(UTC) if forward else follow.start.astimezone(UTC)


def _walk(w: _Walk, t: datetime, key: tuple[str | None, str], forward: bool, layers: set[int | None]) -> datetime:
    """From ``t`` (inside a stretch whose person and source are ``key``) to where the stretch
    ends (``forward``) or begins; ``layers`` collects the layers passed through."""
    if key[1] == "override":
        return _walk_override(w, t, key[0], forward)
    anchor = t
    for _ in range(MAX_WALK):
        period = w.period(t)
        jumped = period is not None and abs(w.wall(t) - w.wall(anchor)) >= period + timedelta(days=1)
        if jumped:
            point = w.jump(t, forward)  # the same person through a whole period: to where it may break
        else:
            point = w.after(t) if forward else w.before(t)
        if point is None or point > LATEST:
            # Nothing changes any more that way: on for ever, or nobody since before the schedule began.
            if forward:
                return LATEST
            return EARLIEST if key == (None, "rotation") else t
        person, source, layer = w.state(point)
        if (person, source) != key:
            return point if forward else t
        layers.add(layer)
        if jumped or w.region(point) != w.region(t):
            anchor = point
        t = point
    return t


def _whole(w: _Walk, start: datetime, at: datetime, walk_back: bool) -> Shift:
    person, source, layer = w.state(at)
    layers: set[int | None] = {layer}
    if walk_back:
        start = _walk(w, at, (person, source), False, layers)
    end = _walk(w, at, (person, source), True, layers)
    only = layers.pop() if len(layers) == 1 else None
    return Shift(person=person, start=start, end=end, source=source, layer=only)


def shift_at(schedule: Schedule, at: datetime) -> Shift:
    """The whole shift in force at ``at``: since when this person (or nobody) has been on call,
    and until when. A stretch that never ends runs to ``LATEST``; a gap since before the
    schedule began starts at ``EARLIEST``."""
    if at.tzinfo is None:
        raise ValueError("shift_at needs an aware datetime")
    at = at.astimezone(UTC)
    return _whole(_Walk(schedule), at, at, walk_back=True)


def shifts_from(schedule: Schedule, at: datetime, count: int, until: datetime | None = None) -> list[Shift]:
    """The shift in force at ``at`` and up to ``count`` whole shifts after it (with ``until``,
    only those that begin before it)."""
    at = at.astimezone(UTC)
    w = _Walk(schedule)
    out = [_whole(w, at, at, walk_back=True)]
    while len(out) <= count and out[-1].end < LATEST and (until is None or out[-1].end < until):
        begin = out[-1].end
        out.append(_whole(w, begin, begin, walk_back=False))
    return out


def next_shift(schedule: Schedule, at: datetime, horizon: timedelta = timedelta(days=60)) -> Shift | None:
    """The first shift after the one in force at ``at`` (who is next, and when), if it begins
    within ``horizon``."""
    found = shifts_from(schedule, at, 1, until=at.astimezone(UTC) + horizon)
    return found[1] if len(found) > 1 else None

"""Incident metrics from recorded instants: plain arithmetic, no clock, no database.

Definitions (shown next to the numbers on the dashboard, see ``DEFINITIONS``):

- MTTD, mean time to detect: impact start -> detection. Only incidents whose impact
  start was recorded count; a detection recorded before the impact start counts as 0.
- MTTA, mean time to acknowledge: detection -> first acknowledgement. Incidents never
  acknowledged (still waiting, or resolved without an ack) are left out of the mean
  and counted in ``unacknowledged``, so a slow ack is never hidden as a fast one.
- MTTR, mean time to resolve: detection -> resolution. Incidents still open are left
  out of the mean and counted in ``open``.
- Incidents: how many were detected in the period (declared, when no detection time).
- Postmortems on time: submitted by the deadline, out of those whose outcome is known
  at ``now`` (submitted, or past the deadline). Not yet due: ``pending``, not in the ratio.
- Action items on time: done by the due date, out of those whose outcome is known at
  ``now`` (done, or past due). Items are counted in the period of their due date.

An incident belongs to the period of its detection and to the worst severity it
reached: a SEV-1 downgraded once mitigated was a SEV-1 response, and its postmortem
and action items (which that severity required) count with it. Periods are UTC ISO
weeks (Monday 00:00) or calendar months.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from statistics import fmean

PERIODS = ("week", "month")

DEFINITIONS = {
    "mttd": "Mean time to detect: from when the impact started to when warroom detected it. "
            "Only incidents with a recorded impact start count.",
    "mtta": "Mean time to acknowledge: from detection to the first acknowledgement. "
            "Incidents never acknowledged are left out of the mean and shown as 'never acknowledged'.",
    "mttr": "Mean time to resolve: from detection to resolution. Open incidents are left out and shown as 'open'.",
    "incidents": "Incidents detected in the period, each under the worst severity it reached.",
    "postmortems_on_time": "Postmortems submitted by their deadline, out of those submitted or already past "
                           "their deadline (counted with their incident). Those still within their deadline are 'pending'.",
    "action_items_on_time": "Action items done by their due date, out of those done or already past due "
                            "(counted in the period of their due date).",
}


@dataclass(frozen=True)
class IncidentFacts:
    number: int
    severity: str
    declared_at: datetime
    detected_at: datetime | None = None
    impact_started_at: datetime | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    postmortem_deadline: datetime | None = None
    postmortem_submitted_at: datetime | None = None

    @property
    def detected(self) -> datetime:
        return self.detected_at or self.declared_at


@dataclass(frozen=True)
class ActionItemFacts:
    incident_number: int
    severity: str
    due: datetime
    done_at: datetime | None = None


@dataclass
class Ratio:
    on_time: int = 0
    late: int = 0
    pending: int = 0

    @property
    def rate(self) -> float | None:
        known = self.on_time + self.late
        return self.on_time / known if known else None


@dataclass
class Stats:
    incidents: int = 0
    mttd: float | None = None
    """Seconds; None when no incident in the group has the instants."""
    mtta: float | None = None
    mttr: float | None = None
    detected_counted: int = 0
    acknowledged: int = 0
    unacknowledged: int = 0
    resolved: int = 0
    open: int = 0
    postmortems: Ratio = field(default_factory=Ratio)
    action_items: Ratio = field(default_factory=Ratio)

    def as_dict(self) -> dict[str, object]:
        return {
            "incidents": self.incidents,
            "mttd_seconds": self.mttd,
            "mtta_seconds": self.mtta,
            "mttr_seconds": self.mttr,
            "with_impact_start": self.detected_counted,
            "acknowledged": self.acknowledged,
            "never_acknowledged": self.unacknowledged,
            "resolved": self.resolved,
            "open": self.open,
            "postmortems": {"on_time": self.postmortems.on_time, "late": self.postmortems.late,
                            "pending": self.postmortems.pending, "on_time_ratio": self.postmortems.rate},
            "action_items": {"on_time": self.action_items.on_time, "late": self.action_items.late,
                             "pending": self.action_items.pending, "on_time_ratio": self.action_items.rate},
        }


def _secs(delta: timedelta) -> float:
    return delta.total_seconds()


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def postmortem_outcome(inc: IncidentFacts, now: datetime) -> str | None:
    """on_time | late | pending, or None when no postmortem was required."""
    if inc.postmortem_deadline is None:
        return None
    if inc.postmortem_submitted_at is not None:
        return "on_time" if inc.postmortem_submitted_at <= inc.postmortem_deadline else "late"
    return "late" if now > inc.postmortem_deadline else "pending"


def action_item_outcome(item: ActionItemFacts, now: datetime) -> str:
    if item.done_at is not None:
        return "on_time" if item.done_at <= item.due else "late"
    return "late" if now > item.due else "pending"


def stats(incidents: Iterable[IncidentFacts], items: Iterable[ActionItemFacts], now: datetime) -> Stats:
    """The numbers of one group of incidents and action items, as known at ``now``."""
    out = Stats()
    detect: list[float] = []
    ack: list[float] = []
    resolve: list[float] = []
    for inc in incidents:
        out.incidents += 1
        if inc.impact_started_at is not None:
            detect.append(max(0.0, _secs(inc.detected - inc.impact_started_at)))
        if inc.acknowledged_at is not None:
            ack.append(max(0.0, _secs(inc.acknowledged_at - inc.detected)))
        else:
            out.unacknowledged += 1
        if inc.resolved_at is not None:
            resolve.append(max(0.0, _secs(inc.resolved_at - inc.detected)))
        else:
            out.open += 1
        outcome = postmortem_outcome(inc, now)
        if outcome is not None:
            setattr(out.postmortems, outcome, getattr(out.postmortems, outcome) + 1)
    for item in items:
        outcome = action_item_outcome(item, now)
        setattr(out.action_items, outcome, getattr(out.action_items, outcome) + 1)
    out.detected_counted, out.acknowledged, out.resolved = len(detect), len(ack), len(resolve)
    out.mttd, out.mtta, out.mttr = _mean(detect), _mean(ack), _mean(resolve)
    return out


def period_start(t: datetime, period: str) -> datetime:
    """The UTC start of the week (Monday) or month that ``t`` falls in."""
    t = t.astimezone(UTC)
    if period == "week":
        day = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if period == "month":
        return t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    raise ValueError(f"unknown period '{period}': use week or month")


def period_label(start: datetime, period: str) -> str:
    if period == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return start.strftime("%Y-%m")


def periods_between(since: datetime, until: datetime, period: str) -> list[datetime]:
    """Every period start from the one holding ``since`` to the one holding ``until``."""
    out = []
    cur = period_start(since, period)
    while cur <= until:
        out.append(cur)
        if period == "week":
            cur = cur + timedelta(days=7)
        else:
            cur = cur.replace(year=cur.year + (cur.month == 12), month=cur.month % 12 + 1)
    return out


@dataclass
class Row:
    period: str
    start: datetime
    severity: str
    """A severity, or ``all``."""
    stats: Stats

    def as_dict(self) -> dict[str, object]:
        return {"period": self.period, "start": self.start.isoformat(), "severity": self.severity,
                **self.stats.as_dict()}


def by_period(
    incidents: list[IncidentFacts],
    items: list[ActionItemFacts],
    period: str,
    since: datetime,
    until: datetime,
    now: datetime,
    severities: Iterable[str] = ("SEV-1", "SEV-2", "SEV-3", "SEV-4"),
) -> list[Row]:
    """Stats per period in [since, until] and per severity (plus ``all``), empty periods included."""
    sevs = list(severities)
    rows = []
    for start in periods_between(since, until, period):
        label = period_label(start, period)
        in_inc = [i for i in incidents if period_start(i.detected, period) == start and since <= i.detected <= until]
        in_items = [a for a in items if period_start(a.due, period) == start and since <= a.due <= until]
        rows.append(Row(label, start, "all", stats(in_inc, in_items, now)))
        for sev in sevs:
            rows.append(Row(label, start, sev, stats([i for i in in_inc if i.severity == sev],
                                                     [a for a in in_items if a.severity == sev], now)))
    return rows

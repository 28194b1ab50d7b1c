"""On call, for ``warroom oncall``: read the instant the user gives and print a report
(who is on call, who is next and the coming shifts, per schedule).

The command itself is in :mod:`warroom.cli`, beside the other API commands and with
their connection options: it asks a running API (``GET /api/oncall``, any role) or,
given ``--policy FILE``, works the report out from that file alone, without a server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import typer

from warroom.models.oncall import EARLIEST, LATEST
from warroom.models.policy import load_policy
from warroom.models.routing import OnCallReport, ShiftOut, on_call_report


def parse_at(text: str | None) -> datetime:
    """``now``, or an ISO 8601 instant with an offset (``2026-12-09T03:00:00Z``)."""
    if text is None or text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not an instant; write e.g. 2026-12-09T03:00:00Z") from None
    if value.tzinfo is None:
        raise typer.BadParameter("give a time zone offset, e.g. 2026-12-09T03:00:00Z or +01:00")
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        value = EARLIEST - timedelta(days=1)
    if not EARLIEST <= value <= LATEST:
        raise typer.BadParameter("give an instant between the years 1971 and 8999")
    return value


def _when(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%a %d %b %H:%M")


def _shift(shift: ShiftOut | None, zone: ZoneInfo) -> str:
    if shift is None:
        return "-"
    who = shift.person or "nobody"
    how = " (override)" if shift.source == "override" else ""
    theirs = ""
    if shift.person_time_zone is not None and shift.person_time_zone != str(zone):
        home = ZoneInfo(shift.person_time_zone)
        theirs = f" [{shift.person_time_zone}: {_when(shift.start, home)} to {_when(shift.end, home)}]"
    return f"{who}{how}, {_when(shift.start, zone)} to {_when(shift.end, zone)}{theirs}"


def render(report: OnCallReport) -> str:
    """The report as lines for a terminal; times in each schedule's own zone, and in the
    zone of the person on call when they live elsewhere."""
    version = f" (configuration version {report.version})" if report.version is not None else ""
    out = [f"On call at {report.at:%Y-%m-%d %H:%M} UTC{version}"]
    if not report.schedules:
        out.append("  no schedules are configured")
    for sched in report.schedules:
        zone = ZoneInfo(sched.time_zone)
        out.append(f"  {sched.schedule} ({sched.time_zone})")
        out.append(f"    now:  {_shift(sched.now, zone)}")
        out.append(f"    next: {_shift(sched.next, zone)}")
        out.extend(f"    then: {_shift(shift, zone)}" for shift in sched.coming[1:])
    for team in report.teams:
        state = "inside" if team.in_business_hours else "outside"
        nxt = ""
        if not team.in_business_hours and team.next_business_hours is not None:
            nxt = f"; next open {_when(team.next_business_hours, ZoneInfo(team.time_zone))}"
        out.append(f"  team {team.team}: {state} business hours ({team.business_hours}){nxt}")
    return "\n".join(out)


def report_from_file(path: Path, at: datetime) -> OnCallReport:
    """The report from a policy file alone; a ``PolicyError`` names the file and the key."""
    return on_call_report(load_policy(path), at)

"""``warroom oncall``: who is on call now (or at any instant), who is next and the coming shifts, per schedule.

The ``warroom`` CLI (typer) registers it with ``app.command("oncall")(oncall)``.
It asks a running API (``GET /api/oncall``), or, given ``--policy FILE``, works
it out from that file alone, without a server. Until then it runs on its own:

    python -m warroom.cli_oncall --at 2026-12-09T03:00:00Z --policy examples/oncall.yaml
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import httpx
import typer

from warroom.models.oncall import EARLIEST, LATEST
from warroom.models.policy import PolicyError, load_policy
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


def fetch(api: str, at: datetime, timeout: float = 10.0) -> OnCallReport:
    resp = httpx.get(f"{api.rstrip('/')}/api/oncall", params={"at": at.isoformat()}, timeout=timeout)
    if resp.status_code != 200:
        detail = resp.json().get("detail", resp.text) if resp.headers.get("content-type", "").startswith(
            "application/json") else resp.text
        raise RuntimeError(f"the API answered {resp.status_code}: {detail}")
    return OnCallReport.model_validate(resp.json())


def oncall(
    at: Annotated[str | None, typer.Option("--at", help="an instant with an offset, e.g. 2026-12-09T03:00:00Z; "
                                                       "default now")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="work it out from this policy file, "
                                                                 "without a server")] = None,
    api: Annotated[str, typer.Option("--api", envvar="WARROOM_API_URL",
                                     help="the warroom API")] = "http://127.0.0.1:8000",
) -> None:
    """Who is on call now (or --at any instant), who is next and the coming shifts, per schedule."""
    instant = parse_at(at)
    try:
        report = on_call_report(load_policy(policy), instant) if policy is not None else fetch(api, instant)
    except (PolicyError, RuntimeError, httpx.HTTPError) as err:
        typer.echo(f"warroom oncall: {err}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(render(report))


def main() -> None:
    typer.run(oncall)


if __name__ == "__main__":
    main()

"""Who gets paged, how and when: routing, paging rules and page-time resolution.

Pure functions of (policy, incident, instant), like the on-call calculator they
build on:

- ``route``: which escalation policy and team an incident gets (first matching
  rule, else the default route).
- ``paging_decision``: what the paging rules say for a severity at an instant,
  judged against the team's business hours: page now (with which methods),
  defer the first page until business hours start, or do not page.
- ``resolve_level``: the people an escalation level means at an instant (who is
  on call on a schedule, a team's members, named people), with a line per
  target for the timeline.
- ``plan_first_page``: all three together for a new incident, the question
  "who would be paged, how, if this happened at t?".

The workflow runs ``route`` at declaration; ``resolve_level`` and
``paging_decision`` run in the ``resolve_targets`` activity against the
configuration in force when a level falls due (its result is in the history,
so replay is deterministic), or in the workflow itself on the incident's own
copy when no configuration is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from warroom.models.oncall import Shift, in_windows, next_window_start, shifts_from, who_is_on_call, zone
from warroom.models.policy import ContactMethod, Person, Policy, Team, target_kind
from warroom.models.severity import Severity

# --- routing -------------------------------------------------------------------------


class RouteChoice(BaseModel):
    """What routing decided for an incident (kept in its state)."""

    escalation: str = "default"
    team: str | None = None
    rule: str = "default route"
    """How the choice was made: ``rule 'NAME'``, ``rule N`` or ``default route``."""


def _labels_match(wanted: Mapping[str, str], alerts: Sequence[Mapping[str, str]]) -> bool:
    return any(all(labels.get(k) == v for k, v in wanted.items()) for labels in alerts)


def route(
    policy: Policy,
    severity: Severity,
    components: Iterable[str] = (),
    source: str = "api",
    labels: Sequence[Mapping[str, str]] = (),
) -> RouteChoice:
    """The first rule of ``policy.routes`` whose every given field matches, else the default.

    ``labels`` holds the label sets of the incident's alerts; a rule's labels
    match when one alert carries all of them."""
    have = {c.strip().lower() for c in components}
    for i, rule in enumerate(policy.routes):
        m = rule.match
        if m.components and not have & {c.strip().lower() for c in m.components}:
            continue
        if m.severities and severity not in m.severities:
            continue
        if m.sources and source.lower() not in {s.lower() for s in m.sources}:
            continue
        if m.labels and not _labels_match(m.labels, labels):
            continue
        name = f"rule '{rule.name}'" if rule.name else f"rule {i + 1}"
        return RouteChoice(escalation=rule.escalation, team=rule.team, rule=name)
    return RouteChoice(escalation=policy.default_route.escalation, team=policy.default_route.team)


# --- business hours and paging rules ---------------------------------------------------


def in_business_hours(team: Team, at: datetime) -> bool:
    return in_windows(team.business_hours, team_zone(team), at)


def next_business_hours(team: Team, at: datetime) -> datetime | None:
    """When the team's business hours next begin after ``at`` (None if it has none)."""
    return next_window_start(team.business_hours, team_zone(team), at)


def team_zone(team: Team) -> ZoneInfo:
    return zone(team.time_zone)


class PagingDecision(BaseModel):
    action: Literal["page", "defer", "none"]
    methods: list[ContactMethod] = Field(default_factory=list)
    """For ``page``: the methods that go out at once (a person's others are fallbacks)."""
    until: datetime | None = None
    """For ``defer``: when the team's business hours start."""
    until_text: str = ""
    """``until`` in the team's local time, for people."""
    why: str = ""
    """In words, for the timeline: which rule decided and against which hours."""


def paging_decision(
    policy: Policy, severity: Severity, team_name: str | None, at: datetime, first: bool = True
) -> PagingDecision:
    """What the paging rules say for ``severity`` at ``at``.

    Business hours are the incident team's; an incident without a team (or a
    team the policy no longer has) is always "in business hours", so it pages
    rather than waits. ``defer`` applies to the first page only: once someone
    has been paged, escalation carries on at any hour with the severity's methods.
    """
    if not policy.pages_ever(severity):
        return PagingDecision(action="none", why=f"{severity.value} does not page under this policy")
    team = policy.teams.get(team_name) if team_name else None
    inside = True if team is None else in_business_hours(team, at)
    hours = f"{team_name}'s business hours ({team.describe_hours()})" if team is not None else "business hours"
    for i, rule in enumerate(policy.paging_rules):
        if severity not in rule.severities:
            continue
        if rule.when == "business_hours" and not inside:
            continue
        if rule.when == "outside_business_hours" and inside:
            continue
        where = {"any_time": "at any hour", "business_hours": f"inside {hours}",
                 "outside_business_hours": f"outside {hours}"}[rule.when]
        label = f"paging rule {i + 1}: {severity.value} {where}"
        if rule.action == "none":
            return PagingDecision(action="none", why=f"{label} pages nobody")
        if rule.action == "defer":
            until = next_business_hours(team, at) if team is not None else None
            if not first:
                return PagingDecision(
                    action="page", methods=list(policy.methods_for(severity)),
                    why=f"{label} would wait, but paging has started: escalation goes on",
                )
            if until is None or until <= at:
                return PagingDecision(action="page", methods=list(policy.methods_for(severity)),
                                      why=f"{label} waits, but the team has no business hours: paging now")
            local = until.astimezone(team_zone(team))
            return PagingDecision(
                action="defer", until=until, until_text=local.strftime("%a %d %b %H:%M:%S" if local.second else "%a %d %b %H:%M") + f" {team.time_zone}",
                why=f"{label} waits for business hours",
            )
        methods = list(rule.methods or policy.methods_for(severity))
        return PagingDecision(action="page", methods=methods, why=f"{label}: {', '.join(m.value for m in methods)}")
    methods = list(policy.methods_for(severity))
    return PagingDecision(action="page", methods=methods, why=f"{severity.value}: {', '.join(m.value for m in methods)}")


def notice_methods(
    policy: Policy, severity: Severity, team_name: str | None, at: datetime, paging_started: bool
) -> tuple[list[ContactMethod], bool]:
    """What reminders and notices of an incident may use at ``at``: the methods a page of
    its severity would go out with now, and whether it pages at all now. A severity that
    pages nobody at this hour (not paged by the policy, a ``none`` rule, or a first page
    deferred to business hours) must not buzz a phone with a reminder either."""
    decision = paging_decision(policy, severity, team_name, at, first=not paging_started)
    if decision.action != "page":
        return [ContactMethod.EMAIL], False
    return list(decision.methods or policy.methods_for(severity)), True


# --- resolving an escalation level -------------------------------------------------------


class ResolvedTarget(BaseModel):
    target: str
    """As written in the level: ``alice``, ``schedule:NAME`` or ``team:NAME``."""
    people: list[str] = Field(default_factory=list)
    note: str = ""
    """Why these people (``on call``, ``override``) or why nobody."""

    def describe(self) -> str:
        kind, name = target_kind(self.target)
        if kind == "person":
            return name if self.people else f"{name} ({self.note})"
        who = ", ".join(self.people) if self.people else "nobody"
        note = f" ({self.note})" if self.note else ""
        return f"{kind} {name} → {who}{note}"


class Resolution(BaseModel):
    """The people one escalation level (or the fallback) means at one instant."""

    targets: list[ResolvedTarget] = Field(default_factory=list)
    contacts: dict[str, Person] = Field(default_factory=dict)
    """How to reach each person, from the configuration the resolution used."""
    decision: PagingDecision
    config_version: int | None = None
    """The stored configuration version used; None: the incident's own copy."""
    note: str = ""

    @property
    def people(self) -> list[str]:
        return list(dict.fromkeys(p for t in self.targets for p in t.people))

    def via(self, person: str) -> str | None:
        """The first target that brought ``person`` in."""
        return next((t.target for t in self.targets if person in t.people), None)

    def describe(self) -> str:
        if all(target_kind(t.target)[0] == "person" for t in self.targets):
            return ", ".join(t.describe() for t in self.targets) or "no targets"
        return "; ".join(t.describe() for t in self.targets)


def resolve_target(policy: Policy, target: str, at: datetime) -> ResolvedTarget:
    kind, name = target_kind(target)
    if kind == "schedule":
        schedule = policy.schedules.get(name)
        if schedule is None:
            return ResolvedTarget(target=target, note="no such schedule any more")
        person, source = who_is_on_call(schedule, at)
        if person is None:
            return ResolvedTarget(target=target, note="nobody on call")
        if person not in policy.people:
            return ResolvedTarget(target=target, note=f"{person} is on call but not among the people")
        return ResolvedTarget(target=target, people=[person], note="override" if source == "override" else "on call")
    if kind == "team":
        team = policy.teams.get(name)
        if team is None:
            return ResolvedTarget(target=target, note="no such team any more")
        members = [m for m in team.members if m in policy.people]
        return ResolvedTarget(target=target, people=members, note="" if members else "no members")
    if name not in policy.people:
        return ResolvedTarget(target=target, note="no longer in the configuration")
    return ResolvedTarget(target=target, people=[name])


def level_targets(policy: Policy, escalation: str, level: int, as_declared: Sequence[str]) -> tuple[list[str], str]:
    """The targets of ``level`` (-1: the fallback) of ``escalation`` in ``policy``, or the
    level as the incident declared it when the policy no longer has it (and why)."""
    esc = policy.escalation_for(escalation)
    if esc is None:
        return list(as_declared), f"escalation policy '{escalation}' is gone; used the level as declared"
    if level < 0:
        if esc.fallback:
            return list(esc.fallback), ""
        return ([policy.engineering_lead] if policy.engineering_lead else []), ""
    if level >= len(esc.levels):
        return list(as_declared), f"'{escalation}' has no level {level + 1} now; used the level as declared"
    return list(esc.levels[level].notify), ""


def resolve_level(
    policy: Policy,
    escalation: str,
    level: int,
    as_declared: Sequence[str],
    severity: Severity,
    team: str | None,
    at: datetime,
    first: bool = False,
    config_version: int | None = None,
) -> Resolution:
    """Who level ``level`` of ``escalation`` pages at ``at``, and how (the paging rules)."""
    targets, note = level_targets(policy, escalation, level, as_declared)
    resolved = [resolve_target(policy, t, at) for t in targets]
    people = {p for r in resolved for p in r.people}
    return Resolution(
        targets=resolved,
        contacts={p: policy.people[p] for p in sorted(people)},
        decision=paging_decision(policy, severity, team, at, first=first),
        config_version=config_version,
        note=note,
    )


def still_targeted(policy: Policy, via: str | None, person: str) -> str | None:
    """Why ``person`` should no longer hear about an incident they were brought into
    by ``via`` (None: they still should).

    Someone who left the configuration hears nothing more. Someone brought in by a
    schedule or a team keeps hearing only while they are still part of it: taken off
    the rotation, they are done; at the end of their shift they are not (they were
    paged and may be working on it)."""
    if person not in policy.people:
        return f"{person} is no longer in the on-call configuration"
    if via is None:
        return None
    kind, name = target_kind(via)
    if kind == "schedule":
        schedule = policy.schedules.get(name)
        if schedule is None:
            return f"schedule {name} no longer exists"
        if person not in schedule.people():
            return f"{person} is no longer on schedule {name}"
    if kind == "team":
        team = policy.teams.get(name)
        if team is None:
            return f"team {name} no longer exists"
        if person not in team.members:
            return f"{person} is no longer a member of team {name}"
    return None


# --- the whole first page, and who is on call ----------------------------------------------


class FirstPage(BaseModel):
    route: RouteChoice
    resolution: Resolution


def plan_first_page(
    policy: Policy,
    severity: Severity,
    at: datetime,
    components: Iterable[str] = (),
    source: str = "api",
    labels: Sequence[Mapping[str, str]] = (),
) -> FirstPage:
    """Who an incident declared at ``at`` pages first, and how: routing, level 1
    resolved at ``at``, and the paging rules."""
    choice = route(policy, severity, components, source, labels)
    esc = policy.escalation_for(choice.escalation) or policy.escalation
    resolution = resolve_level(
        policy, choice.escalation, 0, esc.levels[0].notify, severity, choice.team, at, first=True
    )
    return FirstPage(route=choice, resolution=resolution)


class ShiftOut(BaseModel):
    person: str | None
    start: datetime
    end: datetime
    """In UTC. A shift with no end in sight (a rotation of one) ends on 8999-12-31."""
    source: str
    """``override`` or ``rotation``."""
    layer: int | None = None
    """The layer (1-based) of a rotation shift; None for an override, a gap, or one person
    on call through several layers in a row."""
    start_local: datetime | None = None
    end_local: datetime | None = None
    """``start`` and ``end`` in the schedule's zone (with its offset at that instant)."""
    person_time_zone: str | None = None
    """Where the person on call lives (``people.NAME.time_zone``), when the configuration says."""


class ScheduleNow(BaseModel):
    schedule: str
    time_zone: str
    now: ShiftOut | None
    """The shift in force (person None: a gap nobody covers), from its true start."""
    next: ShiftOut | None
    coming: list[ShiftOut] = Field(default_factory=list)
    """The shifts after ``now``, in order (the first is ``next``), as many as asked for."""
    more_coming: bool = False
    """More shifts follow (before ``until``, when asked with a window) than ``coming`` lists."""


DEFAULT_COMING = 5
"""Shifts listed after the one in force when nobody asks for a number."""
MAX_COMING = 100
"""The most shifts one answer lists per schedule."""
MAX_WINDOW = timedelta(days=92)
"""The longest ``until`` window one answer covers."""


def _shift_out(shift: Shift, tz: ZoneInfo, people: Mapping[str, Person]) -> ShiftOut:
    person = people.get(shift.person) if shift.person is not None else None
    return ShiftOut(
        person=shift.person, start=shift.start, end=shift.end, source=shift.source, layer=shift.layer,
        start_local=_local(shift.start, tz), end_local=_local(shift.end, tz),
        person_time_zone=person.time_zone if person is not None else None,
    )


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    try:
        return at.astimezone(tz)
    except OverflowError:  # the open end of a shift that never ends, east of UTC
        return at


def on_call_overview(
    policy: Policy, at: datetime, coming: int = DEFAULT_COMING, until: datetime | None = None
) -> list[ScheduleNow]:
    """Per schedule: the shift in force at ``at`` (since when, until when), the next one, and
    the ``coming`` ones after it (with ``until``, only those that begin before it)."""
    at = at.astimezone(UTC)
    out = []
    for name, schedule in sorted(policy.schedules.items()):
        tz = schedule.tz
        current, *following = shifts_from(schedule, at, coming + 1, until)
        listed = following[:coming]
        more = len(following) > len(listed)
        if not following and until is not None:
            following = shifts_from(schedule, at, 1)[1:]  # ``next`` is given whatever the window
        out.append(
            ScheduleNow(
                schedule=name,
                time_zone=schedule.time_zone,
                now=_shift_out(current, tz, policy.people),
                next=_shift_out(following[0], tz, policy.people) if following else None,
                coming=[_shift_out(s, tz, policy.people) for s in listed],
                more_coming=more,
            )
        )
    return out


class TeamNow(BaseModel):
    team: str
    time_zone: str
    in_business_hours: bool
    business_hours: str
    next_business_hours: datetime | None


class OnCallReport(BaseModel):
    """``GET /api/oncall`` and ``warroom oncall``: per schedule now, next and the coming shifts;
    per team its hours."""

    at: datetime
    version: int | None = None
    """The stored configuration version it was computed from (None: a file)."""
    schedules: list[ScheduleNow]
    teams: list[TeamNow]


def on_call_report(
    policy: Policy, at: datetime, version: int | None = None, coming: int = DEFAULT_COMING,
    until: datetime | None = None,
) -> OnCallReport:
    at = at.astimezone(UTC)
    teams = [
        TeamNow(
            team=name,
            time_zone=team.time_zone,
            in_business_hours=in_business_hours(team, at),
            business_hours=team.describe_hours(),
            next_business_hours=next_business_hours(team, at),
        )
        for name, team in sorted(policy.teams.items())
    ]
    return OnCallReport(
        at=at, version=version, schedules=on_call_overview(policy, at, coming, until), teams=teams
    )


# --- the resolve_targets activity's input and output ------------------------------------------


class ResolveTargetsInput(BaseModel):
    incident_number: int
    escalation: str = "default"
    level: int
    """0-based level of the escalation policy; -1 for its fallback."""
    targets: list[str] = Field(default_factory=list)
    """The level as the incident's own policy has it (used if the configuration lost it)."""
    severity: Severity
    team: str | None = None
    at: datetime
    """The instant the level fell due: who is on call then."""
    first: bool = False
    """Nobody has been paged yet: the paging rules may defer this page."""


class ResolveTargetsResult(BaseModel):
    stored: bool
    """False when no configuration is stored: the workflow resolves on its own copy."""
    resolution: Resolution | None = None

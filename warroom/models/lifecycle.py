"""Lifecycle rules as pure functions of their inputs and an explicit instant.

The workflow calls these with ``workflow.now()``; tests call them with
hand-written instants. Nothing here reads a clock or performs I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from warroom.models.incident import PostmortemDocument, Role
from warroom.models.policy import Policy
from warroom.models.severity import Severity


# --- escalation --------------------------------------------------------------------


@dataclass(frozen=True)
class PlanStep:
    index: int
    level: int
    """Index of the escalation level (0-based)."""
    round: int
    """0 for the first pass through the levels, 1 for the first repeat, ..."""
    people: tuple[str, ...]
    """The level's targets as written: people, ``schedule:NAME`` or ``team:NAME``
    (who they are at page time is decided by ``routing.resolve_level``)."""
    ack_timeout: timedelta


def escalation_plan(policy: Policy, escalation: str = "default") -> list[PlanStep]:
    """Every step the escalation can take, in order: the levels, then each repeat."""
    spec_policy = policy.escalation_for(escalation) or policy.escalation
    steps: list[PlanStep] = []
    for rnd in range(spec_policy.repeat + 1):
        for level, spec in enumerate(spec_policy.levels):
            steps.append(
                PlanStep(
                    index=len(steps),
                    level=level,
                    round=rnd,
                    people=tuple(spec.notify),
                    ack_timeout=spec.ack_timeout or policy.ack_timeout,
                )
            )
    return steps


def next_step(plan: list[PlanStep], current: int) -> PlanStep | None:
    """The step after ``current`` (-1 before the first page), or None when exhausted."""
    following = current + 1
    return plan[following] if following < len(plan) else None


def pages_for(policy: Policy, severity: Severity) -> bool:
    """Whether the severity pages at some hour (``page_for`` and the paging rules)."""
    return policy.pages_ever(severity)


# --- public status cadence ---------------------------------------------------------


def update_interval(policy: Policy, severity: Severity) -> timedelta | None:
    """How often the public must hear from us at this severity (None: no cadence)."""
    return policy.update_every.get(severity)


def first_status_deadline(declared_at: datetime, policy: Policy) -> datetime:
    return declared_at + policy.first_status_within


def reminder_at(deadline: datetime, window: timedelta, lead: timedelta) -> datetime:
    """When to remind someone of ``deadline``: ``lead`` before it, but never earlier
    than half-way through the ``window`` that ends at the deadline."""
    return deadline - min(lead, window / 2)


def next_update_due(
    last_update_at: datetime, policy: Policy, severity: Severity, now: datetime
) -> datetime | None:
    """When the next public update falls due after one posted at ``last_update_at``.

    Used both after each update and when the severity changes. If the new
    cadence puts the deadline in the past (e.g. SEV-2 -> SEV-1 twenty minutes
    after the last update), the update is due now plus a short grace so the
    communications lead is reminded before it counts as overdue.
    """
    interval = update_interval(policy, severity)
    if interval is None:
        return None
    due = last_update_at + interval
    if due <= now:
        due = now + min(policy.reminder_lead, interval / 2)
    return due


def status_reminder_recipients(
    roles: Mapping[Role, str], acknowledged_by: str | None, paged: Iterable[str]
) -> list[str]:
    """Who is asked to post a status update: the communications lead; with none,
    the Incident Commander; with none, whoever acknowledged; with nobody, the
    people paged most recently."""
    for role in (Role.COMMUNICATIONS_LEAD, Role.INCIDENT_COMMANDER):
        if role in roles:
            return [roles[role]]
    if acknowledged_by:
        return [acknowledged_by]
    return list(dict.fromkeys(paged))


def overdue_update_recipients(
    roles: Mapping[Role, str], acknowledged_by: str | None, engineering_lead: str | None, paged: Iterable[str]
) -> list[str]:
    """Who hears that an update is overdue: the IC, or with none the engineering lead,
    or whoever acknowledged / was paged. Never nobody."""
    if Role.INCIDENT_COMMANDER in roles:
        return [roles[Role.INCIDENT_COMMANDER]]
    if engineering_lead:
        return [engineering_lead]
    return status_reminder_recipients(roles, acknowledged_by, paged)


def needs_commander(policy: Policy, severity: Severity, roles: Mapping[Role, str]) -> bool:
    return severity in policy.roles_required_for and Role.INCIDENT_COMMANDER not in roles


# --- postmortem --------------------------------------------------------------------


def postmortem_required(policy: Policy, worst_severity: Severity) -> bool:
    """Judged on the worst severity the incident reached: a SEV-1 that was
    downgraded once mitigated still hurt customers like a SEV-1."""
    return worst_severity in policy.postmortem_required_for


def postmortem_deadline(resolved_at: datetime, policy: Policy) -> datetime:
    return resolved_at + policy.postmortem_within


def postmortem_reminder_times(resolved_at: datetime, policy: Policy) -> list[datetime]:
    """The reminder instants before the deadline, earliest first, none before resolution."""
    deadline = postmortem_deadline(resolved_at, policy)
    times = {deadline - before for before in policy.postmortem_reminders_before if deadline - before > resolved_at}
    return sorted(times)


def postmortem_overdue_times(resolved_at: datetime, policy: Policy, count: int) -> datetime:
    """When the ``count``-th (0-based) overdue notice to the engineering lead is due."""
    return postmortem_deadline(resolved_at, policy) + policy.postmortem_overdue_repeat * count


POSTMORTEM_SECTIONS = {
    "summary": "summary",
    "timeline": "timeline",
    "root_cause": "root cause",
    "impact": "impact",
    "what_went_well": "what went well",
    "what_could_improve": "what could improve",
}


def postmortem_problems(doc: PostmortemDocument, now: datetime | None = None) -> list[str]:
    """Everything that keeps a postmortem from being accepted, named for the author."""
    problems = [
        f"{label} is empty" for field, label in POSTMORTEM_SECTIONS.items() if not getattr(doc, field).strip()
    ]
    if not doc.action_items:
        problems.append("there are no action items (each needs an owner and a due date)")
    for i, item in enumerate(doc.action_items, start=1):
        if not item.title.strip():
            problems.append(f"action item {i} has no description")
        if not item.owner.strip():
            problems.append(f"action item {i} has no owner")
        if now is not None and item.due <= now:
            problems.append(f"action item {i} is due in the past")
    return problems


# --- metrics -----------------------------------------------------------------------


def durations_from_instants(
    impact_started_at: datetime | None,
    detected_at: datetime,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
) -> dict[str, timedelta | None]:
    """Time to detect, acknowledge and resolve one incident (None where not reached)."""
    return {
        "time_to_detect": (detected_at - impact_started_at) if impact_started_at else None,
        "time_to_acknowledge": (acknowledged_at - detected_at) if acknowledged_at else None,
        "time_to_resolve": (resolved_at - detected_at) if resolved_at else None,
    }

"""What the responder console shows, as pure rules: which deadlines an incident has, how
long is left on each, and which incident needs someone first.

The incident page asks the workflow for its deadlines (the source of truth); the list of
open incidents reads many incidents at once from the read model, so ``stored_deadlines``
derives the same deadlines from the stored state with the same rules as
``IncidentWorkflow.deadlines``. Times are arguments: nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from warroom.models import lifecycle
from warroom.models.incident import Deadline, IncidentState, IncidentStatus
from warroom.models.policy import Policy

DEADLINE_LABELS = {
    "acknowledge": "acknowledge (or it escalates)",
    "deferred_page": "deferred page goes out",
    "first_status_update": "first public status update",
    "next_status_update": "next status update",
    "assign_incident_commander": "assign an incident commander",
    "postmortem": "postmortem due",
}


def stored_deadlines(state: IncidentState, policy: Policy) -> list[Deadline]:
    """The deadlines of an incident from its stored state, earliest first (the workflow's rules)."""
    s, plan = state, state.status_plan
    out: list[Deadline] = []
    if s.status == IncidentStatus.TRIGGERED and s.escalation.deadline is not None:
        out.append(Deadline(name="acknowledge", at=s.escalation.deadline))
    if s.status == IncidentStatus.TRIGGERED and s.escalation.deferred_until is not None:
        out.append(Deadline(name="deferred_page", at=s.escalation.deferred_until))
    if s.status in (IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED):
        if plan.first_posted_at is None:
            out.append(Deadline(name="first_status_update", at=plan.first_deadline))
        elif plan.next_due is not None and lifecycle.update_interval(policy, s.severity) is not None:
            out.append(Deadline(name="next_status_update", at=plan.next_due))
        if s.ic_reminder_at is not None and lifecycle.needs_commander(policy, s.severity, s.roles):
            out.append(Deadline(name="assign_incident_commander", at=s.ic_reminder_at))
    if s.status == IncidentStatus.RESOLVED and s.postmortem.deadline is not None and s.postmortem.submitted_at is None:
        out.append(Deadline(name="postmortem", at=s.postmortem.deadline))
    return sorted(out, key=lambda d: d.at)


def time_left(seconds: float) -> str:
    """``12 min left``, ``40 s left``, ``overdue by 3 min``: rounded the way a person reads it."""
    overdue = seconds < 0
    n = abs(int(seconds))
    if n < 60:
        span = f"{n} s"
    elif n < 3600:
        span = f"{n // 60} min" + (f" {n % 60} s" if n < 600 and n % 60 else "")
    elif n < 48 * 3600:
        span = f"{n // 3600} h" + (f" {n % 3600 // 60} min" if n % 3600 >= 60 else "")
    else:
        span = f"{n // 86400} d" + (f" {n % 86400 // 3600} h" if n % 86400 >= 3600 else "")
    return f"overdue by {span}" if overdue else f"{span} left"


@dataclass(frozen=True)
class Countdown:
    name: str
    label: str
    at: datetime
    seconds: float
    """Seconds left at the instant it was computed; negative when overdue."""

    @property
    def overdue(self) -> bool:
        return self.seconds < 0

    @property
    def text(self) -> str:
        return time_left(self.seconds)


def countdowns(deadlines: Iterable[Deadline], now: datetime) -> list[Countdown]:
    return sorted(
        (Countdown(d.name, DEADLINE_LABELS.get(d.name, d.name.replace("_", " ")), d.at, (d.at - now).total_seconds())
         for d in deadlines),
        key=lambda c: c.at,
    )


def urgency(deadlines: list[Countdown], severity_rank: int, declared_at: datetime) -> tuple[int, float, int, float]:
    """Sort key, most urgent first: an incident with a deadline before one without; then the
    earliest deadline (overdue ones are the earliest); then the higher severity; then the oldest."""
    if deadlines:
        return (0, deadlines[0].at.timestamp(), severity_rank, declared_at.timestamp())
    return (1, 0.0, severity_rank, declared_at.timestamp())

"""Every text warroom writes to people and to the public, in one place.

Pages are short because they land on a phone at night: incident number,
severity, what broke, and how to acknowledge.
"""

from __future__ import annotations

from datetime import timedelta

from warroom.models.durations import format_duration
from warroom.models.incident import Role
from warroom.models.severity import Severity


def _components(components: list[str]) -> str:
    return ", ".join(components) if components else "the platform"


def page(number: int, severity: Severity, title: str, round_: int) -> tuple[str, str]:
    again = " (again: still unacknowledged)" if round_ else ""
    subject = f"[{severity.value}] #{number} {title}"
    text = f"warroom #{number} {severity.value}{again}: {title}. Reply 'ack {number}' to take it."
    return subject, text


def fallback(number: int, severity: Severity, title: str, pages: int) -> tuple[str, str]:
    subject = f"[{severity.value}] #{number} unanswered: {title}"
    text = (
        f"warroom #{number} {severity.value}: {title}. Nobody has acknowledged it after "
        f"{pages} page(s) across the whole escalation policy. Please take it or find someone who can."
    )
    return subject, text


def first_status_reminder(number: int, title: str, deadline_in: timedelta) -> tuple[str, str]:
    subject = f"#{number}: first public update due"
    text = (
        f"warroom #{number} ({title}): the status page has said nothing yet. Post a first update "
        f"within {format_duration(deadline_in)}, or warroom will publish a holding statement for you."
    )
    return subject, text


def auto_initial_status(title: str, components: list[str], every: timedelta | None) -> str:
    follow_up = (
        f" We will post another update within {format_duration(every)}."
        if every
        else " We will post another update as soon as we know more."
    )
    return (
        f"We are aware of a problem affecting {_components(components)} ({title}) and our engineers are "
        f"looking into it.{follow_up}"
    )


def auto_posted_notice(number: int, text: str) -> tuple[str, str]:
    subject = f"#{number}: holding statement published automatically"
    body = (
        f"warroom #{number}: no status update was posted in time, so warroom published this on the "
        f"status page: \"{text}\" Please follow up with a real update."
    )
    return subject, body


def update_reminder(number: int, title: str, due_in: timedelta) -> tuple[str, str]:
    subject = f"#{number}: status update due"
    text = (
        f"warroom #{number} ({title}): the next public status update is due in "
        f"{format_duration(due_in)}. Say what you know, what you are doing and when the next update comes."
    )
    return subject, text


def update_overdue(number: int, title: str, late_by: timedelta) -> tuple[str, str]:
    subject = f"#{number}: status update overdue"
    text = (
        f"warroom #{number} ({title}): the public status update is {format_duration(late_by)} late. "
        "Customers are waiting; post one now, even if there is no news."
    )
    return subject, text


def commander_missing(number: int, severity: Severity, title: str) -> tuple[str, str]:
    subject = f"#{number}: no Incident Commander"
    text = (
        f"warroom #{number} {severity.value} ({title}) has no Incident Commander. Assign one so "
        "decisions have an owner."
    )
    return subject, text


def role_assigned(number: int, role: Role, title: str) -> tuple[str, str]:
    subject = f"#{number}: you are {role.title}"
    text = f"warroom #{number} ({title}): you have been made {role.title}."
    return subject, text


def resolution_notice(title: str, summary: str, impact: str, postmortem_follows: bool) -> str:
    parts = [f"Resolved: {title}.", summary.strip().rstrip(".") + "."]
    if impact.strip():
        parts.append("Impact: " + impact.strip().rstrip(".") + ".")
    parts.append("Service is operating normally again.")
    if postmortem_follows:
        parts.append("We will publish a full review of what happened and what we are changing.")
    return " ".join(parts)


def resolved_to_responders(number: int, title: str, postmortem_deadline_in: timedelta | None) -> tuple[str, str]:
    subject = f"#{number} resolved"
    tail = (
        f" A blameless postmortem is due within {format_duration(postmortem_deadline_in)}."
        if postmortem_deadline_in
        else ""
    )
    return subject, f"warroom #{number} ({title}) is resolved. Thank you.{tail}"


def postmortem_reminder(number: int, title: str, due_in: timedelta) -> tuple[str, str]:
    subject = f"#{number}: postmortem due in {format_duration(due_in)}"
    text = (
        f"warroom #{number} ({title}): the postmortem is due in {format_duration(due_in)}. It needs a "
        "summary, timeline, root cause, impact, what went well, what could improve, and action items "
        "with owners and due dates."
    )
    return subject, text


def postmortem_overdue(number: int, title: str, late_by: timedelta) -> tuple[str, str]:
    subject = f"#{number}: postmortem overdue"
    text = (
        f"warroom #{number} ({title}): the postmortem is {format_duration(late_by)} past its deadline "
        "and has not been submitted."
    )
    return subject, text

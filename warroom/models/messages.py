"""Every text warroom writes to people and to the public, in one place.

Pages are short because they land on a phone at night: incident number,
severity, what broke, and how to acknowledge.
"""

from __future__ import annotations

from datetime import timedelta

from warroom.models.durations import format_duration
from warroom.models.incident import PublicPhase, Role
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


def status_posted(author: str, message: str, before: PublicPhase, after: PublicPhase) -> str:
    """The timeline entry for a public update: it names the phase the page now shows, and
    says so when the update took the incident back (the fix did not hold)."""
    phase = f"back to {after.value}" if after.rank < before.rank else after.value
    return f"Public update by {author} ({phase}): {message}"


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


# --- pages held by the per-contact cap, bundled into one message ---------------------------


def bundle(items: list[tuple[int, str]]) -> tuple[str, str]:
    """One message for several pages due to the same phone or address: ``items`` are
    (incident number, that page's subject)."""
    if len(items) == 1:
        number, subject = items[0]
        return subject, f"warroom: {subject}. Reply 'ack {number}' to take it."
    subject = f"warroom: {len(items)} incidents need you"
    lines = "; ".join(s for _, s in items)
    return subject, f"{subject}: {lines}. Reply 'ack all', or 'ack <number>' for one."


def voice_prompt(items: list[tuple[int, str, str]]) -> str:
    """What a page call says: ``items`` are (incident number, severity, title)."""
    if not items:
        return "This is warroom. There is nothing waiting for you on this call. Goodbye."
    spoken = ". ".join(f"Incident {n}, {sev.replace('-', ' ')}: {title}" for n, sev, title in items)
    them = "it" if len(items) == 1 else "all of them"
    return (
        f"This is warroom. {spoken}. Press 1 to acknowledge {them}. "
        "Press 2 to escalate to the next level now."
    )


def voice_no_input() -> str:
    return "No key was pressed. warroom will keep paging until someone acknowledges. Goodbye."


# --- answers to SMS replies and key presses (short: they land on a phone) ----------------


def reply_acknowledged(numbers: list[int]) -> str:
    return f"{_numbers(numbers)} acknowledged. Thank you."


def reply_already_acknowledged(number: int, by: str | None) -> str:
    return f"#{number} was already acknowledged{f' by {by}' if by else ''}."


def reply_resolved(number: int) -> str:
    return f"#{number} was already resolved."


def reply_unknown_incident(number: int | None) -> str:
    return f"Unknown incident #{number}." if number is not None else "No incident has paged you recently."


def reply_escalated(number: int) -> str:
    return f"#{number} escalated: the next level is being paged now."


def reply_already_escalated(number: int) -> str:
    return f"#{number} was already escalated past your level; nothing more was done."


def reply_refused(number: int, reason: str) -> str:
    return f"#{number}: not done, {reason}."


def reply_nothing_to_ack() -> str:
    return "Nothing to acknowledge: no open incident is paging you."


def reply_help() -> str:
    return "warroom: reply 'ack' (last page), 'ack 42', 'esc 42' (page the next level) or 'ack all'."


def reply_account_disabled() -> str:
    return "Your warroom account is disabled: nothing was acknowledged or escalated. An admin can enable it again."


def reply_unavailable() -> str:
    return "warroom could not reach the incident right now; try again in a minute or use the web page."


def _numbers(numbers: list[int]) -> str:
    tags = [f"#{n}" for n in numbers]
    return tags[0] if len(tags) == 1 else ", ".join(tags[:-1]) + " and " + tags[-1]

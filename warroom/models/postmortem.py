"""Postmortem documents: the blameless template, the draft pre-filled from warroom's own
record, the checks a submission must pass, and the Markdown export. Pure functions.

The workflow's own check (``lifecycle.postmortem_problems``) stays the rule the
incident enforces; ``submission_problems`` adds what only the API can know (who
the people are, the priorities, sizes) on top of it, so a refusal names every
problem at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from warroom.models import lifecycle
from warroom.models.durations import format_duration
from warroom.models.incident import IncidentState, PostmortemDocument, TimelineEntry

PRIORITIES = ("high", "medium", "low")
MAX_SECTION = 20_000
MAX_TIMELINE = 50_000
MAX_ITEMS = 100

SECTIONS: list[tuple[str, str, str]] = [
    ("summary", "Summary", "What happened, in two or three sentences a customer could follow."),
    ("timeline", "Timeline",
     "Pre-filled from warroom's record. Add what the record does not know: when the first signal "
     "appeared, what was tried, what changed the picture."),
    ("root_cause", "Root cause",
     "Which systems and conditions combined to cause this? Ask why until you reach a condition you can "
     "change: a missing check, an unsafe default, an alert that did not fire. Describe systems, not people."),
    ("impact", "Impact", "Who was affected, how, and for how long: customers, requests, data, money."),
    ("what_went_well", "What went well",
     "Which tools, alerts, runbooks and habits helped? These are worth keeping."),
    ("what_could_improve", "What could improve",
     "Where did the system or the process make the right action hard? Missing signals, slow "
     "tools, unclear ownership, steps that depended on memory."),
]
"""Field, heading, and the prompt the editor shows. The prompts ask about systems and
conditions: a person who made a change did what the system let them do."""

ACTION_ITEMS_PROMPT = (
    "Each item changes a system or a process (not 'be more careful'): an owner to drive it, a due date, "
    "a priority."
)


def _at(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def timeline_text(entries: Iterable[TimelineEntry], limit: int = MAX_TIMELINE) -> str:
    """The incident's timeline as lines the author can edit, within ``limit`` characters.

    A long incident (hours of pages, reminders and runbook steps) can record more than
    a submission may hold. Its draft keeps the opening and the end, which carry the
    detection and the recovery, and says how many lines in between were left out, so
    the author is never handed a draft that is refused as it stands."""
    lines = [f"{_at(e.at)}  {e.text}" for e in entries]
    if len("\n".join(lines)) <= limit:
        return "\n".join(lines)
    budget = limit - 200  # room for the line that says what was left out
    head: list[str] = []
    tail: list[str] = []
    used = 0
    i, j = 0, len(lines) - 1
    while i <= j:  # alternate, so both the opening and the end survive
        take_head = len(head) <= len(tail)
        line = lines[i] if take_head else lines[j]
        if used + len(line) + 1 > budget:
            break
        used += len(line) + 1
        if take_head:
            head.append(line)
            i += 1
        else:
            tail.append(line)
            j -= 1
    left_out = len(lines) - len(head) - len(tail)
    gap = (f"[... {left_out} timeline lines left out to fit the {limit}-character limit; "
           "the incident page keeps every one ...]")
    return "\n".join([*head, gap, *reversed(tail)])


def prefill(state: IncidentState) -> PostmortemDocument:
    """A draft from the incident's own record: summary, impact and the full timeline.
    Root cause, what went well and what could improve are left for people to write."""
    summary_parts = [f"{state.severity.value} incident #{state.number}: {state.title}."]
    if state.summary.strip():
        summary_parts.append(state.summary.strip())
    if state.resolution_summary:
        summary_parts.append(f"Resolution: {state.resolution_summary.strip()}")
    impact_lines = []
    if state.components:
        impact_lines.append("Components affected: " + ", ".join(state.components) + ".")
    start = state.impact_started_at or state.detected_at or state.declared_at
    if state.resolved_at is not None:
        impact_lines.append(
            f"Impact from {_at(start)} to {_at(state.resolved_at)} "
            f"({format_duration(max(state.resolved_at - start, timedelta(0)))})."
        )
    notices = [u.message for u in state.status_updates if u.kind == "resolution"]
    if notices:
        impact_lines.append("Resolution notice: " + notices[-1])
    return PostmortemDocument(
        summary="\n".join(summary_parts),
        timeline=timeline_text(state.timeline),
        impact="\n".join(impact_lines),
    )


def submission_problems(
    doc: PostmortemDocument, now: datetime, people: Mapping[str, object] | None = None
) -> list[str]:
    """Everything that keeps ``doc`` from being submitted at ``now``; empty when it may go.

    The incident workflow's rule first (every section written, action items with owner
    and a due date in the future), then: owners must be people warroom can remind
    (when ``people`` is given), priorities must be known, sizes bounded."""
    problems = lifecycle.postmortem_problems(doc, now=now)
    for field, heading, _prompt in SECTIONS:
        limit = MAX_TIMELINE if field == "timeline" else MAX_SECTION
        if len(getattr(doc, field)) > limit:
            problems.append(f"{heading.lower()} is longer than {limit} characters")
    if len(doc.action_items) > MAX_ITEMS:
        problems.append(f"there are more than {MAX_ITEMS} action items")
    for i, item in enumerate(doc.action_items, start=1):
        if item.priority not in PRIORITIES:
            problems.append(f"action item {i} has priority '{item.priority}'; use one of {', '.join(PRIORITIES)}")
        owner = item.owner.strip()
        if people is not None and owner and owner not in people:
            problems.append(f"action item {i}: owner '{owner}' is not a person warroom knows, so nobody "
                            "could be reminded")
    return problems


BLAME_CHECKED = ("root_cause", "what_could_improve")
"""The sections where a person's name usually means the text is looking for someone to blame."""


def blame_hints(doc: PostmortemDocument, people: Mapping[str, str]) -> list[str]:
    """Gentle notes (never a refusal) where the analysis names a person: ``people`` maps
    person ids to display names. Action-item owners are fine: someone has to drive the fix."""
    hints = []
    for field in BLAME_CHECKED:
        words = {w.lower() for w in re.findall(r"[\w.-]+", getattr(doc, field))}
        text = getattr(doc, field).lower()
        named = sorted(pid for pid, name in people.items()
                       if pid.lower() in words or (name and len(name) > 2 and name.lower() in text))
        if named:
            heading = dict((f, h) for f, h, _p in SECTIONS)[field].lower()
            hints.append(f"{heading} names {', '.join(named)}: describe what the system let happen and why it "
                         "made sense at the time, rather than who did it")
    return hints


def to_markdown(number: int, title: str, doc: PostmortemDocument, *, status: str, author: str | None,
                deadline: datetime | None, submitted_at: datetime | None) -> str:
    """The document as Markdown, for a wiki or a repository."""
    lines = [f"# Postmortem: #{number} {title}", ""]
    meta = [f"- Status: {status}"]
    if author:
        meta.append(f"- Author: {author}")
    if deadline:
        meta.append(f"- Due: {_at(deadline)}")
    if submitted_at:
        meta.append(f"- Submitted: {_at(submitted_at)}")
    lines += meta + ["", "_A blameless review: it describes systems and conditions, not people._", ""]
    for field, heading, _prompt in SECTIONS:
        text = getattr(doc, field).strip() or "_(not written yet)_"
        if field == "timeline" and getattr(doc, field).strip():
            text = "\n".join(f"- {line}" if line.strip() else "" for line in text.splitlines())
        lines += [f"## {heading}", "", text, ""]
    lines += ["## Action items", ""]
    if doc.action_items:
        lines += ["| # | Action | Owner | Due | Priority |", "|---|---|---|---|---|"]
        for i, item in enumerate(doc.action_items, start=1):
            lines.append(f"| {i} | {_cell(item.title)} | {_cell(item.owner)} | {item.due.date().isoformat()} "
                         f"| {item.priority} |")
    else:
        lines.append("_(none yet)_")
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def due_state(deadline: datetime, submitted_at: datetime | None, now: datetime) -> tuple[str, timedelta]:
    """('submitted' | 'due' | 'overdue', time left or time past the deadline) at ``now``."""
    if submitted_at is not None:
        return "submitted", deadline - submitted_at
    if now <= deadline:
        return "due", deadline - now
    return "overdue", now - deadline


def reminder_people(ic_or_responders: list[str], author: str | None) -> list[str]:
    """Who a postmortem reminder goes to: the IC (or, without one, whoever acknowledged or
    was paged last) and the author, once each."""
    people = list(ic_or_responders)
    if author and author not in people:
        people.append(author)
    return people


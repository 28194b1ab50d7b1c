"""Action items after a postmortem: workflow payloads and the rules of their reminders.

One tracker workflow per incident (``workflows.action_items``) holds the items until
each is done. Its owner is reminded before the due date (``Policy.action_item_reminders_before``);
once an item is overdue the engineering lead is told, exactly once per item.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from pydantic import BaseModel, Field

from warroom.models.durations import format_duration
from warroom.models.incident import ActionItem
from warroom.models.policy import Person, Policy


class TrackedItem(BaseModel):
    index: int
    """1-based position in the submitted postmortem; the item's id within its incident."""
    title: str
    owner: str
    due: datetime
    priority: str = "medium"
    done_at: datetime | None = None
    done_by: str | None = None
    reminders_sent: int = 0
    overdue_notified: bool = False
    revision: int = 0
    """How often the owner or due date changed: notices after a change are new notices."""
    added_by: str | None = None
    """Who added the item after the postmortem (None: it came with the postmortem)."""

    @property
    def open(self) -> bool:
        return self.done_at is None

    def slot(self, what: str) -> str:
        """The notification slot of a notice about this item (its idempotency key's middle)."""
        who = f"action-{self.index}" if self.revision == 0 else f"action-{self.index}.{self.revision}"
        return f"{who}-{what}"


class ActionItemsState(BaseModel):
    number: int
    title: str
    severity: str = ""
    """The worst severity the incident reached (metrics group items by it)."""
    items: list[TrackedItem]
    version: int = 0
    command_results: dict[str, str] = Field(default_factory=dict)
    """Answers to the latest commands by update id (a retried update answers the same)."""
    contacts: dict[str, Person] = Field(default_factory=dict)
    """How to reach owners given to the tracker after it started (added or reassigned items)."""


class ActionItemsInput(BaseModel):
    number: int
    title: str = ""
    severity: str = ""
    items: list[ActionItem] = Field(default_factory=list)
    policy: Policy
    contacts: dict[str, Person] = Field(default_factory=dict)
    """How to reach owners the policy may no longer list (copied from the incident)."""
    carried: ActionItemsState | None = None
    """Set only when the workflow continues as new."""
    force_continue_after: int | None = None
    """Test knob: continue as new once the history has this many events."""


class CompleteItemInput(BaseModel):
    index: int
    by: str


PRIORITIES = ("high", "medium", "low")
MAX_TRACKED = 200
"""Items one incident may track: a postmortem's 100 and as many added afterwards."""


class AddItemInput(BaseModel):
    """An action item found after the postmortem (a follow-up review, a second look)."""

    title: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    due: datetime
    priority: str = "medium"
    by: str
    contact: Person | None = None
    """How to reach the owner, from the policy in force when the command was sent."""


class EditItemInput(BaseModel):
    """Change an open item: reword it, hand it to someone else, move its due date, reprioritise.
    Fields left out stay as they are."""

    index: int
    by: str
    title: str | None = Field(default=None, min_length=1)
    owner: str | None = Field(default=None, min_length=1)
    due: datetime | None = None
    priority: str | None = None
    contact: Person | None = None


def end_of_day(text: str) -> datetime:
    """A due date written as YYYY-MM-DD, nothing more: the last second of that day, UTC."""
    if len(text) != 10:
        raise ValueError(f"'{text[:20]}' is not a date")
    return datetime.combine(date.fromisoformat(text), time(23, 59, 59), tzinfo=UTC)


def problems_of(cmd: AddItemInput | EditItemInput, now: datetime) -> list[str]:
    """What makes an add or an edit unacceptable whatever the item (checked by the API and
    again by the workflow's validator)."""
    out = []
    if cmd.title is not None and not cmd.title.strip():
        out.append("the title is blank")
    if cmd.priority is not None and cmd.priority not in PRIORITIES:
        out.append(f"priority '{cmd.priority}' is not one of {', '.join(PRIORITIES)}")
    if cmd.due is not None:
        if cmd.due.tzinfo is None:
            out.append("give the due date with a time zone, e.g. 2026-04-15T17:00:00Z")
        elif cmd.due <= now:
            out.append(f"the due date {cmd.due.isoformat()} is already past")
    return out


def apply_edit(item: TrackedItem, cmd: EditItemInput, policy: Policy, now: datetime) -> list[str]:
    """Change ``item`` as ``cmd`` asks; returns what changed, in words (empty: nothing did).

    A new owner or due date starts the item's notices afresh: reminders already past for the
    new due date are not sent late, and the lead is told again if the new date passes too."""
    changed = []
    if cmd.title is not None and cmd.title.strip() != item.title:
        item.title = cmd.title.strip()
        changed.append("reworded")
    if cmd.priority is not None and cmd.priority != item.priority:
        changed.append(f"priority {item.priority} -> {cmd.priority}")
        item.priority = cmd.priority
    fresh = False
    if cmd.owner is not None and cmd.owner != item.owner:
        changed.append(f"owner {item.owner} -> {cmd.owner}")
        item.owner = cmd.owner
        fresh = True
    if cmd.due is not None and cmd.due != item.due:
        changed.append(f"due {item.due.isoformat()} -> {cmd.due.isoformat()}")
        item.due = cmd.due
        item.overdue_notified = False
        fresh = True
    if fresh:
        item.revision += 1
        item.reminders_sent = reminders_passed(item, policy, now)
    return changed


def assigned_message(number: int, item: TrackedItem, by: str) -> tuple[str, str]:
    subject = f"#{number}: an action item is yours"
    text = (f"warroom #{number}: {by} gave you the action item '{item.title}' ({item.priority} priority), "
            f"due {item.due.strftime('%Y-%m-%d %H:%M %Z').strip()}. Mark it done in warroom when it is finished.")
    return subject, text


class ActionItemsPersist(BaseModel):
    state: ActionItemsState


def tracked(items: list[ActionItem]) -> list[TrackedItem]:
    return [
        TrackedItem(index=i, title=it.title, owner=it.owner, due=it.due, priority=it.priority)
        for i, it in enumerate(items, start=1)
    ]


def reminder_times(item: TrackedItem, policy: Policy) -> list[datetime]:
    """The instants the owner is reminded before the due date, earliest first."""
    return sorted({item.due - before for before in policy.action_item_reminders_before})


def reminder_due(item: TrackedItem, policy: Policy, now: datetime) -> bool:
    """A reminder is owed: the next one fell due and the item is neither done nor overdue.
    After a long outage of the workers only one reminder goes out, not all those missed."""
    times = reminder_times(item, policy)
    return item.open and now < item.due and item.reminders_sent < len(times) and now >= times[item.reminders_sent]


def reminders_passed(item: TrackedItem, policy: Policy, now: datetime) -> int:
    return sum(1 for t in reminder_times(item, policy) if t <= now)


def escalation_due(item: TrackedItem, now: datetime) -> bool:
    """The engineering lead is told once: the item is open, past due, and not yet reported."""
    return item.open and now >= item.due and not item.overdue_notified


def next_wakeup(items: list[TrackedItem], policy: Policy) -> datetime | None:
    """The earliest instant something falls due for any open item (None: nothing left)."""
    times: list[datetime] = []
    for it in items:
        if not it.open:
            continue
        if not it.overdue_notified:
            times.append(it.due)
        pending = reminder_times(it, policy)[it.reminders_sent:]
        times.extend(t for t in pending if t < it.due)
    return min(times) if times else None


def all_done(items: list[TrackedItem]) -> bool:
    return all(not it.open for it in items)


def reminder_message(number: int, item: TrackedItem, now: datetime) -> tuple[str, str]:
    left = format_duration(item.due - now)
    subject = f"#{number}: action item due in {left}"
    text = (f"warroom #{number}: the action item '{item.title}' ({item.priority} priority) is due in {left}. "
            "Mark it done in warroom when it is finished.")
    return subject, text


def overdue_message(number: int, item: TrackedItem, now: datetime) -> tuple[str, str]:
    subject = f"#{number}: action item overdue"
    text = (f"warroom #{number}: the action item '{item.title}' ({item.priority} priority, owner {item.owner}) "
            f"is {format_duration(now - item.due)} past its due date and not done.")
    return subject, text

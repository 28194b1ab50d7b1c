"""Postmortem documents: submission checks (table-style), the pre-filled draft, the
Markdown export, who is reminded, and the action-item reminder rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import re

import pytest

from tests.conftest import fast_policy
from warroom.models import action_items as items
from warroom.models import postmortem
from warroom.models.incident import (
    ActionItem,
    IncidentState,
    PostmortemDocument,
    StatusKind,
    StatusPlan,
    StatusUpdate,
    TimelineEntry,
)
from warroom.models.severity import Severity

NOW = datetime(2026, 3, 30, 9, 0, tzinfo=UTC)
PEOPLE = {"alice": object(), "bob": object()}


def doc(**changes: object) -> PostmortemDocument:
    base = PostmortemDocument(
        summary="DNS publishing lagged.", timeline="02:41 lag starts", root_cause="The publisher scanned every zone.",
        impact="Changes delayed 44 min.", what_went_well="Paged at once.", what_could_improve="Alert on lag sooner.",
        action_items=[ActionItem(title="Index the zone table", owner="alice", due=NOW + timedelta(days=7))],
    )
    return base.model_copy(update=changes)


def ai(**changes: object) -> ActionItem:
    return ActionItem(title="Index the zone table", owner="alice", due=NOW + timedelta(days=7)).model_copy(
        update=changes)


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        pytest.param(doc(), [], id="complete"),
        pytest.param(doc(root_cause="  "), ["root cause is empty"], id="blank section"),
        pytest.param(doc(summary="", impact=""), ["summary is empty", "impact is empty"], id="two sections"),
        pytest.param(doc(action_items=[]), ["there are no action items (each needs an owner and a due date)"],
                     id="no action items"),
        pytest.param(doc(action_items=[ai(due=NOW)]), ["action item 1 is due in the past"], id="due now is past"),
        pytest.param(doc(action_items=[ai(), ai(owner="mallory")]),
                     ["action item 2: owner 'mallory' is not a person warroom knows, so nobody could be reminded"],
                     id="unknown owner"),
        pytest.param(doc(action_items=[ai(priority="urgent")]),
                     ["action item 1 has priority 'urgent'; use one of high, medium, low"], id="unknown priority"),
        pytest.param(doc(action_items=[ai(title=" ", owner=" ")]),
                     ["action item 1 has no description", "action item 1 has no owner"], id="blank item"),
        pytest.param(doc(root_cause="x" * 20_001), ["root cause is longer than 20000 characters"], id="too long"),
        pytest.param(doc(timeline="x" * 50_000), [], id="the timeline may be longer"),
    ],
)
def test_submission_problems(document: PostmortemDocument, problems: list[str]) -> None:
    assert postmortem.submission_problems(document, NOW, PEOPLE) == problems


def test_without_a_directory_owners_are_not_checked() -> None:
    assert postmortem.submission_problems(doc(action_items=[ai(owner="mallory")]), NOW) == []


def incident() -> IncidentState:
    at = datetime(2026, 3, 28, 2, 41, tzinfo=UTC)
    return IncidentState(
        number=42, title="DNS changes publish slowly", summary="Zone updates queue up.", severity=Severity.SEV2,
        max_severity=Severity.SEV1, components=["dns"], declared_at=at, detected_at=at,
        impact_started_at=at - timedelta(minutes=4), resolved_at=at + timedelta(minutes=40),
        resolution_summary="Rolled back the publisher.", status_plan=StatusPlan(first_deadline=at),
        timeline=[TimelineEntry(seq=1, at=at, kind="declared", text="Declared SEV-2 by alice"),
                  TimelineEntry(seq=2, at=at + timedelta(minutes=40), kind="resolved", text="Resolved by alice")],
        status_updates=[StatusUpdate(seq=1, at=at + timedelta(minutes=40), kind=StatusKind.RESOLUTION, author="alice",
                                     message="Resolved: DNS. Impact: changes delayed.")],
    )


def test_prefill_takes_summary_impact_and_the_full_timeline_and_leaves_the_analysis_to_people() -> None:
    d = postmortem.prefill(incident())
    assert "SEV-2 incident #42: DNS changes publish slowly." in d.summary and "Rolled back the publisher." in d.summary
    assert d.timeline.splitlines() == ["2026-03-28 02:41:00 UTC  Declared SEV-2 by alice",
                                       "2026-03-28 03:21:00 UTC  Resolved by alice"]
    assert "Components affected: dns." in d.impact and "(44 min)" in d.impact
    assert "Impact: changes delayed." in d.impact
    assert (d.root_cause, d.what_went_well, d.what_could_improve, d.action_items) == ("", "", "", [])


def test_the_template_prompts_about_systems_not_people() -> None:
    prompts = {f: p.lower() for f, _h, p in postmortem.SECTIONS}
    for field in ("root_cause", "what_could_improve"):
        assert "system" in prompts[field], field
        words = set(re.findall(r"[a-z]+", prompts[field]))
        assert not words & {"who", "whose", "mistake", "fault", "blame"}, field


def test_markdown_export_has_every_section_and_the_action_items_table() -> None:
    text = postmortem.to_markdown(42, "DNS lag", doc(action_items=[ai(title="Split | pipe", priority="high")]),
                                  status="submitted", author="bob", deadline=NOW, submitted_at=NOW)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Summary", "## Timeline", "## Root cause", "## Impact", "## What went well",
                        "## What could improve", "## Action items"]
    assert "| 1 | Split \\| pipe | alice | 2026-04-06 | high |" in text
    assert text.startswith("# Postmortem: #42 DNS lag\n") and "- Author: bob" in text


@pytest.mark.parametrize(
    ("submitted", "now", "expected"),
    [
        (None, NOW - timedelta(hours=3), ("due", timedelta(hours=3))),
        (None, NOW + timedelta(minutes=5), ("overdue", timedelta(minutes=5))),
        (NOW - timedelta(hours=1), NOW + timedelta(days=2), ("submitted", timedelta(hours=1))),
    ],
)
def test_due_state(submitted: datetime | None, now: datetime, expected: tuple[str, timedelta]) -> None:
    assert postmortem.due_state(NOW, submitted, now) == expected


@pytest.mark.parametrize(
    ("ic_or_responders", "author", "expected"),
    [(["alice"], None, ["alice"]), (["alice"], "bob", ["alice", "bob"]), (["alice"], "alice", ["alice"]),
     ([], "bob", ["bob"])],
)
def test_postmortem_reminders_go_to_the_ic_and_the_author(ic_or_responders: list[str], author: str | None,
                                                          expected: list[str]) -> None:
    assert postmortem.reminder_people(ic_or_responders, author) == expected


# --- action item rules ----------------------------------------------------------------------------

DUE = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)
POLICY = fast_policy(action_item_reminders_before=["72h", "24h"])


def tracked(**changes: object) -> items.TrackedItem:
    return items.TrackedItem(index=1, title="x", owner="alice", due=DUE).model_copy(update=changes)


@pytest.mark.parametrize(
    ("item", "now", "reminder", "escalation"),
    [
        (tracked(), DUE - timedelta(hours=73), False, False),
        (tracked(), DUE - timedelta(hours=72), True, False),
        (tracked(reminders_sent=1), DUE - timedelta(hours=30), False, False),
        (tracked(reminders_sent=1), DUE - timedelta(hours=24), True, False),
        (tracked(), DUE - timedelta(hours=1), True, False),  # both missed: one reminder, not two
        (tracked(reminders_sent=2), DUE, False, True),
        (tracked(reminders_sent=2, overdue_notified=True), DUE + timedelta(days=3), False, False),  # once
        (tracked(done_at=DUE - timedelta(days=1)), DUE + timedelta(days=1), False, False),
    ],
)
def test_action_item_reminder_and_escalation(item: items.TrackedItem, now: datetime, reminder: bool,
                                             escalation: bool) -> None:
    assert items.reminder_due(item, POLICY, now) is reminder
    assert items.escalation_due(item, now) is escalation


def test_next_wakeup_is_the_earliest_pending_instant_of_any_open_item() -> None:
    later = tracked(index=2, due=DUE + timedelta(days=10))
    assert items.next_wakeup([tracked(), later], POLICY) == DUE - timedelta(hours=72)
    assert items.next_wakeup([tracked(reminders_sent=2), later], POLICY) == DUE
    assert items.next_wakeup([tracked(reminders_sent=2, overdue_notified=True), later], POLICY) == \
        later.due - timedelta(hours=72)
    assert items.next_wakeup([tracked(done_at=DUE)], POLICY) is None


NAMES = {"alice": "Alice Ng", "bob": "Bob Ruiz"}


@pytest.mark.parametrize(
    ("changes", "hints"),
    [
        pytest.param({}, [], id="systems only"),
        pytest.param({"root_cause": "Bob pushed a config that halved the pool."},
                     ["root cause names bob: describe what the system let happen and why it made sense at the time, "
                      "rather than who did it"], id="a person id"),
        pytest.param({"what_could_improve": "Alice Ng should have checked the dashboard."},
                     ["what could improve names alice: describe what the system let happen and why it made sense at "
                      "the time, rather than who did it"], id="a display name"),
        pytest.param({"summary": "alice and bob restored service."}, [], id="the summary may name people"),
        pytest.param({"root_cause": "The alicerc file was ignored by the bobcat scheduler."}, [],
                     id="a name inside a word is not a name"),
    ],
)
def test_blame_hints_never_refuse_but_point_at_names_in_the_analysis(changes: dict[str, str],
                                                                     hints: list[str]) -> None:
    assert postmortem.blame_hints(doc(**changes), NAMES) == hints


def test_a_long_incidents_draft_fits_the_timeline_limit_keeping_its_opening_and_end() -> None:
    at = datetime(2026, 3, 28, 2, 41, tzinfo=UTC)
    entries = [TimelineEntry(seq=i, at=at + timedelta(seconds=i), kind="page", text=f"entry {i} " + "x" * 80)
               for i in range(2_000)]
    state = incident().model_copy(update={"timeline": entries})
    d = postmortem.prefill(state)
    assert len(d.timeline) <= postmortem.MAX_TIMELINE
    assert not [p for p in postmortem.submission_problems(d, NOW) if "timeline" in p]
    lines = d.timeline.splitlines()
    assert "entry 0 " in lines[0] and "entry 1999 " in lines[-1]
    gaps = [line for line in lines if "left out" in line]
    assert len(gaps) == 1 and f"{2_000 - (len(lines) - 1)} timeline lines left out" in gaps[0]


def test_a_timeline_within_the_limit_is_kept_whole() -> None:
    at = datetime(2026, 3, 28, 2, 41, tzinfo=UTC)
    entries = [TimelineEntry(seq=i, at=at, kind="page", text=f"entry {i}") for i in range(100)]
    assert len(postmortem.timeline_text(entries).splitlines()) == 100

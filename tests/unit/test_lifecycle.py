"""The lifecycle rules as plain functions, table-style, with explicit instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.policies import example_policy
from warroom.models import lifecycle
from warroom.models import messages
from warroom.models.incident import (
    ActionItem,
    PostmortemDocument,
    PublicPhase,
    Role,
    current_phase,
    entered_monitoring_at,
    phases_in_force,
)
from warroom.models.severity import Severity

T0 = datetime(2026, 11, 30, 2, 45, tzinfo=UTC)
"""The instant most tables count from (an incident declared at 02:45 UTC)."""


def at(minutes: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, hours=hours)


def mins(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- escalation plan ---------------------------------------------------------------


def test_escalation_plan_runs_every_level_then_repeats_them_in_order() -> None:
    plan = lifecycle.escalation_plan(example_policy())
    assert [(s.index, s.level, s.round, s.people, s.ack_timeout) for s in plan] == [
        (0, 0, 0, ("alice",), mins(10)),
        (1, 1, 0, ("bob",), mins(10)),
        (2, 0, 1, ("alice",), mins(10)),
        (3, 1, 1, ("bob",), mins(10)),
    ]


def test_escalation_plan_uses_a_levels_own_ack_timeout() -> None:
    policy = example_policy(
        escalation={
            "levels": [{"notify": ["alice", "bob"], "ack_timeout": "3m"}, {"notify": ["erin"]}],
            "repeat": 0,
        }
    )
    plan = lifecycle.escalation_plan(policy)
    assert [(s.people, s.ack_timeout) for s in plan] == [(("alice", "bob"), mins(3)), (("erin",), mins(10))]


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (-1, (0, 0, 0)),  # before the first page: level 1
        (0, (1, 1, 0)),  # level 1 unanswered: level 2
        (1, (2, 0, 1)),  # every level unanswered: the repeat starts again at level 1
        (2, (3, 1, 1)),
        (3, None),  # repeat used up: nothing left (the fallback is told)
        (7, None),
    ],
)
def test_next_step(current: int, expected: tuple[int, int, int] | None) -> None:
    plan = lifecycle.escalation_plan(example_policy())
    step = lifecycle.next_step(plan, current)
    assert (None if step is None else (step.index, step.level, step.round)) == expected


people_st = st.sampled_from(["alice", "bob", "erin"])
levels_st = st.lists(st.fixed_dictionaries({"notify": st.lists(people_st, min_size=1, max_size=3)}), min_size=1, max_size=5)


@given(levels=levels_st, repeat=st.integers(min_value=0, max_value=10))
def test_plan_length_is_levels_times_rounds_and_walks_the_levels_in_order(levels: list, repeat: int) -> None:
    plan = lifecycle.escalation_plan(example_policy(escalation={"levels": levels, "repeat": repeat}))
    assert len(plan) == len(levels) * (repeat + 1)
    assert [s.index for s in plan] == list(range(len(plan)))
    for s in plan:
        assert s.level == s.index % len(levels)
        assert s.round == s.index // len(levels)
        assert list(s.people) == levels[s.level]["notify"]
    # next_step walks the plan one step at a time and stops at its end
    walked, cur = [], -1
    while (step := lifecycle.next_step(plan, cur)) is not None:
        walked.append(step.index)
        cur = step.index
    assert walked == list(range(len(plan)))


@pytest.mark.parametrize(
    ("severity", "pages"),
    [(Severity.SEV1, True), (Severity.SEV2, True), (Severity.SEV3, True), (Severity.SEV4, False)],
)
def test_pages_for_default_policy(severity: Severity, pages: bool) -> None:
    assert lifecycle.pages_for(example_policy(), severity) is pages


# --- status cadence ------------------------------------------------------------------


def test_first_status_deadline_is_declaration_plus_policy() -> None:
    assert lifecycle.first_status_deadline(T0, example_policy()) == at(5)


@pytest.mark.parametrize(
    ("deadline", "window", "lead", "expected"),
    [
        (at(5), mins(5), mins(2), at(3)),  # lead fits in the window
        (at(15), mins(15), mins(2), at(13)),
        (at(2), mins(2), mins(2), at(1)),  # lead longer than half the window: half-way
        (at(1), mins(1), mins(10), at(0.5)),
        (at(30), mins(30), mins(0), at(30)),  # no lead: at the deadline
    ],
)
def test_reminder_at(deadline: datetime, window: timedelta, lead: timedelta, expected: datetime) -> None:
    assert lifecycle.reminder_at(deadline, window, lead) == expected


@given(window_s=st.integers(min_value=1, max_value=3 * 86400), lead_s=st.integers(min_value=0, max_value=3 * 86400))
def test_reminder_falls_in_the_second_half_of_its_window(window_s: int, lead_s: int) -> None:
    window, lead = timedelta(seconds=window_s), timedelta(seconds=lead_s)
    deadline = T0 + window
    reminder = lifecycle.reminder_at(deadline, window, lead)
    assert T0 + window / 2 <= reminder <= deadline
    assert deadline - reminder <= lead


@pytest.mark.parametrize(
    ("severity", "last", "now", "expected"),
    [
        (Severity.SEV1, at(0), at(1), at(15)),
        (Severity.SEV2, at(0), at(1), at(30)),
        (Severity.SEV1, at(0), at(14.9), at(15)),  # still ahead: unchanged
        (Severity.SEV1, at(0), at(15), at(17)),  # due exactly now: a short grace (reminder_lead)
        (Severity.SEV3, at(0), at(1), None),  # no cadence below SEV-2
        (Severity.SEV4, at(0), at(1), None),
    ],
)
def test_next_update_due(severity: Severity, last: datetime, now: datetime, expected: datetime | None) -> None:
    assert lifecycle.next_update_due(last, example_policy(), severity, now) == expected


@pytest.mark.parametrize(
    ("new_severity", "now", "expected", "why"),
    [
        (Severity.SEV1, at(10), at(15), "raised before the shorter cadence ran out: due sooner"),
        (Severity.SEV1, at(20), at(22), "raised after it ran out: due now plus the reminder lead"),
        (Severity.SEV2, at(10), at(30), "lowered: due later"),
        (Severity.SEV3, at(10), None, "lowered below the cadence: nothing due"),
    ],
)
def test_next_update_due_replans_after_a_severity_change(
    new_severity: Severity, now: datetime, expected: datetime | None, why: str
) -> None:
    # the last public update went out at T0; the severity changes at ``now``
    assert lifecycle.next_update_due(at(0), example_policy(), new_severity, now) == expected, why


def test_replan_grace_is_capped_at_half_the_interval() -> None:
    policy = example_policy(update_every={"SEV-1": "2m"}, reminder_lead="5m")
    assert lifecycle.next_update_due(at(0), policy, Severity.SEV1, at(10)) == at(11)


@given(
    last_offset=st.integers(min_value=0, max_value=7200),
    now_offset=st.integers(min_value=0, max_value=7200),
    severity=st.sampled_from([Severity.SEV1, Severity.SEV2]),
)
def test_next_update_is_never_due_in_the_past(last_offset: int, now_offset: int, severity: Severity) -> None:
    last = T0 + timedelta(seconds=last_offset)
    now = max(last, T0 + timedelta(seconds=now_offset))
    due = lifecycle.next_update_due(last, example_policy(), severity, now)
    assert due is not None and now < due <= max(last + lifecycle.update_interval(example_policy(), severity), now + mins(2))


IC, TL, CL, SCRIBE = Role.INCIDENT_COMMANDER, Role.TECHNICAL_LEAD, Role.COMMUNICATIONS_LEAD, Role.SCRIBE


@pytest.mark.parametrize(
    ("roles", "acked_by", "paged", "expected"),
    [
        ({CL: "carol", IC: "dave"}, "alice", ["bob"], ["carol"]),  # the communications lead first
        ({IC: "dave"}, "alice", ["bob"], ["dave"]),  # then the IC
        ({TL: "tom", SCRIBE: "sam"}, "alice", ["bob"], ["alice"]),  # other roles do not count
        ({}, None, ["alice", "bob", "alice"], ["alice", "bob"]),  # nobody: the people paged, once each
        ({}, None, [], []),
    ],
)
def test_status_reminder_recipients(roles: dict, acked_by: str | None, paged: list[str], expected: list[str]) -> None:
    assert lifecycle.status_reminder_recipients(roles, acked_by, paged) == expected


@pytest.mark.parametrize(
    ("roles", "acked_by", "lead", "paged", "expected"),
    [
        ({IC: "dave", CL: "carol"}, "alice", "erin", ["bob"], ["dave"]),  # overdue goes to the IC
        ({CL: "carol"}, "alice", "erin", ["bob"], ["erin"]),  # no IC: the engineering lead
        ({CL: "carol"}, "alice", None, ["bob"], ["carol"]),  # neither: whoever would be reminded
        ({}, None, None, ["bob"], ["bob"]),
    ],
)
def test_overdue_update_recipients(
    roles: dict, acked_by: str | None, lead: str | None, paged: list[str], expected: list[str]
) -> None:
    assert lifecycle.overdue_update_recipients(roles, acked_by, lead, paged) == expected


@pytest.mark.parametrize(
    ("severity", "roles", "expected"),
    [
        (Severity.SEV1, {}, True),
        (Severity.SEV2, {CL: "carol"}, True),
        (Severity.SEV1, {IC: "dave"}, False),
        (Severity.SEV3, {}, False),
    ],
)
def test_needs_commander(severity: Severity, roles: dict, expected: bool) -> None:
    assert lifecycle.needs_commander(example_policy(), severity, roles) is expected


# --- postmortem ------------------------------------------------------------------------

RESOLVED = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)
"""Instants are UTC, as ``workflow.now()`` gives them."""


@pytest.mark.parametrize(
    ("worst", "required"),
    [(Severity.SEV1, True), (Severity.SEV2, True), (Severity.SEV3, False), (Severity.SEV4, False)],
)
def test_postmortem_required_by_worst_severity(worst: Severity, required: bool) -> None:
    assert lifecycle.postmortem_required(example_policy(), worst) is required


def test_postmortem_deadline_is_48_hours_after_resolution() -> None:
    assert lifecycle.postmortem_deadline(RESOLVED, example_policy()) == datetime(2026, 3, 30, 22, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("before", "expected"),
    [
        (["24h", "4h"], [datetime(2026, 3, 29, 22, 30, tzinfo=UTC), datetime(2026, 3, 30, 18, 30, tzinfo=UTC)]),
        (["4h", "24h"], [datetime(2026, 3, 29, 22, 30, tzinfo=UTC), datetime(2026, 3, 30, 18, 30, tzinfo=UTC)]),
        (["4h", "4h"], [datetime(2026, 3, 30, 18, 30, tzinfo=UTC)]),  # duplicates collapse
        (["72h", "48h", "1h"], [datetime(2026, 3, 30, 21, 30, tzinfo=UTC)]),  # none at or before resolution
        ([], []),
    ],
)
def test_postmortem_reminder_times(before: list[str], expected: list[datetime]) -> None:
    policy = example_policy(postmortem_reminders_before=before)
    assert lifecycle.postmortem_reminder_times(RESOLVED, policy) == expected


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (0, datetime(2026, 3, 30, 22, 30, tzinfo=UTC)),  # the first notice at the deadline
        (1, datetime(2026, 3, 31, 22, 30, tzinfo=UTC)),  # then every postmortem_overdue_repeat (24h)
        (2, datetime(2026, 4, 1, 22, 30, tzinfo=UTC)),
    ],
)
def test_postmortem_overdue_times(count: int, expected: datetime) -> None:
    assert lifecycle.postmortem_overdue_times(RESOLVED, example_policy(), count) == expected


NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
DUE = datetime(2026, 12, 16, tzinfo=UTC)


def complete_document(**changes: object) -> PostmortemDocument:
    doc = PostmortemDocument(
        summary="DNS publishing lagged by up to 14 minutes.",
        timeline="02:41 lag starts; 02:45 paged; 03:10 rollback; 03:25 drained.",
        root_cause="A schema change made the publisher scan every zone.",
        impact="DNS changes were delayed for 44 minutes.",
        what_went_well="The page reached the on-call engineer at once.",
        what_could_improve="The lag alert fired 4 minutes after the impact began.",
        action_items=[ActionItem(title="Index the zone table", owner="alice", due=DUE)],
    )
    return doc.model_copy(update=changes)


def test_a_complete_postmortem_has_no_problems() -> None:
    assert lifecycle.postmortem_problems(complete_document(), now=NOW) == []


@pytest.mark.parametrize(
    ("field", "problem"),
    [
        ("summary", "summary is empty"),
        ("timeline", "timeline is empty"),
        ("root_cause", "root cause is empty"),
        ("impact", "impact is empty"),
        ("what_went_well", "what went well is empty"),
        ("what_could_improve", "what could improve is empty"),
    ],
)
@pytest.mark.parametrize("blank", ["", "  \n\t"])
def test_each_missing_section_is_named(field: str, problem: str, blank: str) -> None:
    assert lifecycle.postmortem_problems(complete_document(**{field: blank}), now=NOW) == [problem]


def item(title: str = "Index the zone table", owner: str = "alice", due: datetime = DUE) -> ActionItem:
    return ActionItem.model_construct(title=title, owner=owner, due=due)


@pytest.mark.parametrize(
    ("items", "now", "problems"),
    [
        ([], NOW, ["there are no action items (each needs an owner and a due date)"]),
        ([item(owner=" ")], NOW, ["action item 1 has no owner"]),
        ([item(), item(title=" ")], NOW, ["action item 2 has no description"]),
        ([item(), item(due=NOW - timedelta(days=1))], NOW, ["action item 2 is due in the past"]),
        ([item(due=NOW)], NOW, ["action item 1 is due in the past"]),
        ([item(due=NOW - timedelta(days=1))], None, []),  # no instant given: dates are not judged
    ],
)
def test_action_item_problems(items: list[ActionItem], now: datetime | None, problems: list[str]) -> None:
    assert lifecycle.postmortem_problems(complete_document(action_items=items), now=now) == problems


def test_every_problem_is_listed_at_once() -> None:
    doc = PostmortemDocument(summary="Only a summary")
    assert lifecycle.postmortem_problems(doc, now=NOW) == [
        "timeline is empty",
        "root cause is empty",
        "impact is empty",
        "what went well is empty",
        "what could improve is empty",
        "there are no action items (each needs an owner and a due date)",
    ]


# --- metrics ---------------------------------------------------------------------------


def test_durations_from_instants() -> None:
    got = lifecycle.durations_from_instants(at(-4), at(0), at(3), at(40))
    assert got == {"time_to_detect": mins(4), "time_to_acknowledge": mins(3), "time_to_resolve": mins(40)}
    assert lifecycle.durations_from_instants(None, at(0), None, None) == {
        "time_to_detect": None,
        "time_to_acknowledge": None,
        "time_to_resolve": None,
    }


# --- the public phase of an incident ------------------------------------------------------

I, ID, M = PublicPhase.INVESTIGATING, PublicPhase.IDENTIFIED, PublicPhase.MONITORING


@pytest.mark.parametrize(
    ("set_by_updates", "shown"),
    [
        ([], []),
        ([None, None], [I, I]),  # investigating until an update says otherwise
        ([None, "identified", None, "monitoring", None], [I, ID, ID, M, M]),  # None keeps the phase in force
        (["monitoring"], [M]),  # a phase may be skipped
        ([ID, M, I, None, M], [ID, M, I, I, M]),  # and moved back when the fix did not hold
    ],
)
def test_each_update_shows_its_own_phase_or_the_one_in_force(
    set_by_updates: list[PublicPhase | str | None], shown: list[PublicPhase]
) -> None:
    assert phases_in_force(set_by_updates) == shown
    assert current_phase(set_by_updates) == (shown[-1] if shown else I)


@pytest.mark.parametrize(
    ("updates", "entered"),
    [
        ([], None),
        ([(0, None), (5, ID)], None),
        ([(0, ID), (5, M), (9, None), (12, M)], 5),  # staying in monitoring does not move it
        ([(0, M), (5, I), (9, M)], 9),  # the latest time it went into monitoring
        ([(0, M), (5, I)], 0),  # kept after moving back, as Statuspage keeps monitoring_at
    ],
)
def test_entered_monitoring_at(updates: list[tuple[int, PublicPhase | None]], entered: int | None) -> None:
    assert entered_monitoring_at((at(m), p) for m, p in updates) == (at(entered) if entered is not None else None)


@pytest.mark.parametrize(
    ("before", "after", "text"),
    [
        (I, I, "Public update by erin (investigating): We are looking."),
        (I, ID, "Public update by erin (identified): We are looking."),
        (ID, M, "Public update by erin (monitoring): We are looking."),
        (M, I, "Public update by erin (back to investigating): We are looking."),
        (M, ID, "Public update by erin (back to identified): We are looking."),
    ],
)
def test_the_timeline_names_the_phase_and_a_move_back(before: PublicPhase, after: PublicPhase, text: str) -> None:
    assert messages.status_posted("erin", "We are looking.", before, after) == text

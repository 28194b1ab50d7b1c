"""The console's pure rules, table-style with explicit instants: which deadlines an incident
shows, how the time left reads, and which incident comes first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.policies import example_policy
from warroom.models.console import countdowns, stored_deadlines, time_left, urgency
from warroom.models.incident import (
    Deadline,
    EscalationState,
    IncidentState,
    IncidentStatus,
    PostmortemState,
    Role,
    StatusPlan,
)
from warroom.models.severity import Severity

T0 = datetime(2026, 12, 3, 2, 41, tzinfo=UTC)
POLICY = example_policy(roles_required_for=["SEV-1", "SEV-2"])


def state(**changes: object) -> IncidentState:
    base = IncidentState(
        number=7, title="Control panel 502", severity=Severity.SEV2, max_severity=Severity.SEV2,
        declared_at=T0, status_plan=StatusPlan(first_deadline=T0 + timedelta(minutes=5)),
    )
    return base.model_copy(update=changes)


def names(deadlines: list[Deadline]) -> list[tuple[str, datetime]]:
    return [(d.name, d.at) for d in deadlines]


@pytest.mark.parametrize(("changes", "expected"), [
    pytest.param(
        {"escalation": EscalationState(step=0, deadline=T0 + timedelta(minutes=10)), "ic_reminder_at": T0 + timedelta(minutes=5)},
        [("first_status_update", T0 + timedelta(minutes=5)), ("assign_incident_commander", T0 + timedelta(minutes=5)),
         ("acknowledge", T0 + timedelta(minutes=10))],
        id="triggered: ack, first status, commander; earliest first",
    ),
    pytest.param(
        {"status": IncidentStatus.ACKNOWLEDGED, "escalation": EscalationState(step=0, deadline=T0 + timedelta(minutes=10)),
         "status_plan": StatusPlan(first_deadline=T0 + timedelta(minutes=5), first_posted_at=T0 + timedelta(minutes=3),
                                   next_due=T0 + timedelta(minutes=33)),
         "roles": {Role.INCIDENT_COMMANDER: "bob"}, "ic_reminder_at": T0 + timedelta(minutes=5)},
        [("next_status_update", T0 + timedelta(minutes=33))],
        id="acknowledged with an IC: no ack deadline, no commander reminder, the next update",
    ),
    pytest.param(
        {"severity": Severity.SEV3, "status": IncidentStatus.ACKNOWLEDGED,
         "status_plan": StatusPlan(first_deadline=T0 + timedelta(minutes=5), first_posted_at=T0 + timedelta(minutes=3),
                                   next_due=T0 + timedelta(minutes=33)),
         "ic_reminder_at": T0 + timedelta(minutes=5)},
        [],
        id="SEV-3 has no update cadence and needs no commander",
    ),
    pytest.param(
        {"status": IncidentStatus.RESOLVED, "escalation": EscalationState(step=0, deadline=T0 + timedelta(minutes=10)),
         "postmortem": PostmortemState(required=True, deadline=T0 + timedelta(hours=48))},
        [("postmortem", T0 + timedelta(hours=48))],
        id="resolved: only the postmortem",
    ),
    pytest.param(
        {"status": IncidentStatus.RESOLVED,
         "postmortem": PostmortemState(required=True, deadline=T0 + timedelta(hours=48), submitted_at=T0 + timedelta(hours=3))},
        [],
        id="resolved with the postmortem in: nothing",
    ),
    pytest.param({"status": IncidentStatus.CLOSED}, [], id="closed: nothing"),
])
def test_stored_deadlines(changes: dict[str, object], expected: list[tuple[str, datetime]]) -> None:
    assert names(stored_deadlines(state(**changes), POLICY)) == expected


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0 s left"),
    (59.9, "59 s left"),
    (60, "1 min left"),
    (125, "2 min 5 s left"),
    (600, "10 min left"),
    (659, "10 min left"),
    (3600, "1 h left"),
    (3600 + 59, "1 h left"),
    (5400, "1 h 30 min left"),
    (48 * 3600, "2 d left"),
    (49 * 3600 + 120, "2 d 1 h left"),
    (-1, "overdue by 1 s"),
    (-185, "overdue by 3 min 5 s"),
    (-7200, "overdue by 2 h"),
])
def test_time_left_reads_like_a_person_would_say_it(seconds: float, text: str) -> None:
    assert time_left(seconds) == text


def test_countdowns_say_how_long_is_left_and_what_is_overdue() -> None:
    now = T0 + timedelta(minutes=7)
    due = countdowns([Deadline(name="acknowledge", at=T0 + timedelta(minutes=10)),
                      Deadline(name="first_status_update", at=T0 + timedelta(minutes=5))], now)
    assert [(c.name, c.seconds, c.overdue, c.text) for c in due] == [
        ("first_status_update", -120.0, True, "overdue by 2 min"),
        ("acknowledge", 180.0, False, "3 min left"),
    ]
    assert due[0].label == "first public status update"


def test_the_most_urgent_incident_comes_first() -> None:
    now = T0 + timedelta(minutes=30)

    def key(severity: Severity, declared: datetime, *due: datetime) -> tuple[int, float, int, float]:
        return urgency(countdowns([Deadline(name="acknowledge", at=d) for d in due], now), severity.rank, declared)

    incidents = {
        "quiet SEV-1 without deadlines": key(Severity.SEV1, T0),
        "SEV-4 overdue by 10 min": key(Severity.SEV4, T0, now - timedelta(minutes=10)),
        "SEV-1 due in 5 min": key(Severity.SEV1, T0, now + timedelta(minutes=5)),
        "SEV-3 due in 5 min, older": key(Severity.SEV3, T0 - timedelta(hours=1), now + timedelta(minutes=5)),
        "SEV-2 overdue by 1 min": key(Severity.SEV2, T0, now - timedelta(minutes=1), now + timedelta(hours=1)),
        "SEV-3 without deadlines": key(Severity.SEV3, T0 - timedelta(hours=2)),
    }
    assert sorted(incidents, key=incidents.__getitem__) == [
        "SEV-4 overdue by 10 min",
        "SEV-2 overdue by 1 min",
        "SEV-1 due in 5 min",
        "SEV-3 due in 5 min, older",
        "quiet SEV-1 without deadlines",
        "SEV-3 without deadlines",
    ]

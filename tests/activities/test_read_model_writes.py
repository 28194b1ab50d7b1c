"""The read-model writes of incidents, runbook runs and action items, called the way
Temporal calls them when an activity is retried or a slow attempt lands after a newer
one: the same input twice, an older version after a newer one. Each table row is a
sequence of writes and what the read model must hold afterwards, on SQLite and (with
WARROOM_TEST_PG_URL) PostgreSQL.

What the other idempotent writes already have tests for: a notification's claim
(tests/paging/test_send_activity.py: one send per key, a send that died mid-way never
repeated), a runbook step's claim (tests/activities/test_runbook_steps.py), a postmortem
draft's revision check (tests/api/test_postmortems.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.conftest import RecordingChannel
from warroom.activities.action_items import ActionItemActivities
from warroom.activities.incident import IncidentActivities
from warroom.activities.notify import NotifierRegistry
from warroom.activities.runbook import RunbookActivities
from warroom.models.action_items import ActionItemsPersist, ActionItemsState, TrackedItem
from warroom.models.components import ComponentImpact, ComponentState
from warroom.models.incident import (
    IncidentState,
    IncidentStatus,
    PersistInput,
    PostmortemState,
    PublicPhase,
    StatusKind,
    StatusPlan,
    StatusUpdate,
    TimelineEntry,
)
from warroom.models.runbook import PersistRunInput, RunbookRunState, RunStatus, StepState, StepStatus
from warroom.models.severity import Severity
from warroom.models.tables import (
    ActionItemRow,
    AlertGroup,
    ComponentImpactRow,
    IncidentRow,
    RunbookRunRow,
    RunbookStepRow,
    StatusUpdateRow,
    TimelineRow,
)
from warroom.runbooks.steps import RunbookConfig

T0 = datetime(2026, 11, 30, 2, 41, 7, tzinfo=UTC)
N = 4242


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the incident: versions as the workflow would send them -----------------------------------

TIMELINE = [
    TimelineEntry(seq=1, at=at(0), kind="declared", text="Declared SEV-2 by api"),
    TimelineEntry(seq=2, at=at(1), kind="page", text="Paged level 1: alice; acknowledge within 600 s"),
    TimelineEntry(seq=3, at=at(60), kind="ack", text="Acknowledged by alice", actor="alice"),
    TimelineEntry(seq=4, at=at(120), kind="severity", text="Severity SEV-2 -> SEV-1 by alice", actor="alice"),
    TimelineEntry(seq=5, at=at(900), kind="resolved", text="Resolved by alice: rolled back", actor="alice"),
    TimelineEntry(seq=6, at=at(4000), kind="postmortem", text="Postmortem submitted by bob", actor="bob"),
]
UPDATES = [
    StatusUpdate(seq=1, at=at(90), author="alice", message="We are looking into slow DNS changes."),
    StatusUpdate(seq=2, at=at(600), author="alice", message="A rollback is under way.", phase=PublicPhase.IDENTIFIED),
    StatusUpdate(seq=3, at=at(900), kind=StatusKind.RESOLUTION, author="alice", message="Resolved."),
]
DNS_DEGRADED = ComponentImpact(component="dns", state=ComponentState.DEGRADED_PERFORMANCE, since=at(0))
DNS_DEGRADED_UNTIL_SEV1 = DNS_DEGRADED.model_copy(update={"until": at(120)})
DNS_OUTAGE = ComponentImpact(component="dns", state=ComponentState.MAJOR_OUTAGE, since=at(120))
DNS_OUTAGE_ENDED = DNS_OUTAGE.model_copy(update={"until": at(900)})
MAIL_BY_HAND = ComponentImpact(component="mail", state=ComponentState.PARTIAL_OUTAGE, since=at(300), set_by="bob")

# What each version of incident N looked like: (status, severity, timeline entries and
# status updates it knows, component impacts). The flusher sends only the entries new since
# its last write, but a retried or late attempt carries those of its own version.
VERSIONS: dict[int, tuple[IncidentStatus, Severity, int, int, list[ComponentImpact]]] = {
    1: (IncidentStatus.TRIGGERED, Severity.SEV2, 2, 0, [DNS_DEGRADED]),
    2: (IncidentStatus.ACKNOWLEDGED, Severity.SEV2, 3, 1, [DNS_DEGRADED]),
    3: (IncidentStatus.ACKNOWLEDGED, Severity.SEV1, 4, 2, [DNS_DEGRADED_UNTIL_SEV1, DNS_OUTAGE, MAIL_BY_HAND]),
    4: (IncidentStatus.RESOLVED, Severity.SEV1, 5, 3, [DNS_DEGRADED_UNTIL_SEV1, DNS_OUTAGE_ENDED]),
    5: (IncidentStatus.CLOSED, Severity.SEV1, 6, 3, []),
}


def version(v: int, *, release_group: bool | None = None, since: tuple[int, int] = (0, 0)) -> PersistInput:
    """Version ``v`` of incident N, carrying the timeline entries and status updates after
    the seqs in ``since`` (the last of each that the flusher wrote before)."""
    status, severity, entries, updates, impacts = VERSIONS[v]
    resolved = status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)
    state = IncidentState(
        number=N,
        title="DNS changes publish slowly",
        severity=severity,
        max_severity=Severity.SEV1 if v >= 3 else Severity.SEV2,
        status=status,
        components=["dns"],
        declared_at=at(0),
        acknowledged_at=at(60) if v >= 2 else None,
        acknowledged_by="alice" if v >= 2 else None,
        resolved_at=at(900) if resolved else None,
        postmortem=PostmortemState(
            required=resolved, deadline=at(900 + 48 * 3600) if resolved else None,
            submitted_at=at(4000) if v >= 5 else None, submitted_by="bob" if v >= 5 else None,
        ),
        status_plan=StatusPlan(first_deadline=at(300)),
        component_impacts=impacts,
        version=v,
    )
    return PersistInput(
        state=state,
        timeline=[e for e in TIMELINE[:entries] if e.seq > since[0]],
        status_updates=[u for u in UPDATES[:updates] if u.seq > since[1]],
        release_group=resolved if release_group is None else release_group,
    )


@dataclass(frozen=True)
class Expected:
    version: int
    """The version the incident row holds; its columns and state must be exactly that version's."""
    timeline: int
    updates: int
    impacts: list[ComponentImpact] = field(default_factory=list)


CASES: list[tuple[str, list[PersistInput], Expected]] = [
    ("the same version twice", [version(1), version(1)], Expected(1, 2, 0, [DNS_DEGRADED])),
    ("each version once, in order", [version(v) for v in (1, 2, 3)],
     Expected(3, 4, 2, VERSIONS[3][4])),
    ("the flusher's increments, each retried", [version(1), version(1), version(2, since=(2, 0)), version(2, since=(2, 0)),
                                                version(3, since=(3, 1)), version(3, since=(3, 1))],
     Expected(3, 4, 2, VERSIONS[3][4])),
    ("an older version after a newer one", [version(3), version(2)], Expected(3, 4, 2, VERSIONS[3][4])),
    ("the first version arriving last", [version(2), version(3), version(1)], Expected(3, 4, 2, VERSIONS[3][4])),
    ("an older version after a newer one without impacts", [version(5), version(3), version(4)],
     Expected(5, 6, 3, [])),
    ("impacts replaced by the next version", [version(3), version(4)],
     Expected(4, 5, 3, [DNS_DEGRADED_UNTIL_SEV1, DNS_OUTAGE_ENDED])),
    ("impacts cleared by the next version", [version(4), version(5)], Expected(5, 6, 3, [])),
]


def incident_acts(engine: Engine) -> IncidentActivities:
    return IncidentActivities(engine, NotifierRegistry(fallback=RecordingChannel()))


def impacts_of(engine: Engine, number: int) -> list[ComponentImpact]:
    with Session(engine) as session:
        rows = session.scalars(
            select(ComponentImpactRow).where(ComponentImpactRow.incident_number == number)
            .order_by(ComponentImpactRow.seq)
        )
        return [
            ComponentImpact(component=r.component, state=ComponentState(r.state), since=_utc(r.started_at),
                            until=_utc(r.ended_at) if r.ended_at else None, set_by=r.set_by)
            for r in rows
        ]


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (in UTC)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@pytest.mark.parametrize(("writes", "expected"), [(w, e) for _, w, e in CASES], ids=[name for name, _, _ in CASES])
def test_persist_incident_writes_each_row_once_and_keeps_the_newest_version(
    engine: Engine, writes: list[PersistInput], expected: Expected
) -> None:
    acts = incident_acts(engine)
    for inp in writes:
        acts.persist_incident(inp)

    want = version(expected.version).state
    with Session(engine) as session:
        rows = list(session.scalars(select(IncidentRow)))
        assert len(rows) == 1
        row = rows[0]
        assert (row.version, row.status, row.severity) == (want.version, want.status.value, want.severity.value)
        assert row.acknowledged_by == want.acknowledged_by
        assert (row.resolved_at is None, row.postmortem_submitted_at is None) == (
            want.resolved_at is None, want.postmortem.submitted_at is None)
        assert IncidentState.model_validate(row.state) == want
        timeline = [(t.seq, t.kind, t.text, t.actor) for t in session.scalars(
            select(TimelineRow).where(TimelineRow.incident_number == N).order_by(TimelineRow.seq))]
        updates = [(u.seq, u.kind, u.message, u.phase) for u in session.scalars(
            select(StatusUpdateRow).where(StatusUpdateRow.incident_number == N).order_by(StatusUpdateRow.seq))]
    assert timeline == [(e.seq, e.kind, e.text, e.actor) for e in TIMELINE[: expected.timeline]]
    assert updates == [(u.seq, u.kind.value, u.message, u.phase and u.phase.value) for u in UPDATES[: expected.updates]]
    assert impacts_of(engine, N) == expected.impacts


def test_impacts_of_one_incident_never_touch_another_s(engine: Engine) -> None:
    acts = incident_acts(engine)
    other = version(3)
    other.state.number = N + 1
    acts.persist_incident(other)
    acts.persist_incident(version(4))
    acts.persist_incident(version(5))
    assert impacts_of(engine, N) == []
    assert impacts_of(engine, N + 1) == VERSIONS[3][4]


def groups(engine: Engine) -> list[tuple[str, int]]:
    with Session(engine) as session:
        return sorted((g.group_hash, g.incident_number) for g in session.scalars(select(AlertGroup)))


@pytest.mark.parametrize(
    ("writes", "left"),
    [
        pytest.param([version(2)], [("g-n", N), ("g-other", N + 1)], id="open: the group stays"),
        pytest.param([version(4)], [("g-other", N + 1)], id="resolved: its group is released"),
        pytest.param([version(4), version(4)], [("g-other", N + 1)], id="the release retried"),
        pytest.param([version(4), version(2), version(3, release_group=False)], [("g-other", N + 1)],
                     id="older open versions after it do not bring it back"),
    ],
)
def test_release_group_deletes_only_this_incident_s_alert_group(
    engine: Engine, writes: list[PersistInput], left: list[tuple[str, int]]
) -> None:
    with Session(engine) as session, session.begin():
        session.add_all([
            AlertGroup(group_hash="g-n", group_key='{}:{alertname="DNSUpdateLag"}', incident_number=N,
                       opened_at=at(0)),
            AlertGroup(group_hash="g-other", group_key='{}:{alertname="MailQueue"}', incident_number=N + 1,
                       opened_at=at(0)),
        ])
    acts = incident_acts(engine)
    for inp in writes:
        acts.persist_incident(inp)
    assert groups(engine) == left


# --- runbook runs ----------------------------------------------------------------------------


def run_version(v: int) -> PersistRunInput:
    """Version 1: step 1 running. 2: step 1 done, step 2 running. 3: the run succeeded."""
    steps = [
        StepState(index=1, name="Roll back", kind="http", destructive=True,
                  status=StepStatus.RUNNING if v == 1 else StepStatus.SUCCEEDED, attempts=1,
                  started_at=at(10), finished_at=at(20) if v >= 2 else None,
                  result="" if v == 1 else "succeeded in 10 s", key="incident-4242/run-1/step-1/attempt-1"),
        StepState(index=2, name="Wait until healthy", kind="wait",
                  status={1: StepStatus.PENDING, 2: StepStatus.RUNNING}.get(v, StepStatus.SUCCEEDED),
                  attempts=0 if v == 1 else 1, started_at=at(20) if v >= 2 else None,
                  finished_at=at(50) if v >= 3 else None),
    ]
    return PersistRunInput(state=RunbookRunState(
        incident_number=N, run=1, runbook_id="deployment-rollback", title="Deployment rollback",
        started_by="alice", started_at=at(10), finished_at=at(50) if v >= 3 else None,
        status=RunStatus.SUCCEEDED if v >= 3 else RunStatus.RUNNING, current_step=None if v >= 3 else v,
        result="succeeded" if v >= 3 else "", steps=steps, version=v,
    ))


@pytest.mark.parametrize(
    ("writes", "newest"),
    [
        pytest.param([1, 1], 1, id="the same version twice"),
        pytest.param([1, 2, 3], 3, id="in order"),
        pytest.param([3, 2], 3, id="an older version after a newer one"),
        pytest.param([2, 3, 1, 3], 3, id="the first arriving last, the last retried"),
    ],
)
def test_persist_run_writes_one_row_per_step_and_keeps_the_newest_version(
    engine: Engine, writes: list[int], newest: int
) -> None:
    acts = RunbookActivities(engine, RunbookConfig())
    for v in writes:
        acts.persist_run(run_version(v))
    want = run_version(newest).state
    with Session(engine) as session:
        runs = list(session.scalars(select(RunbookRunRow)))
        steps = list(session.scalars(select(RunbookStepRow).order_by(RunbookStepRow.step_index)))
    assert [(r.version, r.status, r.current_step, r.result) for r in runs] == [
        (want.version, want.status.value, want.current_step, want.result)]
    assert [(s.step_index, s.status, s.attempts, s.result, s.idempotency_key) for s in steps] == [
        (s.index, s.status.value, s.attempts, s.result, s.key) for s in want.steps]


# --- action items ----------------------------------------------------------------------------


def items_version(v: int) -> ActionItemsPersist:
    """Version 1: both open. 2: item 1 done. 3: item 2 overdue and its lead told."""
    return ActionItemsPersist(state=ActionItemsState(
        number=N, title="DNS changes publish slowly", severity="SEV-1", version=v,
        items=[
            TrackedItem(index=1, title="Index the zone table", owner="bob", due=at(86400),
                        done_at=at(7200) if v >= 2 else None, done_by="bob" if v >= 2 else None),
            TrackedItem(index=2, title="Alert on publish lag", owner="alice", due=at(3 * 86400), priority="high",
                        overdue_notified=v >= 3),
        ],
    ))


@pytest.mark.parametrize(
    ("writes", "newest"),
    [
        pytest.param([1, 1], 1, id="the same version twice"),
        pytest.param([1, 2, 3], 3, id="in order"),
        pytest.param([2, 1], 2, id="an older version does not reopen a done item"),
        pytest.param([3, 1, 2, 3], 3, id="older versions after the newest, then it retried"),
    ],
)
def test_persist_action_items_writes_one_row_per_item_and_keeps_the_newest_version(
    engine: Engine, writes: list[int], newest: int
) -> None:
    acts = ActionItemActivities(engine)
    for v in writes:
        acts.persist_action_items(items_version(v))
    want = items_version(newest).state
    with Session(engine) as session:
        rows = list(session.scalars(select(ActionItemRow).order_by(ActionItemRow.idx)))
    got: list[tuple[Any, ...]] = [(r.idx, r.version, r.done_by, r.done_at is None, r.overdue_notified) for r in rows]
    assert got == [(it.index, want.version, it.done_by, it.done_at is None, it.overdue_notified) for it in want.items]

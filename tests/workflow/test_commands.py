"""Commands the lifecycle refuses, with the reason; alert batches joining an incident."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import eventually, refused, start_incident, state, timeline_rows
from warroom.models.incident import (
    AckInput,
    AlertBatch,
    AlertEvent,
    PostmortemDocument,
    PostmortemInput,
    ResolveInput,
    Role,
    RoleInput,
    SeverityInput,
    StatusUpdateInput,
)
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow

QUIET = fast_policy(ack_timeout="1h", first_status_within="1h", postmortem_within="1h")
RESOLVE = ResolveInput(summary="Rolled back the DNS publisher.", by="bob")


async def test_refused_commands_name_the_reason_and_change_nothing(harness: Harness) -> None:
    handle, n = await start_incident(harness, severity=Severity.SEV2, policy=QUIET)

    assert await refused(
        handle.execute_update(IncidentWorkflow.submit_postmortem, PostmortemInput(document=PostmortemDocument()))
    ) == f"incident #{n} is not resolved yet; the postmortem comes after resolution"
    assert await refused(handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="mallory"))) == (
        "'mallory' is not a responder of this incident"
    )
    assert await refused(
        handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.SCRIBE, person="mallory"))
    ) == "'mallory' is not a known person"
    assert await refused(
        handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV2))
    ) == f"incident #{n} is already SEV-2"
    assert await refused(
        handle.execute_update(IncidentWorkflow.post_status_update, StatusUpdateInput(message="  ", author="bob"))
    ) == "the update is empty"
    assert "resolution summary is required" in await refused(
        handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary=" "))
    )
    before = await state(handle)
    assert before.acknowledged_by is None and before.severity == Severity.SEV2 and not before.roles

    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    assert await refused(handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))) == (
        f"incident #{n} was already acknowledged by alice"
    )
    assert (await state(handle)).acknowledged_by == "alice"

    await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)
    assert await refused(handle.execute_update(IncidentWorkflow.resolve, RESOLVE)) == (
        f"incident #{n} was already resolved by bob"
    )
    assert await refused(handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))) == (
        f"incident #{n} is already resolved; cannot acknowledge it"
    )
    assert await refused(
        handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV1))
    ) == f"incident #{n} is already resolved; cannot change its severity"
    assert await refused(
        handle.execute_update(IncidentWorkflow.post_status_update, StatusUpdateInput(message="More news", author="bob"))
    ) == f"incident #{n} is already resolved; cannot post an update (the resolution notice has been published)"

    after = await state(handle)
    assert after.resolved_by == "bob" and after.acknowledged_by == "alice" and after.severity == Severity.SEV2
    assert [t.kind for t in after.timeline].count("resolved") == 1
    assert len(after.status_updates) == 1


def alert(fingerprint: str, status: str = "firing", instance: str = "ns1.example.net") -> AlertEvent:
    return AlertEvent(
        fingerprint=fingerprint,
        status=status,
        name="DNSUpdateLag",
        summary="DNS record updates are slow",
        labels={"instance": instance, "severity": "major"},
        starts_at=datetime(2026, 11, 30, 2, 41, 7, tzinfo=UTC),
    )


async def test_the_same_alerts_delivered_twice_are_counted_once(harness: Harness) -> None:
    batch = AlertBatch(group_key="{}:{alertname=\"DNSUpdateLag\"}", alerts=[alert("fp-1"), alert("fp-2", instance="ns2")])
    handle, n = await start_incident(harness, policy=QUIET)

    first = await handle.execute_update(IncidentWorkflow.receive_alerts, batch)
    again = await handle.execute_update(IncidentWorkflow.receive_alerts, batch)
    assert (first.accepted, first.new_alerts, first.first_batch) == (True, 2, True)
    assert (again.accepted, again.new_alerts, again.first_batch) == (True, 0, False)

    s = await state(handle)
    assert [(a.fingerprint, a.count, a.status) for a in s.alerts] == [("fp-1", 1, "firing"), ("fp-2", 1, "firing")]
    assert len([t for t in s.timeline if t.kind == "alert"]) == 2

    # the same alert resolving is news; repeated, it is not
    resolved = AlertBatch(group_key=batch.group_key, alerts=[alert("fp-1", status="resolved")])
    assert (await handle.execute_update(IncidentWorkflow.receive_alerts, resolved)).new_alerts == 1
    assert (await handle.execute_update(IncidentWorkflow.receive_alerts, resolved)).new_alerts == 0
    s = await state(handle)
    assert [(a.fingerprint, a.count, a.status) for a in s.alerts] == [("fp-1", 2, "resolved"), ("fp-2", 1, "firing")]
    assert s.status.value == "triggered"  # a resolved alert does not resolve the incident

    entries = await eventually(
        lambda: (rows := [t for t in timeline_rows(harness, n) if t.kind == "alert"]) and len(rows) == 3 and rows,
        what="three alert entries in the read model",
    )
    assert "ns1.example.net" in entries[0].text

    await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)
    late = await handle.execute_update(IncidentWorkflow.receive_alerts, AlertBatch(group_key="g", alerts=[alert("fp-9")]))
    assert not late.accepted  # the caller must open a new incident


async def test_a_storm_of_distinct_alerts_keeps_the_incident_small_and_alive(harness: Harness) -> None:
    """Past MAX_ALERT_RECORDS distinct alerts the rest are counted in one record and past
    MAX_ALERT_LINES the timeline stops listing them: the state (in every persist and
    continue-as-new payload) stays bounded, and the incident still takes commands."""
    from warroom.workflows.incident import MAX_ALERT_LINES, MAX_ALERT_RECORDS, OVERFLOW_ALERTS

    handle, n = await start_incident(harness, policy=QUIET)
    total = MAX_ALERT_RECORDS + 150
    for start in range(0, total, 50):
        batch = AlertBatch(group_key="g", alerts=[alert(f"fp-{i}", instance=f"host-{i}") for i in range(start, start + 50)])
        assert (await handle.execute_update(IncidentWorkflow.receive_alerts, batch)).new_alerts == 50

    s = await state(handle)
    assert len(s.alerts) == MAX_ALERT_RECORDS + 1
    listed, overflow = s.alerts[:-1], s.alerts[-1]
    assert [a.fingerprint for a in listed] == [f"fp-{i}" for i in range(MAX_ALERT_RECORDS)]
    assert (overflow.fingerprint, overflow.count, overflow.received) == (OVERFLOW_ALERTS, 150, 150)
    lines = [t.text for t in s.timeline if t.kind == "alert"]
    assert len(lines) == MAX_ALERT_LINES + 1 and "counted" in lines[-1]
    # A redelivery of a listed alert is still counted once; the incident still answers.
    again = AlertBatch(group_key="g", alerts=[alert("fp-3", instance="host-3")])
    assert (await handle.execute_update(IncidentWorkflow.receive_alerts, again)).new_alerts == 0
    assert len(s.model_dump_json()) < 400_000
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    assert (await state(handle)).acknowledged_by == "alice"

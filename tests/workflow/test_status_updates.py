"""Public status updates: the first one, the cadence by severity, re-plans, reminders, and
the public phase (investigating, identified, monitoring) each one puts the incident in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import (
    deadline_names,
    eventually,
    sent,
    slots,
    start_incident,
    state,
    status_rows,
    stays,
)
from warroom.models.incident import (
    AckInput,
    PublicPhase,
    ResolveInput,
    Role,
    RoleInput,
    SeverityInput,
    StatusKind,
    StatusUpdateInput,
)
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow

QUIET = {"ack_timeout": "1h"}
"""Nobody is escalated to in these tests: only status notifications are sent."""


async def test_nothing_posted_publishes_a_holding_statement_and_tells_the_ic(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=fast_policy(first_status_within="2s", **QUIET), components=["dns"])
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="bob"))

    told = await eventually(lambda: sent(harness, n, "status"), timeout=6, what="the auto-posted notice")
    s = await state(handle)
    assert [(u.kind, u.author, u.phase) for u in s.status_updates] == [
        (StatusKind.AUTO_INITIAL, "warroom", PublicPhase.INVESTIGATING)]
    auto = s.status_updates[0]
    assert auto.at >= s.declared_at + timedelta(seconds=2)
    assert "dns" in auto.message
    assert s.status_plan.first_posted_at == auto.at
    assert slots(told) == ["auto-initial/bob/sms"]  # the IC, not the responder who acknowledged
    assert "automatically" in told[0].subject and auto.message in told[0].text
    assert any(t.kind == "status" and "automatically" in t.text for t in s.timeline)
    rows = await eventually(lambda: status_rows(harness, n), what="the status update in the read model")
    assert [(r.kind, r.author, r.phase) for r in rows] == [("auto_initial", "warroom", "investigating")]


async def test_with_nobody_in_charge_the_responder_hears_of_the_holding_statement(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=fast_policy(first_status_within="2s", **QUIET))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))
    told = await eventually(lambda: sent(harness, n, "status"), timeout=6, what="the auto-posted notice")
    assert slots(told) == ["auto-initial/bob/sms"]


async def test_the_first_status_reminder_comes_before_the_deadline_and_a_post_prevents_the_holding_statement(
    harness: Harness,
) -> None:
    policy = fast_policy(first_status_within="4s", reminder_lead="2s", **QUIET)
    handle, n = await start_incident(harness, policy=policy)
    await handle.execute_update(
        IncidentWorkflow.assign_role, RoleInput(role=Role.COMMUNICATIONS_LEAD, person="erin")
    )
    reminder = await eventually(lambda: sent(harness, n, "reminder"), timeout=5, what="the first-status reminder")
    s = await state(handle)
    assert slots(reminder) == ["first-status/erin/sms"]  # the communications lead is asked
    assert reminder[0].created_at < s.status_plan.first_deadline
    assert s.status_plan.first_reminded and s.status_plan.first_posted_at is None

    await handle.execute_update(
        IncidentWorkflow.post_status_update,
        StatusUpdateInput(message="We are looking into slow DNS publishing.", author="erin"),
    )
    s = await state(handle)
    assert s.status_updates[0].at < s.status_plan.first_deadline
    past_deadline = (s.status_plan.first_deadline - datetime.now(UTC)).total_seconds() + 0.5
    await stays(
        lambda: sent(harness, n, "status") == [], for_seconds=past_deadline, what="no holding statement once one was posted"
    )
    assert [u.kind for u in (await state(handle)).status_updates] == [StatusKind.UPDATE]


async def test_cadence_follows_the_severity(harness: Harness) -> None:
    policy = fast_policy(update_every={"SEV-1": "20s", "SEV-2": "40s"}, **QUIET)
    update = StatusUpdateInput(message="Investigating.", author="alice")
    due = {}
    for severity in (Severity.SEV1, Severity.SEV2, Severity.SEV3):
        handle, _ = await start_incident(harness, severity=severity, policy=policy)
        await handle.execute_update(IncidentWorkflow.post_status_update, update)
        v = await handle.query(IncidentWorkflow.view)
        posted = v.state.status_updates[0].at
        nxt = deadline_names(v).get("next_status_update")
        due[severity] = None if nxt is None else (nxt - posted).total_seconds()
        assert "first_status_update" not in deadline_names(v)
    assert due == {Severity.SEV1: 20.0, Severity.SEV2: 40.0, Severity.SEV3: None}


async def test_a_due_update_is_reminded_then_escalated_to_the_ic_when_overdue(harness: Harness) -> None:
    policy = fast_policy(update_every={"SEV-1": "4s", "SEV-2": "8s"}, reminder_lead="2s", **QUIET)
    handle, n = await start_incident(harness, severity=Severity.SEV1, policy=policy)
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="bob"))
    await handle.execute_update(
        IncidentWorkflow.post_status_update, StatusUpdateInput(message="Rolling back.", author="alice")
    )
    posted = (await state(handle)).status_updates[0].at
    due = posted + timedelta(seconds=4)  # SEV-1 every 4 s, reminded 2 s before
    stamp = due.isoformat()

    overdue = await eventually(
        lambda: [r for r in sent(harness, n, "escalation")
                 if r.key.endswith(f"overdue-{stamp}/bob/sms") and r.status == "sent"],
        timeout=7,
        what="the overdue escalation to the IC, sent",
    )
    reminder = [r for r in sent(harness, n, "reminder") if f"/update-{stamp}/" in r.key]
    assert slots(reminder) == [f"update-{stamp}/bob/sms"]  # no communications lead: the IC is reminded
    assert reminder[0].created_at < due <= overdue[0].created_at
    assert overdue[0].status == "sent"
    s = await state(handle)
    assert s.status_plan.overdue_for == due
    assert any(t.kind == "escalation" and "overdue" in t.text and "bob" in t.text for t in s.timeline)


async def test_a_severity_change_replans_the_next_update(harness: Harness) -> None:
    handle, n = await start_incident(
        harness, severity=Severity.SEV2, policy=fast_policy(update_every={"SEV-1": "2s", "SEV-2": "30s"}, **QUIET)
    )
    await handle.execute_update(
        IncidentWorkflow.post_status_update, StatusUpdateInput(message="Investigating.", author="alice")
    )
    posted = (await state(handle)).status_updates[0].at
    assert deadline_names(await handle.query(IncidentWorkflow.view))["next_status_update"] == posted + timedelta(
        seconds=30
    )

    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV1))
    due = posted + timedelta(seconds=2)
    assert deadline_names(await handle.query(IncidentWorkflow.view))["next_status_update"] == due
    # the new cadence is enforced at once: overdue 2 s after the last update, not 30 s
    overdue = await eventually(
        lambda: [r for r in sent(harness, n, "escalation") if f"/overdue-{due.isoformat()}/" in r.key],
        timeout=5,
        what="the overdue notice at the SEV-1 cadence",
    )
    assert overdue[0].created_at < posted + timedelta(seconds=5)

    # lowered below any cadence: nothing is due any more, and nobody is chased
    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV3))
    assert "next_status_update" not in deadline_names(await handle.query(IncidentWorkflow.view))
    count = len(sent(harness, n))
    await stays(lambda: len(sent(harness, n)) == count, for_seconds=2.5, what="the silence at SEV-3")


async def test_each_update_may_set_the_public_phase_and_an_update_without_one_keeps_it(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=fast_policy(**QUIET))
    assert (await state(handle)).public_phase == PublicPhase.INVESTIGATING  # before any update

    async def post(message: str, phase: PublicPhase | None = None) -> str:
        result = await handle.execute_update(
            IncidentWorkflow.post_status_update, StatusUpdateInput(message=message, author="erin", phase=phase)
        )
        return result.message

    assert await post("Looking into slow DNS publishing.") == f"update posted on #{n} (investigating)"
    identified = await post("A stuck publisher holds the queue.", PublicPhase.IDENTIFIED)
    assert identified == f"update posted on #{n} (identified)"
    await post("Restarting it on every name server.")
    assert (await state(handle)).public_phase == PublicPhase.IDENTIFIED  # kept, not reset
    await post("Restarted; the backlog drains.", PublicPhase.MONITORING)
    await post("The queue grows again: the restart did not hold.", PublicPhase.INVESTIGATING)

    s = await state(handle)
    assert [u.phase for u in s.status_updates] == [
        None, PublicPhase.IDENTIFIED, None, PublicPhase.MONITORING, PublicPhase.INVESTIGATING]
    assert s.public_phase == PublicPhase.INVESTIGATING  # moving back is allowed
    assert [t.text for t in s.timeline if t.kind == "status"] == [
        "Public update by erin (investigating): Looking into slow DNS publishing.",
        "Public update by erin (identified): A stuck publisher holds the queue.",
        "Public update by erin (identified): Restarting it on every name server.",
        "Public update by erin (monitoring): Restarted; the backlog drains.",
        "Public update by erin (back to investigating): The queue grows again: the restart did not hold.",
    ]
    # The read model keeps what each update set, for the status page to replay.
    rows = await eventually(lambda: (r := status_rows(harness, n)) and len(r) == 5 and r, what="five rows")
    assert [r.phase for r in rows] == [None, "identified", None, "monitoring", "investigating"]

    # The resolution notice sets no phase: the page shows it as resolved.
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Publisher replaced.", by="erin"))
    s = await state(handle)
    assert (s.status_updates[-1].kind, s.status_updates[-1].phase) == (StatusKind.RESOLUTION, None)

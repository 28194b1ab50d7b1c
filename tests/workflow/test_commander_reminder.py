"""A SEV-1/2 with no Incident Commander gets a reminder, on the real dev server.

Every other workflow test sets ``commander_within: 1h`` so this reminder stays out
of its way; here it is second-scale. Nobody is escalated to (``ack_timeout: 1h``)
and the first status deadline is an hour out, so the only reminders sent are the
ones asking for an Incident Commander (idempotency keys ``ic-<instant>``).
"""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import deadline_names, eventually, sent, start_incident, state, stays, view
from warroom.models.incident import AckInput, Role, RoleInput, SeverityInput
from warroom.models.policy import Policy
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow


def commander_policy(within: str = "2s", every: str = "2s") -> Policy:
    return fast_policy(commander_within=within, role_reminder_every=every, ack_timeout="1h",
                       first_status_within="1h")


def ic_reminders(h: Harness, number: int) -> list[str]:
    """``person/ic-<instant>`` for each reminder asking for an Incident Commander, oldest first."""
    return [f"{r.person_id}/{r.key.split('/')[1]}" for r in sent(h, number, "reminder") if "/ic-" in r.key]


async def test_a_sev1_without_a_commander_is_reminded_until_one_is_assigned(harness: Harness) -> None:
    handle, n = await start_incident(harness, severity=Severity.SEV1, policy=commander_policy())
    declared = (await state(handle)).declared_at
    assert deadline_names(await view(handle))["assign_incident_commander"] == declared + timedelta(seconds=2)
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))

    first = await eventually(lambda: sent(harness, n, "reminder"), timeout=6, what="the first IC reminder")
    assert [r.person_id for r in first] == ["bob"]  # whoever acknowledged is asked
    assert first[0].key.endswith(f"/ic-{(declared + timedelta(seconds=2)).isoformat()}/bob/sms")
    assert first[0].created_at >= declared + timedelta(seconds=2)
    assert "no Incident Commander" in first[0].subject
    s = await state(handle)
    assert any(t.kind == "reminder" and "Incident Commander" in t.text for t in s.timeline)
    # Repeated every role_reminder_every while nobody is assigned.
    await eventually(lambda: len(ic_reminders(harness, n)) >= 2, timeout=5, what="the repeated IC reminder")

    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="alice"))
    count = len(ic_reminders(harness, n))
    assert "assign_incident_commander" not in deadline_names(await view(handle))
    await stays(lambda: len(ic_reminders(harness, n)) == count, for_seconds=4.5, what="no reminder once an IC is assigned")


async def test_an_ic_assigned_in_time_means_no_reminder_and_a_sev3_never_needs_one(harness: Harness) -> None:
    policy = commander_policy(within="2s")
    assigned, a = await start_incident(harness, severity=Severity.SEV1, policy=policy)
    await assigned.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="alice"))
    minor, m = await start_incident(harness, severity=Severity.SEV3, policy=policy)
    assert "assign_incident_commander" not in deadline_names(await view(assigned))
    assert "assign_incident_commander" not in deadline_names(await view(minor))
    await stays(lambda: ic_reminders(harness, a) == [] and ic_reminders(harness, m) == [], for_seconds=4,
                what="no IC reminder")

    # Raised to SEV-2 with nobody in charge: the clock starts at the change.
    await minor.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV2))
    raised = await eventually(lambda: ic_reminders(harness, m), timeout=6, what="the IC reminder after the raise")
    assert raised[0].startswith("alice/ic-")  # nobody acknowledged: the person paged is asked

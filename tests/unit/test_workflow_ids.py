"""Which incident a workflow id belongs to (the ``incident`` field of every log line)."""

from __future__ import annotations

import pytest

from warroom.models.checks import check_schedule_id
from warroom.models.ids import (
    action_items_workflow_id,
    fanout_workflow_id,
    heartbeat_workflow_id,
    incident_event_key,
    incident_number_from_workflow_id,
    incident_workflow_id,
    runbook_run_workflow_id,
)


@pytest.mark.parametrize(
    ("workflow_id", "number"),
    [
        # every id warroom gives a workflow of an incident, made by the helpers the code uses
        (incident_workflow_id(42), 42),
        (incident_workflow_id(1), 1),
        (incident_workflow_id(2**31 - 1), 2**31 - 1),
        (runbook_run_workflow_id(42, 3), 42),
        (runbook_run_workflow_id(7, 12), 7),
        (action_items_workflow_id(42), 42),
        (fanout_workflow_id(incident_event_key(42, "declared")), 42),
        (fanout_workflow_id(incident_event_key(42, "update-3")), 42),
        (fanout_workflow_id(incident_event_key(9, "update-10")), 9),
        # the same, spelled out, so a change of format breaks this table too
        ("incident-42", 42),
        ("incident-42-runbook-3", 42),
        ("incident-42-action-items", 42),
        ("statuspage-fanout-incident-42-declared", 42),
        ("statuspage-fanout-incident-42-update-3", 42),
    ],
)
def test_ids_of_an_incidents_workflows_give_its_number(workflow_id: str, number: int) -> None:
    assert incident_number_from_workflow_id(workflow_id) == number


@pytest.mark.parametrize(
    "workflow_id",
    [
        "",
        "incident-",
        "incident-0",
        "incident-042",  # warroom never writes a leading zero
        "incident-x",
        "incident--1",
        "incident-42 ",
        "Incident-42",
        "incident-\u0664\u0662",  # Arabic-Indic digits: str.isdigit() says yes, warroom never writes them
        "incident-12345678901",  # longer than any incident number
        "incident-42-runbook-",
        "incident-42-runbook-x",
        "incident-42-runbook-3-extra",
        "incident-42-action-items-2",
        "incident-42-declared",  # an event slot without the fan-out prefix
        "incident-42/update-3",  # an event key, not a workflow id
        "statuspage-fanout-incident-42",  # a fan-out always names its slot
        "statuspage-fanout-incident-42-",
        "statuspage-fanout-incident-42-Update",
        "statuspage-fanout-subscriber-7-confirm-abc123",  # a subscription confirmation
        fanout_workflow_id("subscriber-7/confirm-abc123"),
        heartbeat_workflow_id("incident-42"),  # operators name heartbeats freely
        check_schedule_id("incident-42"),
        "uptime-check-run-incident-42-2026-12-01T00:00:00Z",
        "test-fanout-incident-42-update-1",
        "my-incident-42",
        "x-incident-42-runbook-3",
    ],
)
def test_other_ids_belong_to_no_incident(workflow_id: str) -> None:
    assert incident_number_from_workflow_id(workflow_id) is None

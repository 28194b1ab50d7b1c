"""Resolution notice, postmortem deadlines and the postmortem submission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import (
    deadline_names,
    eventually,
    incident_row,
    refused,
    sent,
    slots,
    start_incident,
    state,
    status_rows,
    stays,
)
from warroom.models.incident import (
    AckInput,
    ActionItem,
    IncidentState,
    IncidentStatus,
    PostmortemDocument,
    PostmortemInput,
    ResolveInput,
    SeverityInput,
    StatusKind,
)
from warroom.models.severity import Severity
from warroom.workflows import IncidentWorkflow

QUIET = {"ack_timeout": "1h"}
RESOLVE = ResolveInput(
    summary="The DNS publisher was rolled back and the backlog drained.",
    impact="DNS changes were delayed by up to 14 minutes.",
    by="alice",
)
REVIEW_PROMISE = "full review"
"""The phrase of the public resolution notice that promises the postmortem."""


async def test_resolution_notice_promises_a_postmortem_for_sev2_and_stops_the_timers(harness: Harness) -> None:
    handle, n = await start_incident(harness, severity=Severity.SEV2, policy=fast_policy(first_status_within="2s", **QUIET))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    result = await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)
    assert result.status == IncidentStatus.RESOLVED

    s = await state(handle)
    notice = s.status_updates[-1]
    assert (notice.kind, notice.author) == (StatusKind.RESOLUTION, "alice")
    for part in ("DNS changes publish slowly", RESOLVE.summary.rstrip("."), "Impact: DNS changes were delayed", REVIEW_PROMISE):
        assert part in notice.message
    assert s.postmortem.required and s.postmortem.deadline == s.resolved_at + timedelta(seconds=3)
    assert "postmortem" in deadline_names(await handle.query(IncidentWorkflow.view))

    told = await eventually(lambda: sent(harness, n, "resolution"), what="the resolution notice to responders")
    assert slots(told) == ["resolved/alice/sms"] and "postmortem" in told[0].text
    rows = await eventually(lambda: status_rows(harness, n), what="the notice in the read model")
    assert [r.kind for r in rows] == ["resolution"]
    await eventually(lambda: (r := incident_row(harness, n)) is not None and r.status == "resolved", what="resolved row")

    # the first-status deadline (2 s after declaration) goes by without a holding statement
    await stays(
        lambda: not sent(harness, n, "status") and not sent(harness, n, "reminder"),
        for_seconds=max(0.0, (s.declared_at + timedelta(seconds=2.5) - datetime.now(UTC)).total_seconds()),
        what="silence about status updates after the resolution",
    )
    assert [u.kind for u in (await state(handle)).status_updates] == [StatusKind.RESOLUTION]


async def test_sev3_resolution_has_no_postmortem_and_the_workflow_completes(harness: Harness) -> None:
    handle, n = await start_incident(harness, severity=Severity.SEV3, policy=fast_policy(ack_timeout="1s"))
    await eventually(lambda: sent(harness, n, "page"), what="the page")
    await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)
    final: IncidentState = await handle.result()
    assert final.status == IncidentStatus.CLOSED
    assert not final.postmortem.required and final.postmortem.deadline is None
    notice = final.status_updates[-1]
    assert notice.kind == StatusKind.RESOLUTION and REVIEW_PROMISE not in notice.message
    assert "Service is operating normally again" in notice.message
    told = await eventually(lambda: sent(harness, n, "resolution"), what="the resolution notice to responders")
    assert "postmortem" not in told[0].text
    assert [p.step for p in final.pages] == [0]  # resolved before the ack deadline: no escalation
    await eventually(lambda: (r := incident_row(harness, n)) is not None and r.status == "closed", what="closed row")


async def test_a_downgraded_sev1_still_needs_a_postmortem(harness: Harness) -> None:
    handle, _ = await start_incident(harness, severity=Severity.SEV1, policy=fast_policy(postmortem_within="1h", **QUIET))
    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV3))
    await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)
    s = await state(handle)
    assert s.status == IncidentStatus.RESOLVED and s.postmortem.required
    assert REVIEW_PROMISE in s.status_updates[-1].message


async def test_postmortem_reminder_then_one_overdue_notice_to_the_engineering_lead(harness: Harness) -> None:
    # postmortem within 3 s, reminded 2 s before, overdue repeated only after an hour
    handle, n = await start_incident(harness, policy=fast_policy(**QUIET))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)
    deadline = (await state(handle)).postmortem.deadline
    assert deadline is not None

    overdue = await eventually(lambda: sent(harness, n, "postmortem", "erin"), timeout=6, what="the overdue notice")
    reminder = sent(harness, n, "postmortem", "alice")
    assert slots(reminder) == ["pm-reminder-1/alice/sms"]  # the responder, no IC assigned
    assert slots(overdue) == ["pm-overdue-1/erin/sms"]
    assert reminder[0].created_at < deadline <= overdue[0].created_at
    assert "overdue" in overdue[0].subject

    await stays(lambda: len(sent(harness, n, "postmortem")) == 2, for_seconds=1.5, what="a single overdue notice")
    s = await state(handle)
    assert (s.postmortem.reminders_sent, s.postmortem.overdue_notified) == (1, 1)
    assert len([t for t in s.timeline if t.text.startswith("Postmortem overdue")]) == 1


def document(**changes: object) -> PostmortemDocument:
    due = datetime.now(UTC) + timedelta(days=14)
    doc = PostmortemDocument(
        summary="DNS publishing lagged by up to 14 minutes.",
        timeline="02:41 lag starts; 02:45 paged; 03:10 rollback; 03:25 drained.",
        root_cause="A schema change made the publisher scan every zone.",
        impact="DNS changes were delayed for 44 minutes.",
        what_went_well="The page reached the on-call engineer at once.",
        what_could_improve="The lag alert fired 4 minutes after the impact began.",
        action_items=[ActionItem(title="Index the zone table", owner="alice", due=due)],
    )
    return doc.model_copy(update=changes)


async def test_an_incomplete_postmortem_is_refused_and_a_complete_one_closes_the_incident(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=fast_policy(postmortem_within="1h", **QUIET))
    await handle.execute_update(IncidentWorkflow.resolve, RESOLVE)

    incomplete = document(
        root_cause="",
        what_went_well="  ",
        action_items=[ActionItem(title="Index the zone table", owner=" ", due=datetime.now(UTC) + timedelta(days=3))],
    )
    reason = await refused(
        handle.execute_update(IncidentWorkflow.submit_postmortem, PostmortemInput(document=incomplete, by="alice"))
    )
    assert reason.startswith("the postmortem is incomplete: ")
    for missing in ("root cause is empty", "what went well is empty", "action item 1 has no owner"):
        assert missing in reason
    assert "summary" not in reason and "timeline" not in reason
    s = await state(handle)
    assert s.status == IncidentStatus.RESOLVED and s.postmortem.submitted_at is None

    no_items = await refused(
        handle.execute_update(IncidentWorkflow.submit_postmortem, PostmortemInput(document=document(action_items=[])))
    )
    assert "no action items" in no_items

    complete = document()
    result = await handle.execute_update(
        IncidentWorkflow.submit_postmortem, PostmortemInput(document=complete, by="alice")
    )
    assert result.status == IncidentStatus.CLOSED
    final: IncidentState = await handle.result()
    assert final.status == IncidentStatus.CLOSED
    assert final.postmortem.submitted_by == "alice" and final.postmortem.document == complete
    row = await eventually(lambda: (r := incident_row(harness, n)) is not None and r.status == "closed" and r)
    assert row.postmortem_submitted_at is not None

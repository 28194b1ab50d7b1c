"""Action items after a postmortem: reminders before the due date, the engineering lead told
exactly once when one is overdue, completion, continue-as-new; and the incident's side
(the accepted postmortem starts the tracker; the author gets the postmortem reminders)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus
from sqlalchemy.orm import Session

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import eventually, refused, sent, slots, start_incident, state, stays, unique_number
from warroom.models.action_items import (
    ActionItemsInput,
    ActionItemsState,
    AddItemInput,
    CompleteItemInput,
    EditItemInput,
)
from warroom.models.ids import action_items_workflow_id
from warroom.models.incident import (
    ActionItem,
    AckInput,
    PostmortemAuthorInput,
    PostmortemDocument,
    PostmortemInput,
    ResolveInput,
)
from warroom.models.tables import ActionItemRow
from warroom.workflows import ActionItemsWorkflow, IncidentWorkflow

QUIET = {"ack_timeout": "1h"}


def rows(h: Harness, number: int) -> list[ActionItemRow]:
    with Session(h.engine) as session:
        return list(session.scalars(select(ActionItemRow).where(ActionItemRow.incident_number == number)
                                    .order_by(ActionItemRow.idx)))


async def start_tracker(h: Harness, items: list[ActionItem], **policy: object):  # type: ignore[no-untyped-def]
    number = unique_number()
    inp = ActionItemsInput(number=number, title="DNS publishing lag", severity="SEV-2", items=items,
                           policy=fast_policy(**policy))
    handle = await h.client.start_workflow(
        ActionItemsWorkflow.run, inp, id=f"{action_items_workflow_id(number)}-{uuid.uuid4().hex[:6]}",
        task_queue=h.task_queue,
    )
    return handle, number


async def test_an_overdue_action_item_notifies_the_lead_exactly_once(harness: Harness) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2.5)
    items = [ActionItem(title="Index the zone table", owner="alice", due=due, priority="high"),
             ActionItem(title="Alert on publish lag", owner="bob", due=due + timedelta(days=30))]
    handle, n = await start_tracker(harness, items, action_item_reminders_before=["1.5s"])

    told = await eventually(lambda: sent(harness, n, "escalation", "erin"), timeout=8, what="the lead told")
    assert slots(told) == ["action-1-overdue/erin/sms"]
    assert "Index the zone table" in told[0].text and "alice" in told[0].text
    reminder = sent(harness, n, "reminder", "alice")
    assert slots(reminder) == ["action-1-reminder-1/alice/sms"]
    assert reminder[0].created_at < due <= told[0].created_at

    # Nothing more: no second notice to the lead, and the item not yet due stays quiet.
    await stays(lambda: len(sent(harness, n)) == 2, for_seconds=2.0, what="one reminder and one overdue notice")
    s: ActionItemsState = await handle.query(ActionItemsWorkflow.view)
    assert [it.overdue_notified for it in s.items] == [True, False]
    row = await eventually(lambda: (r := rows(harness, n)) and r[0].overdue_notified and r)
    assert [(r.idx, r.owner, r.priority, r.severity) for r in row] == [(1, "alice", "high", "SEV-2"),
                                                                       (2, "bob", "medium", "SEV-2")]


async def test_completing_every_item_ends_the_tracker_and_a_second_completion_is_refused(harness: Harness) -> None:
    due = datetime.now(UTC) + timedelta(days=5)
    handle, n = await start_tracker(harness, [ActionItem(title="Add a canary", owner="bob", due=due)])
    answer = await handle.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=1, by="bob"))
    assert answer == f"action item 1 of #{n} is done"
    final: ActionItemsState = await handle.result()
    assert final.items[0].done_by == "bob" and final.items[0].done_at is not None
    row = await eventually(lambda: (r := rows(harness, n)) and r[0].done_at is not None and r)
    assert row[0].done_by == "bob"
    assert sent(harness, n) == []  # done long before any reminder


async def test_a_handed_over_and_moved_item_reminds_its_new_owner_and_tells_the_lead_once(harness: Harness) -> None:
    """The old owner hears nothing more; the new one is told the item is theirs, gets the
    reminder for the new due date, and the lead is told once when that date passes."""
    first_due = datetime.now(UTC) + timedelta(seconds=1.2)
    handle, n = await start_tracker(harness, [ActionItem(title="Index the zone table", owner="alice", due=first_due)],
                                    action_item_reminders_before=["1s"])
    new_due = datetime.now(UTC) + timedelta(seconds=3)
    answer = await handle.execute_update(ActionItemsWorkflow.edit, EditItemInput(
        index=1, by="erin", owner="bob", due=new_due, title="Index the zones table"))
    assert answer.startswith(f"action item 1 of #{n}: reworded; owner alice -> bob; due ")

    told = await eventually(lambda: sent(harness, n, "escalation", "erin"), timeout=8, what="the lead told")
    assert slots(told) == ["action-1.1-overdue/erin/sms"]
    assert "Index the zones table" in told[0].text and "owner bob" in told[0].text
    assert slots(sent(harness, n, "role", "bob")) == ["action-1.1-assigned/bob/sms"]
    reminder = sent(harness, n, "reminder", "bob")
    assert slots(reminder) == ["action-1.1-reminder-1/bob/sms"]
    assert reminder[0].created_at < new_due <= told[0].created_at
    # alice was reminded at most before the hand-over (her reminder fell due at once), never after.
    assert all(r.created_at < reminder[0].created_at for r in sent(harness, n, person="alice"))
    await stays(lambda: len(sent(harness, n, "escalation")) == 1, for_seconds=1.5, what="one overdue notice")
    await handle.terminate("test over")


async def test_an_edit_that_changes_nothing_or_reaches_a_done_item_is_refused(harness: Harness) -> None:
    due = datetime.now(UTC) + timedelta(days=5)
    handle, n = await start_tracker(harness, [ActionItem(title="Add a canary", owner="bob", due=due),
                                              ActionItem(title="Alert on lag", owner="bob", due=due)])
    await handle.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=1, by="bob"))
    assert await refused(handle.execute_update(ActionItemsWorkflow.edit, EditItemInput(index=1, by="bob", owner="alice"))
                         ) == f"action item 1 of #{n} was already done by bob"
    assert await refused(handle.execute_update(ActionItemsWorkflow.edit, EditItemInput(index=2, by="bob", owner="bob"))
                         ) == f"action item 2 of #{n} already reads so; nothing to change"
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert "already past" in await refused(handle.execute_update(
        ActionItemsWorkflow.edit, EditItemInput(index=2, by="bob", due=past)))
    assert "is not a person warroom knows" in await refused(handle.execute_update(
        ActionItemsWorkflow.add, AddItemInput(title="x", owner="mallory", due=due, by="bob")))
    s: ActionItemsState = await handle.query(ActionItemsWorkflow.view)
    assert [(it.owner, it.due, it.revision) for it in s.items] == [("bob", due, 0), ("bob", due, 0)]
    await handle.terminate("test over")


async def test_an_item_added_as_the_last_one_is_done_keeps_the_tracker_going(harness: Harness) -> None:
    due = datetime.now(UTC) + timedelta(days=5)
    handle, n = await start_tracker(harness, [ActionItem(title="Add a canary", owner="bob", due=due)])
    done, added = await asyncio.gather(
        handle.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=1, by="bob")),
        handle.execute_update(ActionItemsWorkflow.add, AddItemInput(title="Alert on lag", owner="alice", due=due,
                                                                     priority="high", by="bob")),
    )
    assert added == f"action item 2 of #{n} added for alice"
    await asyncio.sleep(0.5)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    await handle.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=2, by="alice"))
    final: ActionItemsState = await handle.result()
    assert [(it.index, it.done_by, it.added_by) for it in final.items] == [(1, "bob", None), (2, "alice", "bob")]
    assert slots(sent(harness, n, "role", "alice")) == ["action-2-assigned/alice/sms"]


async def test_unknown_item_is_refused(harness: Harness) -> None:
    handle, n = await start_tracker(harness, [ActionItem(title="Add a canary", owner="bob",
                                                         due=datetime.now(UTC) + timedelta(days=5))])
    reason = await refused(handle.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=7, by="bob")))
    assert reason == f"incident #{n} has no action item 7 (it has 1)"
    await handle.terminate("test over")


async def test_continue_as_new_keeps_the_items_and_the_single_overdue_notice(harness: Harness) -> None:
    due = datetime.now(UTC) + timedelta(seconds=2)
    number = unique_number()
    inp = ActionItemsInput(number=number, title="t", items=[ActionItem(title="Fix it", owner="alice", due=due)],
                           policy=fast_policy(action_item_reminders_before=["1s"]), force_continue_after=14)
    handle = await harness.client.start_workflow(ActionItemsWorkflow.run, inp, id=f"ai-can-{uuid.uuid4().hex[:8]}",
                                                 task_queue=harness.task_queue)
    first_run = (await handle.describe()).run_id
    await eventually(lambda: sent(harness, number, "escalation", "erin"), timeout=8, what="the lead told")
    await stays(lambda: len(sent(harness, number, "escalation")) == 1, for_seconds=1.5, what="one overdue notice")
    latest = harness.client.get_workflow_handle(handle.id)
    assert (await latest.describe()).run_id != first_run, "the tracker never continued as new"
    s: ActionItemsState = await latest.query(ActionItemsWorkflow.view)
    assert s.items[0].overdue_notified and s.items[0].title == "Fix it"
    await latest.terminate("test over")


async def test_an_accepted_postmortem_starts_the_tracker_of_its_action_items(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=fast_policy(postmortem_within="1h", **QUIET))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Rolled back.", by="alice"))
    due = datetime.now(UTC) + timedelta(days=10)
    doc = PostmortemDocument(
        summary="s", timeline="t", root_cause="r", impact="i", what_went_well="w", what_could_improve="c",
        action_items=[ActionItem(title="Index the zone table", owner="bob", due=due, priority="high")],
    )
    await handle.execute_update(IncidentWorkflow.submit_postmortem, PostmortemInput(document=doc, by="alice"))
    await handle.result()
    tracker = harness.client.get_workflow_handle(action_items_workflow_id(n))
    s: ActionItemsState = await eventually(lambda: tracker.query(ActionItemsWorkflow.view), what="the tracker")
    assert [(it.index, it.owner, it.priority) for it in s.items] == [(1, "bob", "high")]
    assert s.severity == "SEV-2"
    await eventually(lambda: rows(harness, n), what="the action item row")
    await tracker.terminate("test over")


async def test_the_postmortem_author_is_reminded_with_the_responder(harness: Harness) -> None:
    handle, n = await start_incident(harness, policy=fast_policy(**QUIET))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Rolled back.", by="alice"))
    await handle.execute_update(IncidentWorkflow.set_postmortem_author, PostmortemAuthorInput(person="bob", by="bob"))
    assert (await state(handle)).postmortem.author == "bob"
    reminded = await eventually(lambda: len(r := sent(harness, n, "postmortem")) >= 2 and r, timeout=6)
    assert sorted(slots(reminded)[:2]) == ["pm-reminder-1/alice/sms", "pm-reminder-1/bob/sms"]
    reason = await refused(handle.execute_update(IncidentWorkflow.set_postmortem_author,
                                                 PostmortemAuthorInput(person="mallory", by="alice")))
    assert "mallory" in reason
    await handle.terminate("test over")

"""Record the incident histories that tests/replay/test_replay.py replays.

    .venv/bin/python -m tests.replay.record_histories

starts its own Temporal dev server, runs a few representative incidents to
completion with second-scale policies, and writes every run of each as JSON
under tests/replay/histories/ (``<scenario>.json``, or ``<scenario>-<n>.json``
for an incident that continued as new).

Re-record only to add a scenario. Histories of incidents recorded before a
change are what the replay test is for: a change to IncidentWorkflow that
cannot replay them needs ``workflow.patched``, not new recordings.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from tests.conftest import Harness, fast_policy, running_worker, temporal_binary
from warroom.models.action_items import ActionItemsInput, AddItemInput, CompleteItemInput, EditItemInput
from warroom.models.ids import action_items_workflow_id
from warroom.models.incident import (
    AckInput,
    ActionItem,
    AlertBatch,
    AlertEvent,
    IncidentInput,
    PostmortemAuthorInput,
    PostmortemDocument,
    PostmortemInput,
    PublicPhase,
    ResolveInput,
    Role,
    RoleInput,
    SeverityInput,
    StatusUpdateInput,
)
from warroom.models.severity import Severity
from warroom.models.tables import create_schema, make_engine
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import ActionItemsWorkflow, IncidentWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"

Handle = WorkflowHandle[Any, Any]


async def until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + timeout
    while not check():
        if loop.time() > give_up:
            raise TimeoutError("a recorded scenario did not reach its next step")
        await asyncio.sleep(0.1)


def sent(h: Harness, number: int, slot: str) -> bool:
    return any(f"incident-{number}/{slot}" in r.key for r in h.channel.sent)


async def start(h: Harness, name: str, number: int, severity: Severity, **policy: Any) -> Handle:
    return await h.client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(
            number=number,
            title=f"Recorded scenario: {name.replace('_', ' ')}",
            severity=severity,
            components=["dns"],
            policy=fast_policy(**policy),
        ),
        id=f"replay-{name}",
        task_queue=h.task_queue,
    )


def postmortem() -> PostmortemInput:
    due = datetime.now(UTC) + timedelta(days=14)
    return PostmortemInput(
        by="alice",
        document=PostmortemDocument(
            summary="DNS publishing lagged.",
            timeline="Lag began, page, rollback, drained.",
            root_cause="An unindexed query in the publisher.",
            impact="DNS changes were late.",
            what_went_well="Quick acknowledgement.",
            what_could_improve="Earlier alerting.",
            action_items=[ActionItem(title="Add the index", owner="bob", due=due)],
        ),
    )


async def ack_path(h: Harness) -> Handle:
    """SEV-3: paged, acknowledged, an IC, one update, resolved without a postmortem."""
    handle = await start(h, "ack_path", 1, Severity.SEV3, ack_timeout="3s", first_status_within="1h")
    await until(lambda: sent(h, 1, "step-0/"))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="alice"))
    await handle.execute_update(
        IncidentWorkflow.post_status_update, StatusUpdateInput(message="Looking into it.", author="alice")
    )
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Restarted the webmail pool.", by="alice"))
    return handle


async def full_escalation(h: Harness) -> Handle:
    """SEV-1 nobody answers: every level, the repeat, the fallback; then acked, resolved, postmortem."""
    handle = await start(h, "full_escalation", 2, Severity.SEV1, ack_timeout="1s", first_status_within="1h",
                         postmortem_within="1h")
    await until(lambda: sent(h, 2, "fallback/"))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="bob"))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Failed over to the standby.", by="bob"))
    await handle.execute_update(IncidentWorkflow.submit_postmortem, postmortem())
    return handle


async def resolve_and_postmortem(h: Harness) -> Handle:
    """SEV-2: holding statement posted automatically, resolved, postmortem reminded, overdue, submitted."""
    handle = await start(h, "resolve_and_postmortem", 3, Severity.SEV2, ack_timeout="1h", first_status_within="1s",
                         postmortem_within="2s", postmortem_reminders_before=["1s"])
    await until(lambda: sent(h, 3, "step-0/"))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await until(lambda: sent(h, 3, "auto-initial/"))
    await handle.execute_update(
        IncidentWorkflow.resolve, ResolveInput(summary="Rolled back.", impact="Late DNS changes.", by="alice")
    )
    await until(lambda: sent(h, 3, "pm-overdue-1/"))
    await handle.execute_update(IncidentWorkflow.submit_postmortem, postmortem())
    return handle


async def severity_and_updates(h: Harness) -> Handle:
    """SEV-2 fed by alerts: updates, a reminder and an overdue escalation, raised to SEV-1, lowered, resolved."""
    handle = await start(h, "severity_and_updates", 4, Severity.SEV2, ack_timeout="1h", first_status_within="1h",
                         update_every={"SEV-1": "2s", "SEV-2": "3s"}, postmortem_within="1h")
    alerts = [AlertEvent(fingerprint="fp-ns1", name="DNSUpdateLag", labels={"instance": "ns1"})]
    await handle.execute_update(IncidentWorkflow.receive_alerts, AlertBatch(group_key="g", alerts=alerts))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="bob"))
    await handle.execute_update(IncidentWorkflow.post_status_update, StatusUpdateInput(message="Rolling back.", author="alice"))
    await until(lambda: sent(h, 4, "overdue-"))
    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV1, reason="spreading"))
    await handle.execute_update(IncidentWorkflow.post_status_update, StatusUpdateInput(message="Still on it.", author="bob"))
    await handle.execute_update(IncidentWorkflow.change_severity, SeverityInput(severity=Severity.SEV3))
    resolved = [AlertEvent(fingerprint="fp-ns1", status="resolved", name="DNSUpdateLag", labels={"instance": "ns1"})]
    await handle.execute_update(IncidentWorkflow.receive_alerts, AlertBatch(group_key="g", alerts=resolved))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Backlog drained.", by="bob"))
    await handle.execute_update(IncidentWorkflow.submit_postmortem, postmortem())
    return handle


async def sev4_notices(h: Harness) -> Handle:
    """SEV-4 (pages nobody): first-status reminder, holding statement, an IC, resolved.
    Recorded when its reminders and notices still went by SMS."""
    handle = await start(h, "sev4_notices", 8, Severity.SEV4, first_status_within="2s", reminder_lead="1s")
    await until(lambda: sent(h, 8, "auto-initial/"))
    await handle.execute_update(IncidentWorkflow.assign_role, RoleInput(role=Role.INCIDENT_COMMANDER, person="bob"))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Cleared the stale cache.", by="bob"))
    return handle


async def public_phases(h: Harness) -> Handle:
    """SEV-3: the holding statement (investigating), then identified, monitoring, back to
    investigating when the fix did not hold, an update that keeps the phase, monitoring, resolved."""
    handle = await start(h, "public_phases", 9, Severity.SEV3, ack_timeout="1h", first_status_within="2s")
    await until(lambda: sent(h, 9, "step-0/"))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await until(lambda: sent(h, 9, "auto-initial/"))
    for message, phase in [("A full disk on the relay.", PublicPhase.IDENTIFIED),
                           ("Disk cleared; mail flows.", PublicPhase.MONITORING),
                           ("Delays are back.", PublicPhase.INVESTIGATING),
                           ("Looking at the second relay.", None),
                           ("Second relay cleared too.", PublicPhase.MONITORING)]:
        await handle.execute_update(IncidentWorkflow.post_status_update,
                                    StatusUpdateInput(message=message, author="alice", phase=phase))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Both relays have room.", by="alice"))
    return handle


async def continued_as_new(h: Harness) -> Handle:
    """A long SEV-3 whose history passes the policy's limit: continues as new, then resolves."""
    handle = await start(h, "continued_as_new", 5, Severity.SEV3, ack_timeout="1h", first_status_within="1h",
                         history_event_limit=50)
    await until(lambda: sent(h, 5, "step-0/"))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    first = (await handle.describe()).run_id
    for i in range(30):
        await handle.execute_update(
            IncidentWorkflow.post_status_update, StatusUpdateInput(message=f"Update {i + 1}.", author="alice")
        )
        if (await handle.describe()).run_id != first:
            break
    else:
        raise RuntimeError("the incident did not continue as new")
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Quota raised.", by="alice"))
    return handle


async def postmortem_author_and_action_items(h: Harness) -> Handle:
    """SEV-2 resolved; an author named, reminded with the responder; the postmortem starts the tracker."""
    handle = await start(h, "postmortem_author_and_action_items", 7, Severity.SEV2, ack_timeout="1h",
                         first_status_within="1h", postmortem_within="2s", postmortem_reminders_before=["1s"])
    await until(lambda: sent(h, 7, "step-0/"))
    await handle.execute_update(IncidentWorkflow.acknowledge, AckInput(person="alice"))
    await handle.execute_update(IncidentWorkflow.resolve, ResolveInput(summary="Rolled back.", by="alice"))
    await handle.execute_update(IncidentWorkflow.set_postmortem_author, PostmortemAuthorInput(person="bob", by="bob"))
    await until(lambda: sent(h, 7, "pm-reminder-1/bob"))
    await handle.execute_update(IncidentWorkflow.submit_postmortem, postmortem())
    return handle


async def action_item_tracker(h: Harness) -> Handle:
    """The tracker the scenario above started: its one item completed by its owner."""
    tracker = h.client.get_workflow_handle(action_items_workflow_id(7))
    for _ in range(300):
        try:
            await tracker.query(ActionItemsWorkflow.view)
            break
        except Exception:  # noqa: BLE001 - not started yet
            await asyncio.sleep(0.1)
    await tracker.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=1, by="bob"))
    return tracker


async def action_item_changes(h: Harness) -> Handle:
    """A tracker whose item is handed over and moved (the new owner told and reminded), one
    added later, every item then done."""
    now = datetime.now(UTC)
    inp = ActionItemsInput(number=8, title="Mail queue stalled", severity="SEV-2", policy=fast_policy(
        action_item_reminders_before=["1s"]), items=[ActionItem(title="Watch the queue", owner="alice",
                                                               due=now + timedelta(hours=1))])
    tracker = await h.client.start_workflow(ActionItemsWorkflow.run, inp, id=action_items_workflow_id(8),
                                            task_queue=h.task_queue)
    await tracker.execute_update(ActionItemsWorkflow.edit, EditItemInput(
        index=1, by="erin", owner="bob", due=datetime.now(UTC) + timedelta(seconds=2), priority="high"))
    await until(lambda: sent(h, 8, "action-1.1-reminder-1/bob"))
    await tracker.execute_update(ActionItemsWorkflow.add, AddItemInput(
        title="Page on queue age", owner="alice", due=datetime.now(UTC) + timedelta(days=3), by="erin"))
    await tracker.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=1, by="bob"))
    await tracker.execute_update(ActionItemsWorkflow.complete, CompleteItemInput(index=2, by="alice"))
    return tracker


SCENARIOS: list[Callable[[Harness], Awaitable[Handle]]] = [
    ack_path,
    full_escalation,
    resolve_and_postmortem,
    severity_and_updates,
    continued_as_new,
    postmortem_author_and_action_items,
    action_item_tracker,
    sev4_notices,
    public_phases,
    action_item_changes,
]


async def save_runs(client: Client, name: str, handle: Handle) -> list[Path]:
    """Every run of the workflow, oldest first, as one JSON file each."""
    await handle.result()
    runs = [wf async for wf in client.list_workflows(f"WorkflowId = '{handle.id}'")]
    runs.sort(key=lambda wf: wf.start_time)
    paths = []
    for i, wf in enumerate(runs, start=1):
        history = await client.get_workflow_handle(handle.id, run_id=wf.run_id).fetch_history()
        path = HISTORIES / (f"{name}.json" if len(runs) == 1 else f"{name}-{i}.json")
        path.write_text(history.to_json() + "\n")
        paths.append(path)
    return paths


async def main() -> None:
    HISTORIES.mkdir(exist_ok=True)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(), data_converter=DATA_CONVERTER, dev_server_log_level="error", ui=False
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/read.db")
            create_schema(engine)
            async with running_worker(env.client, engine) as h:
                # Names on the command line record only those scenarios (the others stay as recorded).
                chosen = [sc for sc in SCENARIOS if not sys.argv[1:] or sc.__name__ in sys.argv[1:]]
                handles = await asyncio.gather(*(scenario(h) for scenario in chosen))
                for scenario, handle in zip(chosen, handles):
                    for path in await save_runs(env.client, scenario.__name__, handle):
                        print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: "
                              f"{path.stat().st_size // 1024} KiB", file=sys.stderr)
            engine.dispose()
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())

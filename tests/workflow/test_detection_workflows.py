"""Workflow-level guards for detection: an alert rule's escalation policy (behind the patch
'detection-alert-rule-escalation') routes and pages its level 1, an unknown one is ignored,
and both the incident and the heartbeat workflow replay their own histories."""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer

from tests.conftest import Harness, fast_policy
from tests.workflow.helpers import eventually, sent, start_incident, view
from warroom.models.detection import HeartbeatInput, Ping
from warroom.models.policy import Policy
from warroom.temporal import DATA_CONVERTER
from warroom.workflows import WORKFLOWS, HeartbeatWorkflow
from warroom.workflows.incident import DETECTION_RULES_PATCH

HISTORIES = Path(__file__).parent / "histories"


def with_dns_team() -> Policy:
    base = fast_policy().model_dump(mode="json")
    base["escalation_policies"] = {"dns-oncall": {"levels": [{"notify": ["bob"]}]}}
    return Policy.model_validate(base)


async def replays(handle: WorkflowHandle[Any, Any], keep_as: str | None = None) -> None:
    history = await handle.fetch_history()
    if keep_as and os.environ.get("WARROOM_RECORD_HISTORIES"):
        (HISTORIES / f"{keep_as}.json").write_text(history.to_json(), encoding="utf-8")
    result = await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(
        history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_alert_rule_escalation_routes_and_pages_its_level_one(harness: Harness) -> None:
    handle, number = await start_incident(harness, policy=with_dns_team(), escalation="dns-oncall",
                                          escalation_rule="alert rule 'dns team'")
    await eventually(lambda: sent(harness, number, "page"), what="the page")
    assert {r.person_id for r in sent(harness, number, "page")} == {"bob"}
    v = await view(handle)
    routing = [e.text for e in v.state.timeline if e.kind == "routing"]
    assert routing == ["Routed by alert rule 'dns team' to escalation policy 'dns-oncall'"]
    await handle.terminate("test over")
    await replays(handle, "detection-alert-rule-escalation")


async def test_an_unknown_escalation_from_a_rule_falls_back_to_the_policy(harness: Harness) -> None:
    handle, number = await start_incident(harness, escalation="no-such-policy")
    await eventually(lambda: sent(harness, number, "page"), what="the page")
    assert {r.person_id for r in sent(harness, number, "page")} == {"alice"}
    await handle.terminate("test over")
    await replays(handle)


def test_the_recorded_rule_escalation_history_took_the_patched_path() -> None:
    events = json.loads((HISTORIES / "detection-alert-rule-escalation.json").read_text(encoding="utf-8"))["events"]
    patches = [
        json.loads(base64.b64decode(p["data"]))["id"]
        for e in events if "markerRecordedEventAttributes" in e
        for p in e["markerRecordedEventAttributes"]["details"]["patch-data"]["payloads"]
    ]
    assert DETECTION_RULES_PATCH in patches


async def test_recorded_rule_escalation_history_replays() -> None:
    from temporalio.client import WorkflowHistory

    path = HISTORIES / "detection-alert-rule-escalation.json"
    history = WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))
    result = await Replayer(workflows=WORKFLOWS, data_converter=DATA_CONVERTER).replay_workflow(
        history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_heartbeat_history_with_a_miss_and_a_recovery_replays(harness: Harness) -> None:
    monitor = HeartbeatInput(name=f"replay-{datetime.now(UTC).timestamp():.0f}", deadline_seconds=1.0)
    handle = await harness.client.start_workflow(
        HeartbeatWorkflow.run, monitor, id=f"heartbeat-{monitor.name}-{os.getpid()}", task_queue=harness.task_queue,
        start_signal="ping", start_signal_args=[Ping(at=datetime.now(UTC), monitor=monitor)],
    )

    async def raised(status: str) -> bool:
        history = await handle.fetch_history()
        return sum(1 for e in history.events if e.HasField("activity_task_completed_event_attributes")) >= (
            1 if status == "firing" else 2)

    await eventually(lambda: raised("firing"), timeout=15, what="the missed-heartbeat alert")
    await handle.signal(HeartbeatWorkflow.ping, Ping(at=datetime.now(UTC), monitor=monitor))
    await eventually(lambda: raised("resolved"), timeout=15, what="the resolved alert")
    await handle.terminate("test over")
    await replays(handle)

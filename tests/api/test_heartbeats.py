"""Heartbeat monitors: a job calls in; a missed call raises an alert through the intake,
and the next call resolves it. The timer is Temporal's, so a worker restart loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from tests.access import bearer, integration_secret
from tests.api.support import Api, eventually, serving
from tests.conftest import running_worker, start_incident_numbers_at
from warroom.models.detection import HeartbeatInput, Ping, parse_detection
from warroom.models.ids import heartbeat_workflow_id
from warroom.models.tables import AlertDeliveryRow
from warroom.workflows import HeartbeatWorkflow

DETECTION = {"heartbeats": [
    {"name": "nightly-backup", "every": "1s", "grace": "1s", "component": "control-panel", "severity": "SEV-3",
     "title": "The nightly backup did not report in"},
    {"name": "billing-sync", "every": "1h"},
]}


async def open_incidents(api: Api) -> list[dict[str, Any]]:
    return list((await api.http.get("/api/incidents", params={"status": "open"})).json())


async def test_missed_heartbeat_raises_an_alert_and_the_next_call_resolves_it(
    client: Client, engine: Engine, tmp_path: Path
) -> None:
    # unique names: heartbeat workflow ids are global on the shared dev server
    name = f"nightly-{uuid.uuid4().hex[:8]}"
    detection = {"heartbeats": [{**DETECTION["heartbeats"][0], "name": name}, DETECTION["heartbeats"][1]]}
    async with serving(client, engine, tmp_path, detection=detection) as api:
        token = await asyncio.to_thread(integration_secret, api.engine, name, "heartbeat")
        other = await asyncio.to_thread(integration_secret, api.engine, "billing-sync", "heartbeat")
        first = await api.anonymous.post(f"/api/heartbeats/{name}", headers=bearer(token))
        assert first.status_code == 200, first.text
        assert first.json() == {"heartbeat": name, "next_call_within_seconds": 2.0}
        assert await open_incidents(api) == []

        [inc] = await eventually("the missed-heartbeat incident", lambda: open_incidents(api), timeout=15)
        assert (inc["source"], inc["severity"], inc["components"]) == ("heartbeat", "SEV-3", ["control-panel"])
        assert inc["title"] == "The nightly backup did not report in"

        # the job comes back (secret in the URL this time): the alert resolves in the timeline
        back = await api.anonymous.post(f"/api/heartbeats/{name}/{token}")
        assert back.status_code == 200, back.text

        async def resolved_line() -> list[str]:
            detail = await api.incident(inc["id"])
            return [e["text"] for e in detail["timeline"] if e["kind"] == "alert" and "resolved" in e["text"]]

        await eventually("the resolved alert in the timeline", resolved_line)

        refusals = [
            (f"/api/heartbeats/{name}", other, 403, "belongs to heartbeat 'billing-sync'"),
            ("/api/heartbeats/no-such-job", token, 404, "no heartbeat 'no-such-job'"),
            (f"/api/heartbeats/{name}", api.alert_secret, 401, "not heartbeat"),
            (f"/api/heartbeats/{name}", None, 401, "secret"),
        ]
        for path, secret, status, reason in refusals:
            resp = await api.anonymous.post(path, headers=bearer(secret) if secret else None)
            assert resp.status_code == status, resp.text
            assert reason in resp.json()["detail"]


async def test_missed_heartbeat_fires_after_a_worker_restart(client: Client, primary_engine: Engine) -> None:
    queue = f"hb-{uuid.uuid4().hex[:8]}"
    # incident workflow ids are global on the shared dev server: numbers of our own
    await asyncio.to_thread(start_incident_numbers_at, primary_engine, 1_900_000_000 + uuid.uuid4().int % 10_000_000)
    name = f"restart-{uuid.uuid4().hex[:8]}"
    config = parse_detection({"heartbeats": [{"name": name, "every": "1s", "grace": "1s"}]})
    monitor = HeartbeatInput.of(config.heartbeats[0])
    async with running_worker(client, primary_engine, queue, detection=config):
        await client.start_workflow(
            HeartbeatWorkflow.run, monitor, id=heartbeat_workflow_id(name), task_queue=queue,
            start_signal="ping", start_signal_args=[Ping(at=datetime.now(UTC), monitor=monitor)],
        )
        await asyncio.sleep(0.5)
    # no worker while the deadline passes
    await asyncio.sleep(2.5)
    assert await asyncio.to_thread(_heartbeat_deliveries, primary_engine, name) == []

    async with running_worker(client, primary_engine, queue, detection=config):
        got = await eventually("the alert after the restart",
                               lambda: asyncio.to_thread(_declared, primary_engine, name), timeout=20)
    assert got == ["declared"]
    await client.get_workflow_handle(heartbeat_workflow_id(name)).terminate("test over")


def _declared(engine: Engine, name: str) -> list[str]:
    return [o for o in _heartbeat_deliveries(engine, name) if o == "declared"]


def _heartbeat_deliveries(engine: Engine, name: str) -> list[str]:
    with Session(engine) as session:
        rows = session.scalars(select(AlertDeliveryRow).where(AlertDeliveryRow.source == "heartbeat"))
        return [r.outcome for r in rows if name in str(r.payload)]

"""Two API replicas (separate apps, separate database engines) share nothing but the database
and Temporal: the same alert or the same Idempotency-Key reaching both at once makes one incident."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import yaml
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import bearer, integration_secret, token_for
from tests.conftest import TestDatabase, running_worker, start_incident_numbers_at
from tests.live import CALM_POLICY
from warroom.api.app import create_app
from warroom.settings import Settings

ALERT = {
    "version": "4",
    "groupKey": "{}:{alertname=\"DNSPublishLag\"}",
    "status": "firing",
    "receiver": "warroom",
    "groupLabels": {"alertname": "DNSPublishLag"},
    "commonLabels": {"alertname": "DNSPublishLag", "severity": "major", "component": "dns"},
    "commonAnnotations": {"summary": "DNS changes publish slowly"},
    "alerts": [{
        "status": "firing",
        "labels": {"alertname": "DNSPublishLag", "instance": "ns1", "severity": "major"},
        "annotations": {"summary": "DNS changes publish slowly"},
        "startsAt": "2026-12-03T10:00:00Z",
        "fingerprint": "dns-lag-ns1",
    }],
}


@asynccontextmanager
async def replicas(client: Client, database: TestDatabase, engine: Engine, tmp_path: Path,
                   count: int = 2) -> AsyncIterator[list[httpx.AsyncClient]]:
    start_incident_numbers_at(engine, 100_000 + uuid.uuid4().int % 800_000_000)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(CALM_POLICY), encoding="utf-8")
    async with running_worker(client, engine) as harness, AsyncExitStack() as stack:
        settings = Settings(policy=policy, task_queue=harness.task_queue, data_dir=tmp_path)
        https = []
        token = token_for(engine, "alice")  # an admin: may declare, and acts as itself
        for _ in range(count):
            app = create_app(settings, client=client, engine=database.engine())
            await stack.enter_async_context(app.router.lifespan_context(app))
            https.append(await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api", headers=bearer(token))
            ))
        yield https


async def test_one_alert_delivered_to_both_replicas_at_once_opens_one_incident(
    client: Client, primary_database: TestDatabase, primary_engine: Engine, tmp_path: Path
) -> None:
    secret = integration_secret(primary_engine)
    async with replicas(client, primary_database, primary_engine, tmp_path) as apis:
        answers = await asyncio.gather(*(api.post(f"/api/webhooks/alertmanager/{secret}", json=ALERT)
                                         for api in apis for _ in range(3)))
        for _ in range(50):  # the read model follows the workflow
            listed = (await apis[1].get("/api/incidents")).json()
            if listed:
                break
            await asyncio.sleep(0.1)
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert len({a.json()["incident_id"] for a in answers}) == 1
    assert Counter(a.json()["action"] for a in answers)["declared"] == 1
    assert [row["id"] for row in listed] == [answers[0].json()["incident_id"]]


async def test_one_idempotency_key_sent_to_both_replicas_at_once_declares_once(
    client: Client, primary_database: TestDatabase, primary_engine: Engine, tmp_path: Path
) -> None:
    body = {"title": "Webmail login fails", "severity": "SEV-2", "components": ["email"]}
    async with replicas(client, primary_database, primary_engine, tmp_path) as apis:
        answers = await asyncio.gather(*(
            api.post("/api/incidents", json=body, headers={"Idempotency-Key": "pager-4711"})
            for api in apis for _ in range(3)
        ))
    assert [a.status_code for a in answers] == [201] * 6, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1

"""Text PostgreSQL cannot store (U+0000) is stopped at the API, never left to fail an activity."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from tests.conftest import TestDatabase
from tests.access import integration_secret
from tests.live import LiveApi, live_api
from warroom.models.tables import IncidentRow, TimelineRow


@pytest.fixture
async def api(client: Client, primary_database: TestDatabase, primary_engine: Engine,
              tmp_path: Path) -> AsyncIterator[LiveApi]:
    async with live_api(client, primary_database, primary_engine, tmp_path) as live:
        yield live


async def test_a_nul_character_in_a_command_is_a_422(api: LiveApi) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers=api.headers) as http:
        declared = await http.post("/api/incidents", json={"title": "DNS\u0000 slow", "severity": "SEV-3"})
        listed = await http.get("/api/incidents")
    assert declared.status_code == 422
    assert "NUL" in declared.json()["detail"]
    assert listed.json() == []


async def test_an_alert_with_a_nul_character_is_stored_without_it(api: LiveApi) -> None:
    payload = {
        "version": "4",
        "groupKey": "{}:{alertname=\"MailQueue\"}",
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": "MailQueue"},
        "commonLabels": {"alertname": "MailQueue", "severity": "warning"},
        "commonAnnotations": {"summary": "Mail queue\u0000 growing"},
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "MailQueue", "instance": "mx1\u0000", "severity": "warning"},
            "annotations": {"summary": "Mail queue\u0000 growing"},
            "startsAt": "2026-12-03T10:00:00Z",
            "fingerprint": "f00d",
        }],
    }
    async with httpx.AsyncClient(base_url=api.url, headers=api.headers) as http:
        secret = integration_secret(api.engine)
        answer = await http.post(f"/api/webhooks/alertmanager/{secret}", json=payload)
    assert answer.status_code == 200, answer.text
    number = answer.json()["incident_id"]
    for _ in range(100):  # the worker writes the read model; on PostgreSQL this is where NUL used to fail
        with Session(api.engine) as session:
            row = session.get(IncidentRow, number)
            alert_lines = session.scalars(
                select(TimelineRow.text).where(TimelineRow.incident_number == number, TimelineRow.kind == "alert")
            ).all()
        if row is not None and alert_lines:
            break
        await asyncio.sleep(0.1)
    assert row is not None and row.title == "Mail queue growing"
    assert alert_lines == ["Alert firing (alertmanager) on mx1: Mail queue growing"]

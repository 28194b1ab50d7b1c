"""A command whose workflow does not answer in time is a 503 with a reason and Retry-After, never a 500.

The incident's workflow exists but no worker polls its task queue, so the update
is never taken: ``asyncio.wait_for`` cancels it after ``command_timeout_seconds``
and the SDK turns that cancellation into ``WorkflowUpdateRPCTimeoutOrCancelledError``
(not a ``TimeoutError``), which used to escape as a 500.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import bearer, client_as, integration_secret, token_for
from tests.conftest import fast_policy
from tests.stack import write_policy
from warroom.api.app import create_app
from warroom.models.ids import incident_workflow_id
from warroom.models.incident import IncidentInput, Severity
from warroom.settings import Settings
from warroom.workflows import IncidentWorkflow


@pytest.fixture
async def stalled(client: Client, primary_engine: Engine, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    """The API, and an incident whose workflow no worker runs."""
    queue = f"nobody-{uuid.uuid4().hex[:8]}"
    number = random.randint(1_500_000_000, 2_000_000_000)
    handle = await client.start_workflow(
        IncidentWorkflow.run,
        IncidentInput(number=number, title="DNS slow", severity=Severity.SEV2, policy=fast_policy()),
        id=incident_workflow_id(number),
        task_queue=queue,
    )
    settings = Settings(
        data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), task_queue=queue, command_timeout_seconds=1
    )
    app = create_app(settings, client=client, engine=primary_engine)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with client_as(transport, token_for(primary_engine, "alice")) as http:
                yield http, number
    finally:
        await handle.terminate("test over")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("acknowledge", {"person": "alice"}),
        ("status-updates", {"message": "We are looking into slow DNS changes.", "author": "alice"}),
        ("severity", {"severity": "SEV-1", "by": "alice", "reason": "more customers"}),
    ],
)
async def test_command_without_an_answer_is_503_with_retry_after(
    stalled: tuple[httpx.AsyncClient, int], path: str, body: dict[str, str]
) -> None:
    http, number = stalled
    resp = await http.post(f"/api/incidents/{number}/{path}", json=body)
    assert resp.status_code == 503, resp.text
    assert resp.headers["retry-after"].isdigit()
    detail = resp.json()["detail"]
    assert "no answer from the incident's workflow within 1 s" in detail
    assert "sending it again is safe" in detail


async def test_an_alert_without_an_answer_says_how_long_it_really_waited(
    stalled: tuple[httpx.AsyncClient, int], primary_engine: Engine
) -> None:
    """Each update is given command_timeout_seconds (the route allows three of them in all):
    the 503 names the timeout that ran out, not the route's longer one."""
    http, _ = stalled
    secret = integration_secret(primary_engine, f"gen-{uuid.uuid4().hex[:6]}", "generic")
    alert = {"title": "Backups failing", "component": "dns", "dedup_key": f"k-{uuid.uuid4().hex}"}
    resp = await http.post("/api/webhooks/generic", json=alert, headers=bearer(secret))
    assert resp.status_code == 503, resp.text
    detail = resp.json()["detail"]
    assert "no answer from the incident's workflow within 1 s while declaring the incident" in detail, detail


async def test_reading_an_incident_whose_worker_is_gone_answers_from_the_read_model_quickly(
    client: Client, engine: Engine, tmp_path: Path
) -> None:
    """The worker stops after the incident was stored: the API and the web page wait
    ``query_timeout_seconds`` (1.5 s by default) for the live state, not 5 s, and then
    show the stored state; commands keep their own, longer timeout."""
    import time

    from tests.api.support import eventually, serving

    async with serving(client, engine, tmp_path) as api:
        number = (await api.declare(title="Billing page is blank"))["id"]

        async def stored() -> bool:
            return (await api.http.get("/api/incidents", params={"status": "open"})).json() != []

        await eventually("the read model has the incident", stored)
        settings = api.settings
    assert settings.query_timeout_seconds == 1.5 and settings.command_timeout_seconds == 10
    app = create_app(settings, client=client, engine=engine)  # the same queue, and now no worker polls it
    async with LifespanManager(app) as manager:
        async with client_as(httpx.ASGITransport(app=manager.app), token_for(engine, "alice")) as http:
            for path in (f"/api/incidents/{number}", f"/console/incidents/{number}"):
                began = time.monotonic()
                resp = await http.get(path)
                took = time.monotonic() - began
                assert resp.status_code == 200, (path, resp.text[:300])
                assert "Billing page is blank" in resp.text
                assert 1.4 <= took < 3.5, (path, took)

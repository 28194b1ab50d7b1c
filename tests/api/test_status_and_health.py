"""The public status page and the health check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import client_as, integration_secret, token_for
from tests.api.support import Api, eventually
from tests.stack import case, write_policy
from warroom.api.app import create_app
from warroom.settings import Settings
from warroom.temporal import DATA_CONVERTER


async def status_page(api: Api) -> str:
    resp = await api.http.get("/status")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    return resp.text


async def test_status_page_lists_open_incident_and_its_public_updates(api: Api) -> None:
    assert "All systems operational" in await status_page(api)
    inc = await api.declare(title="Webmail logins fail", severity="SEV-1", components=["webmail"])
    posted = await api.http.post(
        f"/api/incidents/{inc['id']}/status-updates",
        json={"message": "Logins to webmail fail; we have found the cause and are deploying a fix.", "author": "alice"},
    )
    assert posted.status_code == 200, posted.text

    async def page_shows_update() -> str | None:
        html = await status_page(api)
        return html if "deploying a fix" in html else None

    html = await eventually("the update on the status page", page_shows_update)
    assert "Webmail logins fail" in html
    assert "Major outage" in html  # an open SEV-1 on webmail (an alias of email) sets the headline
    assert "webmail" in html
    assert "All systems operational" not in html


async def test_status_page_shows_the_resolution_notice_and_no_longer_lists_it_as_ongoing(api: Api) -> None:
    inc = await api.declare(title="DNS changes publish slowly", severity="SEV-2")
    resp = await api.http.post(
        f"/api/incidents/{inc['id']}/resolve",
        json={"summary": "The publisher was rolled back", "impact": "DNS changes were late by up to 14 minutes"},
    )
    assert resp.status_code == 200, resp.text

    async def resolved_on_page() -> str | None:
        html = await status_page(api)
        return html if "The publisher was rolled back." in html and "All systems operational" in html else None

    html = await eventually("the resolved incident on the status page", resolved_on_page)
    assert "All systems operational" in html
    assert "The publisher was rolled back." in html
    assert "DNS changes were late by up to 14 minutes." in html


async def test_status_page_escapes_what_people_typed(api: Api) -> None:
    await api.declare(title="<script>alert('x')</script> in the panel", severity="SEV-3")

    async def listed() -> str | None:
        html = await status_page(api)
        return html if "in the panel" in html else None

    html = await eventually("the incident on the status page", listed)
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html


async def test_healthz_is_200_when_temporal_answers(api: Api) -> None:
    resp = await api.http.get("/healthz")
    assert resp.status_code == 200
    assert resp.json()["temporal"] == "reachable"


@pytest.fixture
async def api_without_temporal(engine: Engine, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a client aimed at a port where nothing listens."""
    client = await Client.connect("127.0.0.1:1", data_converter=DATA_CONVERTER, lazy=True)
    settings = Settings(data_dir=tmp_path, policy=write_policy(tmp_path / "policy.yaml"), command_timeout_seconds=3)
    app = create_app(settings, client=client, engine=engine)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with client_as(transport, token_for(engine, "alice")) as http:
            http.alert_path = f"/api/webhooks/alertmanager/{integration_secret(engine)}"  # type: ignore[attr-defined]
            yield http


async def test_healthz_is_503_when_temporal_is_unreachable(api_without_temporal: httpx.AsyncClient) -> None:
    resp = await api_without_temporal.get("/healthz")
    assert resp.status_code == 503
    assert "unreachable" in resp.json()["temporal"]


async def test_commands_are_503_not_500_when_temporal_is_unreachable(api_without_temporal: httpx.AsyncClient) -> None:
    declared = await api_without_temporal.post("/api/incidents", json={"title": "DNS slow", "severity": "SEV-2"})
    assert declared.status_code == 503, declared.text
    ack = await api_without_temporal.post("/api/incidents/1/acknowledge", json={"person": "alice"})
    assert ack.status_code == 503, ack.text
    alert = await api_without_temporal.post(
        api_without_temporal.alert_path, content=case("alertmanager-v4-firing.json"),  # type: ignore[attr-defined]
        headers={"content-type": "application/json"},
    )
    assert alert.status_code == 503, alert.text
    # What the read model alone can answer still works.
    assert (await api_without_temporal.get("/api/incidents")).status_code == 200
    assert (await api_without_temporal.get("/status")).status_code == 200

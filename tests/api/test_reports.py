"""Customer reports: the status page form and the API, abuse refused or neutralised, the
triage list, attach or declare, and a burst of reports raising an alert through the intake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import client_as, token_for
from tests.api.support import Api, eventually, serving
from warroom.models.access import Role


@pytest.fixture
async def api(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    detection = {"reports": {"count": 3, "within": "10m", "severity": "SEV-2"}}
    async with serving(client, engine, tmp_path, detection=detection, report_rate_burst=50) as a:
        yield a


async def report(api: Api, **body: Any) -> Any:
    return await api.anonymous.post("/api/reports", json={"text": "The control panel shows a 502", **body})


async def triage(api: Api) -> list[dict[str, Any]]:
    resp = await api.http.get("/api/reports")
    assert resp.status_code == 200, resp.text
    return list(resp.json())


async def test_form_on_the_status_page_files_a_report(api: Api) -> None:
    page = (await api.anonymous.get("/status")).text
    assert 'action="/status/report"' in page and "Report a problem" in page
    resp = await api.anonymous.post("/status/report", data={"text": "Cannot log in", "component": "control-panel",
                                                            "contact": "pat@example.com"})
    assert resp.status_code == 201, resp.text
    assert "We received your report" in resp.text
    [r] = await triage(api)
    assert (r["text"], r["component"], r["contact"], r["status"]) == (
        "Cannot log in", "control-panel", "pat@example.com", "new")


async def test_abuse_is_refused_or_neutralised(client: Client, engine: Engine, tmp_path: Path) -> None:
    async with serving(client, engine, tmp_path, report_rate_burst=3, report_rate_per_minute=0.01) as api:
        script = await report(api, text='<script>alert("x")</script>Panel <b>down</b> <img src=x onerror=alert(1)>')
        assert script.status_code == 201, script.text
        too_long = await report(api, text="x" * 2001)
        assert too_long.status_code == 422 and "2000" in too_long.json()["detail"]
        only_markup = await report(api, text="<script></script>")
        assert only_markup.status_code == 422 and "plain text" in only_markup.json()["detail"]
        unknown = await report(api, component="the-moon")
        assert unknown.status_code == 422 and "unknown component" in unknown.json()["detail"]
        extra = await report(api, html="<p>")
        assert extra.status_code == 422
        [stored] = await triage(api)
        assert stored["text"] == 'alert("x")Panel down'
        assert "<" not in stored["text"] and ">" not in stored["text"]
        # the form takes the markup out too (the unknown component above used up a report as well)
        form = await api.anonymous.post("/status/report", data={"text": "<script>alert(1)</script>"})
        assert form.status_code == 201 and "<script>alert(1)" not in form.text
        limited = await report(api)
        assert limited.status_code == 429 and "too many problem reports" in limited.json()["detail"]
        assert "retry-after" in limited.headers
        form_limited = await api.anonymous.post("/status/report", data={"text": "still down"})
        assert form_limited.status_code == 429 and "too many" in form_limited.text
        assert [r["text"] for r in await triage(api)] == ["alert(1)", 'alert("x")Panel down']


async def test_attach_and_declare_from_the_triage_list(api: Api) -> None:
    first = (await report(api, component="dns", text="My domain stopped resolving")).json()["id"]
    second = (await report(api, component="email", text="Mail bounces")).json()["id"]
    inc = await api.declare(title="DNS resolution failing", components=["dns"])

    attached = await api.http.post(f"/api/reports/{first}/attach", json={"incident_id": inc["id"]})
    assert attached.status_code == 200, attached.text
    assert (attached.json()["status"], attached.json()["incident_id"], attached.json()["handled_by"]) == (
        "attached", inc["id"], "alice")
    detail = await api.incident(inc["id"])
    assert any("Customer report" in e["text"] and "stopped resolving" in e["text"] for e in detail["timeline"])
    again = await api.http.post(f"/api/reports/{first}/attach", json={"incident_id": inc["id"]})
    assert again.status_code == 409 and "already attached" in again.json()["detail"]
    missing = await api.http.post(f"/api/reports/{second}/attach", json={"incident_id": 2**31 - 1})
    assert missing.status_code == 404

    declared = await api.http.post(f"/api/reports/{second}/declare", json={"severity": "SEV-3"})
    assert declared.status_code == 200, declared.text
    number = declared.json()["incident_id"]
    new = await api.incident(number)
    assert (new["severity"], new["components"], new["source"]) == ("SEV-3", ["email"], "reports")

    third = (await report(api, text="Is the sky falling?")).json()["id"]
    dismissed = await api.http.post(f"/api/reports/{third}/dismiss")
    assert (dismissed.json()["status"], dismissed.json()["incident_id"]) == ("dismissed", None)
    late = await api.http.post(f"/api/reports/{third}/declare", json={})
    assert late.status_code == 409 and "already dismissed" in late.json()["detail"]
    assert [r["status"] for r in await triage(api)] == ["dismissed", "declared", "attached"]
    assert (await api.http.post("/api/reports/2147483648/dismiss")).status_code == 422

    vic = await asyncio.to_thread(token_for, api.engine, "vic", Role.VIEWER)
    async with client_as(api.transport, vic) as viewer:
        assert (await viewer.get("/api/reports")).status_code == 403  # reports carry customers' contacts
    assert (await api.anonymous.get("/api/reports")).status_code == 401


async def test_a_burst_of_reports_for_one_component_raises_one_alert(api: Api) -> None:
    for n in range(2):
        assert (await report(api, component="billing", text=f"Invoice page broken {n}")).status_code == 201
    assert (await api.http.get("/api/incidents")).json() == []
    assert (await report(api, component="billing", text="Cannot pay")).status_code == 201
    assert (await report(api, component="billing", text="Still cannot pay")).status_code == 201
    [inc] = await eventually("the incident in the read model", lambda: listed(api))
    assert (await api.http.get("/api/alert-deliveries", params={"source": "reports"})).json()[0]["outcome"] == "declared"
    assert (inc["source"], inc["severity"], inc["components"]) == ("reports", "SEV-2", ["billing"])
    assert "3 customer reports within 10 minutes" in inc["title"]


async def listed(api: Api) -> list[dict[str, Any]]:
    return list((await api.http.get("/api/incidents")).json())

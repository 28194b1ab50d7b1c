"""The runbook routes over HTTP, with a real worker, Temporal and the stand-in platform."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.conftest import ROOT, Harness, running_worker, start_incident_numbers_at
from tests.access import client_as, integration_secret, token_for
from tests.conftest import ROOT, Harness, running_worker
from tests.standin import RunningPlatform, running_platform
from warroom.api.app import create_app
from warroom.runbooks.steps import RunbookConfig
from warroom.settings import Settings

TOKEN = "api-test-token-123"
ALERT = ROOT / "examples" / "platform" / "alert-deploy-errors.json"


@dataclass
class Api:
    """``http`` acts as alice (admin); ``as_`` gives bob (operator) or erin (responder)."""

    http: httpx.AsyncClient
    platform: RunningPlatform
    harness: Harness
    people: dict[str, httpx.AsyncClient]
    alert_secret: str

    def as_(self, user: str) -> httpx.AsyncClient:
        return self.people[user]

    async def declare(self) -> int:
        r = await self.http.post("/api/incidents", json={"title": "Slow control panel", "severity": "SEV-4"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def run_until_done(self, number: int, run: int = 1, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = await self.http.get(f"/api/incidents/{number}/runbook-runs/{run}")
            if r.status_code == 200 and r.json()["status"] not in ("running", "waiting"):
                return r.json()
            assert time.monotonic() < deadline, r.text
            await asyncio.sleep(0.1)


def start_numbers_high(engine: Engine) -> None:
    """Every test has a fresh database but shares the dev server: incident numbers
    (and so workflow ids) must not repeat across tests."""
    start_incident_numbers_at(engine, random.randrange(10**8, 10**9))


@pytest.fixture
async def api(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    start_numbers_high(engine)
    with running_platform(token=TOKEN) as platform:
        config = RunbookConfig(endpoints={"platform": platform.url}, secrets={"platform_token": TOKEN})
        async with running_worker(client, engine, runbook_config=config) as h:
            settings = Settings(data_dir=tmp_path, task_queue=h.task_queue)
            app = create_app(settings, client=client, engine=engine)
            tokens = {user: token_for(engine, user) for user in ("alice", "bob", "erin")}
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                people = {user: client_as(transport, token) for user, token in tokens.items()}
                try:
                    yield Api(http=people["alice"], platform=platform, harness=h, people=people,
                              alert_secret=integration_secret(engine))
                finally:
                    for c in people.values():
                        await c.aclose()


async def test_break_alert_rollback_recover_resolve(api: Api) -> None:
    """The README's path, over the API."""
    api.platform.break_("deploy")
    r = await api.http.post(f"/api/webhooks/alertmanager/{api.alert_secret}", json=json.loads(ALERT.read_text()))
    assert r.status_code == 200 and r.json()["action"] == "declared", r.text
    number = r.json()["incident_id"]

    r = await api.http.post(
        f"/api/incidents/{number}/runbook-runs",
        json={"runbook": "deployment-rollback", "actor": "alice", "confirm_destructive": True},
    )
    assert r.status_code == 201, r.text
    assert r.json()["run"] == 1 and r.json()["workflow_id"] == f"incident-{number}-runbook-1"

    run = await api.run_until_done(number)
    assert run["status"] == "succeeded", run
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 3
    assert run["steps"][1]["name"] == "Roll back to the previous version" and run["steps"][1]["destructive"]
    assert not api.platform.state.problems()

    listed = (await api.http.get(f"/api/incidents/{number}/runbook-runs")).json()
    assert [r["run"] for r in listed] == [1]
    incident = (await api.http.get(f"/api/incidents/{number}")).json()
    assert any("Roll back to the previous version' succeeded" in e["text"] for e in incident["timeline"])

    r = await api.http.post(f"/api/incidents/{number}/resolve", json={"summary": "Rolled back the release."})
    assert r.status_code == 200, r.text


async def test_refusals_are_precise(api: Api) -> None:
    number = await api.declare()
    base = f"/api/incidents/{number}/runbook-runs"

    async def post(body: dict[str, Any], url: str = base) -> httpx.Response:
        """As the person the body names (who is then left out of the body: the caller acts)."""
        body = dict(body)
        return await api.as_(body.pop("actor")).post(url, json=body)

    r = await post({"runbook": "no-such-runbook", "actor": "alice"})
    assert r.status_code == 404 and "no runbook 'no-such-runbook'" in r.json()["detail"]
    r = await post({"runbook": "scale-up", "actor": "alice", "params": {"replicas": "lots"}})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("params of runbook 'scale-up': "), r.text  # the field as the API names it
    assert "replicas: expected an integer" in r.json()["detail"]
    r = await post({"runbook": "scale-up", "actor": "alice"})
    assert r.status_code == 422 and "replicas: required" in r.json()["detail"]
    r = await post({"runbook": "scale-up", "actor": "alice", "params": {"replicas": 4}, "sudo": True})
    assert r.status_code == 422 and "sudo" in r.json()["detail"]
    r = await post({"runbook": "service-restart", "actor": "erin", "confirm_destructive": True})
    assert r.status_code == 403 and "erin may not run 'Service restart'" in r.json()["detail"]
    assert "needs the operator role (erin is a responder)" in r.json()["detail"]
    r = await post({"runbook": "service-restart", "actor": "alice"})
    assert r.status_code == 409 and "confirm them explicitly" in r.json()["detail"]
    r = await post({"runbook": "service-restart", "actor": "alice", "confirm_destructive": True},
                   url="/api/incidents/99999999/runbook-runs")
    assert r.status_code == 404
    assert (await api.http.get("/api/incidents/99999999/runbook-runs")).status_code == 404
    assert (await api.http.get(f"{base}/7")).status_code == 404
    r = await post({"actor": "bob"}, url=f"{base}/7/steps/1/confirm")
    assert r.status_code == 404 and "no runbook run #7" in r.json()["detail"]
    assert api.platform.calls() == [], "nothing refused reached the platform"

    r = await post({"runbook": "scale-up", "actor": "erin", "params": {"replicas": "5"}})
    assert r.status_code == 201, "a runbook without destructive steps needs no special right"
    run = await api.run_until_done(number)
    assert run["status"] == "succeeded" and run["params"] == {"replicas": 5}
    assert api.platform.state.replicas == 5
    r = await post({"actor": "bob"}, url=f"{base}/1/abort")
    assert r.status_code == 409 and "has already succeeded" in r.json()["detail"]


async def test_confirm_approve_and_abort_over_http(api: Api) -> None:
    number = await api.declare()
    base = f"/api/incidents/{number}/runbook-runs"
    r = await api.http.post(base, json={"runbook": "database-failover", "actor": "alice", "confirm_destructive": True})
    assert r.status_code == 201, r.text

    async def waiting_at(step: int) -> None:
        deadline = time.monotonic() + 10
        while True:
            r = await api.http.get(f"{base}/1")
            if r.status_code == 200 and r.json()["steps"][step - 1]["status"] == "waiting":
                return
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)

    await waiting_at(1)
    r = await api.http.post(f"{base}/1/steps/1/approve", json={"approve": True})
    assert r.status_code == 409 and "a second operator must approve" in r.json()["detail"]
    r = await api.as_("erin").post(f"{base}/1/steps/1/approve", json={"approve": True})
    assert r.status_code == 403 and "erin is a responder; this needs the operator role" in r.json()["detail"]
    r = await api.as_("bob").post(f"{base}/1/steps/1/approve", json={"actor": "alice", "note": "lag is 0.3 s",
                                                                     "approve": True})
    assert r.status_code == 403 and "nobody acts in someone else's name" in r.json()["detail"]
    # A destructive step is never approved by an empty body: the decision must be spelled out.
    r = await api.as_("bob").post(f"{base}/1/steps/1/approve", json={})
    assert r.status_code == 422 and "approve" in r.text, r.text
    r = await api.as_("bob").post(f"{base}/1/steps/1/approve", json={"actor": "bob", "note": "lag is 0.3 s",
                                                                     "approve": True})
    assert r.status_code == 200, r.text
    await waiting_at(5)
    assert api.platform.state.primary == "db-b"
    r = await api.as_("bob").post(f"{base}/1/abort", json={"reason": "rebuild tomorrow"})
    assert r.status_code == 200 and r.json()["status"] == "aborted"
    run = await api.run_until_done(number)
    assert run["status"] == "aborted" and run["aborted_by"] == "bob"
    assert [s["status"] for s in run["steps"]] == ["succeeded"] * 4 + ["aborted"]


async def test_a_responder_cannot_run_a_destructive_runbook_an_operator_can(api: Api) -> None:
    number = await api.declare()
    base = f"/api/incidents/{number}/runbook-runs"
    body = {"runbook": "service-restart", "confirm_destructive": True, "reason": "workers stuck"}
    refused = await api.as_("erin").post(base, json=body)
    assert refused.status_code == 403, refused.text
    assert "needs the operator role (erin is a responder)" in refused.json()["detail"]
    assert api.platform.calls() == [], "a refused run reaches nothing"

    started = await api.as_("bob").post(base, json=body)
    assert started.status_code == 201, started.text
    deadline = time.monotonic() + 15
    while True:  # the run's first read-model write may not have landed yet (404)
        seen = await api.http.get(f"{base}/1")
        if seen.status_code == 200 and seen.json()["steps"][2]["status"] == "waiting":
            break
        assert time.monotonic() < deadline, "the manual step never waited"
        await asyncio.sleep(0.1)
    assert api.platform.calls("/service/restart"), "the operator's run reached the platform"
    confirmed = await api.as_("erin").post(f"{base}/1/steps/3/confirm", json={"note": "heap profile saved"})
    assert confirmed.status_code == 200, "a responder may confirm a manual step"
    run = await api.run_until_done(number)
    assert run["status"] == "succeeded" and run["started_by"] == "bob" and run["steps"][2]["actor"] == "erin"

    entries = (await api.http.get("/api/audit", params={"action": "start_run", "incident_id": number})).json()
    assert [(e["actor"], e["accepted"], e["status_code"]) for e in reversed(entries)] == [
        ("erin", False, 403), ("bob", True, 201)]

"""Grafana and generic alert webhooks through the one intake: secrets, raw deliveries, rules,
grouping by key and by component window, and a storm that makes one incident per cause."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from tests.access import bearer, integration_secret
from tests.api.support import Api, eventually, serving
from tests.stack import case


def _serving(client: Client, engine: Engine, tmp_path: Path) -> Any:
    detection = {
        "alert_rules": [
            {"name": "staging", "match": {"labels": {"env": "staging"}}, "action": "record"},
            {"name": "heartbeat noise", "match": {"sources": ["generic"], "labels": {"kind": "test"}},
             "action": "drop"},
            {"name": "dns team", "match": {"labels": {"team": "dns"}}, "component": "dns", "severity": "SEV-2",
             "escalation": "dns-oncall"},
        ],
        "grouping": {"component_window": "1h"},
    }
    policy = {"escalation_policies": {"dns-oncall": {"levels": [{"notify": ["bob"]}]}}}
    return serving(client, engine, tmp_path, policy=policy, detection=detection,
                   webhook_rate_burst=5000, webhook_rate_per_minute=60000)


@pytest.fixture
async def api(client: Client, engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    async with _serving(client, engine, tmp_path) as a:
        yield a


@pytest.fixture
async def primary_api(client: Client, primary_engine: Engine, tmp_path: Path) -> AsyncIterator[Api]:
    async with _serving(client, primary_engine, tmp_path) as a:
        yield a


async def secret(api: Api, source: str) -> str:
    return await asyncio.to_thread(integration_secret, api.engine, f"test-{source}", source)


async def post(api: Api, path: str, token: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await api.anonymous.post(path, content=content,
                                    headers={**bearer(token), "content-type": "application/json"})


async def pages(api: Api, number: int) -> list[dict[str, Any]]:
    return [n for n in await api.notifications(number) if n["kind"] == "page"]


async def test_grafana_sample_declares_then_joins_and_keeps_the_delivery(api: Api) -> None:
    token = await secret(api, "grafana")
    first = await post(api, "/api/webhooks/grafana", token, case("grafana-webhook-firing.json"))
    assert first.status_code == 200, first.text
    assert first.json() == {"incident_id": api.first_number, "action": "declared", "new_alerts": 1,
                            "held_alerts": 0}
    # the secret in the URL works too, and a redelivery joins without a second page
    again = await api.anonymous.post(f"/api/webhooks/grafana/{token}", content=case("grafana-webhook-firing.json"),
                                     headers={"content-type": "application/json"})
    assert again.json()["action"] == "joined" and again.json()["new_alerts"] == 0

    inc = await api.incident(api.first_number)
    assert inc["title"] == "Control panel returns 5xx for 38% of requests"
    assert (inc["severity"], inc["components"], inc["source"]) == ("SEV-1", ["control-panel"], "grafana")
    [joined] = inc["alerts"]
    assert (joined["fingerprint"], joined["source"], joined["received"]) == ("0c1e2f3a4b5c6d7e", "grafana", 2)
    assert joined["first_seen"] <= joined["last_seen"]
    assert "https://grafana.example.internal/d/portal" in joined["links"]

    deliveries = (await api.http.get("/api/alert-deliveries", params={"source": "grafana"})).json()
    assert [d["outcome"] for d in deliveries] == ["joined", "declared"]
    assert deliveries[0]["integration"] == "test-grafana"
    raw = (await api.http.get(f"/api/alert-deliveries/{deliveries[1]['id']}")).json()
    assert raw["payload"] == json.loads(case("grafana-webhook-firing.json"))
    await eventually("the page", lambda: pages(api, api.first_number))
    assert len(await pages(api, api.first_number)) == 1


async def test_webhooks_refuse_bad_input_and_wrong_secrets(api: Api) -> None:
    generic, grafana = await secret(api, "generic"), await secret(api, "grafana")
    cases = [
        (generic, "/api/webhooks/generic", {"title": "t", "sevrity": "critical"}, 422, "sevrity"),
        (generic, "/api/webhooks/generic", {"title": "t", "status": "burning"}, 422, "status"),
        (generic, "/api/webhooks/generic", {"title": "t", "links": ["javascript:x"]}, 422, "http"),
        (generic, "/api/webhooks/generic", b"title: t", 422, "JSON"),
        (grafana, "/api/webhooks/grafana", {**json.loads(case("grafana-webhook-firing.json")), "version": "2"},
         422, "version 1"),
        (grafana, "/api/webhooks/grafana", {**json.loads(case("grafana-webhook-firing.json")), "alerts": []},
         422, "alerts"),
        (grafana, "/api/webhooks/generic", {"title": "t"}, 401, "delivers grafana alerts, not generic"),
        (api.alert_secret, "/api/webhooks/grafana", case("grafana-webhook-firing.json"), 401, "not grafana"),
        ("wri_nope_nope", "/api/webhooks/generic", {"title": "t"}, 401, "integration secret"),
    ]
    for token, path, body, status, reason in cases:
        resp = await post(api, path, token, body)
        assert resp.status_code == status, (path, body, resp.text)
        assert reason.lower() in resp.json()["detail"].lower(), resp.text
    no_secret = await api.anonymous.post("/api/webhooks/generic", json={"title": "t"})
    assert no_secret.status_code == 401
    assert (await api.http.get("/api/incidents")).json() == []


async def test_generic_alert_dedup_resolve_and_rules(api: Api) -> None:
    token = await secret(api, "generic")
    body = {"title": "Backups failing on db-3", "severity": "major", "component": "control-panel",
            "dedup_key": "backup-db-3", "links": ["https://ci.example.com/job/9"]}
    first = (await post(api, "/api/webhooks/generic", token, body)).json()
    assert first["action"] == "declared"
    number = first["incident_id"]
    assert (await post(api, "/api/webhooks/generic", token, body)).json() == {
        "incident_id": number, "action": "joined", "new_alerts": 0, "held_alerts": 0}
    resolved = (await post(api, "/api/webhooks/generic", token, {**body, "status": "resolved"})).json()
    assert (resolved["action"], resolved["incident_id"], resolved["new_alerts"]) == ("recorded", number, 1)
    inc = await api.incident(number)
    assert inc["status"] == "triggered"  # a resolved alert is recorded; people resolve incidents
    [a] = inc["alerts"]
    assert (a["status"], a["count"], a["received"]) == ("resolved", 2, 3)

    # record-only and drop: kept in the alert log, no incident
    staged = (await post(api, "/api/webhooks/generic", token, {"title": "x", "labels": {"env": "staging"}})).json()
    assert staged == {"incident_id": None, "action": "recorded", "new_alerts": 0, "held_alerts": 0}
    dropped = (await post(api, "/api/webhooks/generic", token, {"title": "x", "labels": {"kind": "test"}})).json()
    assert dropped["action"] == "dropped"
    unknown = (await post(api, "/api/webhooks/generic", token, {"title": "never fired", "status": "resolved"})).json()
    assert unknown["action"] == "ignored"
    outcomes = [d["outcome"] for d in (await api.http.get("/api/alert-deliveries")).json()]
    assert outcomes == ["ignored", "dropped", "recorded", "recorded", "joined", "declared"]
    listed = await eventually("the incident in the read model", lambda: _listed(api, 1))
    assert [i["id"] for i in listed] == [number]


async def test_rule_sets_component_severity_and_escalation_policy(api: Api) -> None:
    token = await secret(api, "generic")
    resp = (await post(api, "/api/webhooks/generic", token, {"title": "Zone transfers failing",
                                                               "severity": "SEV-4", "labels": {"team": "dns"}})).json()
    inc = await api.incident(resp["incident_id"])
    assert (inc["severity"], inc["components"]) == ("SEV-2", ["dns"])
    routing = [e["text"] for e in inc["timeline"] if e["kind"] == "routing"]
    assert routing == ["Routed by alert rule 'dns team' to escalation policy 'dns-oncall'"]
    got = await eventually("the page", lambda: pages(api, resp["incident_id"]))
    assert {p["person"] for p in got} == {"bob"}


async def test_same_component_within_the_window_joins_one_incident(api: Api) -> None:
    generic, grafana = await secret(api, "generic"), await secret(api, "grafana")
    first = (await post(api, "/api/webhooks/grafana", grafana, case("grafana-webhook-firing.json"))).json()
    # another cause, another source, the same component: the same incident
    other = (await post(api, "/api/webhooks/generic", generic,
                        {"title": "Login page slow", "component": "control-panel", "dedup_key": "login-slow"})).json()
    assert (other["action"], other["incident_id"]) == ("joined", first["incident_id"])
    # another component: its own incident
    dns = (await post(api, "/api/webhooks/generic", generic, {"title": "DNS lag", "component": "dns"})).json()
    assert dns["action"] == "declared" and dns["incident_id"] != first["incident_id"]
    inc = await api.incident(first["incident_id"])
    assert sorted(a["source"] for a in inc["alerts"]) == ["generic", "grafana"]
    # the resolved alert of the joined key reaches the same incident
    back = (await post(api, "/api/webhooks/generic", generic, {"title": "Login page slow", "component": "control-panel",
                                                               "dedup_key": "login-slow", "status": "resolved"})).json()
    assert (back["action"], back["incident_id"]) == ("recorded", first["incident_id"])

    # once the incident is resolved, the component opens a fresh one
    resolved = await api.http.post(f"/api/incidents/{first['incident_id']}/resolve", json={"summary": "Fixed."})
    assert resolved.status_code == 200, resolved.text
    later = (await post(api, "/api/webhooks/generic", generic,
                        {"title": "Login page slow again", "component": "control-panel"})).json()
    assert later["action"] == "declared"
    assert later["incident_id"] not in (first["incident_id"], dns["incident_id"])


async def test_zero_window_groups_by_key_only(client: Client, engine: Engine, tmp_path: Path) -> None:
    async with serving(client, engine, tmp_path, detection={"grouping": {"component_window": "0s"}}) as api:
        token = await secret(api, "generic")
        a = (await post(api, "/api/webhooks/generic", token, {"title": "A", "component": "dns"})).json()
        b = (await post(api, "/api/webhooks/generic", token, {"title": "B", "component": "dns"})).json()
        assert (a["action"], b["action"]) == ("declared", "declared")
        assert a["incident_id"] != b["incident_id"]


STORM_ALERTS = 2000
STORM_GROUPS = 5


async def test_storm_of_one_cause_per_group_is_one_incident_and_one_page_per_level(primary_api: Api) -> None:
    """2,000 alerts from 400 hosts over 5 causes, delivered concurrently as generic alerts
    (on the primary backend only: a minute and a half each, and the grouping rows' races
    are covered per backend by the other tests here)."""
    api = primary_api
    token = await secret(api, "generic")
    components = ["control-panel", "dns", "email", "billing", "api"]
    bodies = [
        {"title": f"{components[i % STORM_GROUPS]} unhealthy on host-{i // STORM_GROUPS}",
         "component": components[i % STORM_GROUPS], "dedup_key": f"cause-{i % STORM_GROUPS}", "severity": "major"}
        for i in range(STORM_ALERTS)
    ]
    gate = asyncio.Semaphore(40)

    async def send(body: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            resp = await post(api, "/api/webhooks/generic", token, body)
            assert resp.status_code == 200, resp.text
            return dict(resp.json())

    answers = await asyncio.gather(*(send(b) for b in bodies))
    numbers = {a["incident_id"] for a in answers}
    assert len(numbers) == STORM_GROUPS
    assert sorted(a["action"] for a in answers).count("declared") == STORM_GROUPS
    listed = await eventually("the five incidents", lambda: _listed(api, STORM_GROUPS))
    assert {i["id"] for i in listed} == numbers
    for number in numbers:
        inc = await api.incident(number)
        assert len(inc["components"]) == 1
        # one dedup key is one alert: shown once, with every delivery counted
        [a] = inc["alerts"]
        assert a["received"] == STORM_ALERTS // STORM_GROUPS
        got = await eventually("the page", lambda n=number: pages(api, n))
        # policy level 1 is alice; the ack timeout (60 s) is far away: one page, not hundreds
        assert [p["person"] for p in got] == ["alice"]


async def _listed(api: Api, n: int) -> list[dict[str, Any]] | None:
    rows = (await api.http.get("/api/incidents")).json()
    return rows if len(rows) == n else None


async def test_uptime_checks_are_listed_with_their_recorded_state(client: Client, engine: Engine,
                                                                   tmp_path: Path) -> None:
    check = {"name": "panel", "kind": "http", "component": "control-panel", "url": "https://panel.example.com/",
             "every": "1m", "timeout": "10s", "fail_after": 3}
    async with serving(client, engine, tmp_path, detection={"checks": [check]}) as api:
        [listed] = (await api.http.get("/api/uptime-checks")).json()
        assert (listed["name"], listed["target"], listed["every_seconds"], listed["fail_after"]) == (
            "panel", "https://panel.example.com/", 60.0, 3)
        assert (listed["failures"], listed["last_ok"]) == (0, None)  # configured, not run yet


async def test_an_alert_for_a_closed_incidents_group_opens_a_fresh_one_quietly(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A SEV-4 closes on resolution (no postmortem), so its workflow id is refused when the same
    group alerts again: warroom opens a new incident, and logs no stray traceback about it."""
    import gc

    generic = await secret(api, "generic")
    body = {"title": "Invoices slow", "component": "billing", "severity": "info", "dedup_key": "invoices-slow"}
    first = (await post(api, "/api/webhooks/generic", generic, body)).json()
    assert (await api.http.post(f"/api/incidents/{first['incident_id']}/resolve",
                                json={"summary": "Fixed."})).status_code == 200

    async def closed() -> bool:
        return (await api.incident(first["incident_id"]))["status"] == "closed"

    await eventually("the SEV-4 closed", closed)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        again = (await post(api, "/api/webhooks/generic", generic, body)).json()
        gc.collect()
    assert again["action"] == "declared" and again["incident_id"] != first["incident_id"], again
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()], caplog.text


async def test_an_alertmanager_delivery_names_its_integration_by_header_or_url(api: Api) -> None:
    """Which Alertmanager sent what: each kept delivery names the integration whose secret it
    carried, as Grafana's and the generic alert's do."""
    by_url = await api.alertmanager(case("alertmanager-v4-firing.json"))
    assert by_url.status_code in (200, 201), by_url.text
    token = await asyncio.to_thread(integration_secret, api.engine, "am-second-cluster", "alertmanager")
    by_header = await post(api, "/api/webhooks/alertmanager", token, case("alertmanager-v4-firing.json"))
    assert by_header.status_code in (200, 201), by_header.text
    deliveries = (await api.http.get("/api/alert-deliveries", params={"source": "alertmanager"})).json()
    assert [d["integration"] for d in deliveries] == ["am-second-cluster", "test-alertmanager"]
